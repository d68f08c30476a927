"""How long calls may last on the credit an account has: one call, or all its live calls at once.

Credit is shared by all live calls of an account (MagnusBilling let 30 concurrent calls pass on
one unit of credit because each call was checked alone). Policy (docs/rating.md, "Deadlines"):

1. What hanging up every call right now would cost is already spent.
   "Right now" is in whole seconds rounded down, as the switch and the call records count
   billsec: a call answered 10 ms ago has spent nothing yet.
2. Calls are admitted oldest first: a call is kept if the next step of its cost (the first
   block for a new call, nothing for a call inside a paid block) still fits in the credit;
   a call that does not fit is hung up now (deadline 0). Older calls keep their place: a new
   call that cannot pay its first increment never shortens the calls already running.
3. The kept calls drain the credit in parallel: T is the last second at which the cost of all
   of them running to T still fits. Each call is then cut at the end of the block it has paid
   for at T (never earlier than T), so no call loses seconds it was charged for. What is left
   buys further increments oldest call first.
4. The caller recomputes whenever a call starts or ends, or the credit changes.

Costs here are the exact integer form of cost.call_cost / bundles.rate_call, rounded at the
same call charge precision (`places`) as the rater's. Where a short-call surcharge makes a
shorter call dearer, the worst moment to hang up counts.
"""
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from .cost import ShortCallCharge, Tariff
from .micro import ShortTicks, TariffTicks, minor_units_of

MAX_CALL_SECONDS = 4 * 3600    # no call runs longer, even when credit or a free rate allows it


@dataclass(frozen=True)
class LiveCall:
    call_id: Hashable          # the watcher's key, e.g. the channel's Uniqueid
    answered_at: float         # any clock: only orders the calls (oldest keeps its place)
    elapsed: int               # whole seconds since answer, rounded DOWN as billsec is (elapsed_seconds)
    tariff: Tariff
    bundle_seconds: int = 0    # this call's share of its country's remaining bundle


class Deadline(NamedTuple):
    call_id: Hashable
    hangup_in: int             # seconds from now; 0 = hang up (or refuse) now
    max_duration: int          # seconds from answer: elapsed + hangup_in


class _Meter:
    """One live call's cost, in minor units, if it ends after d seconds."""

    def __init__(self, call: LiveCall, mu, short: ShortTicks | None):
        if isinstance(call.elapsed, bool) or not isinstance(call.elapsed, int) or call.elapsed < 0:
            raise ValueError("elapsed must be whole seconds ≥ 0 (round up).")
        self.ticks = TariffTicks.of(call.tariff)
        self.mu = mu
        self.bundle = max(call.bundle_seconds, 0)
        self.elapsed = call.elapsed
        # a call starting inside its bundle never pays a short-call charge (bundles.rate_call)
        self.short = short if self.bundle == 0 else None
        self.earliest_end = max(call.elapsed, 1)

    def cost(self, d: int) -> int:
        if d <= self.bundle:
            return 0
        if self.bundle:
            return self.mu.round(self.ticks.after_bundle(d - self.bundle))
        return self.mu.round(self.ticks.call(d, self.short))

    def exposure(self, d: int) -> int:
        """The most the call can cost if it ends anywhere between now and d seconds."""
        c = self.cost(d)
        s = self.short
        if s is not None and self.earliest_end < s.threshold:
            c = max(c, self.cost(min(d, s.threshold - 1)))
        return c


def _last_true(lo: int, hi: int, ok) -> int:
    """Largest x in [lo, hi] with ok(x), given ok(lo) and ok monotone (true, then false)."""
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if ok(mid):
            lo = mid
        else:
            hi = mid - 1
    return lo


def shared_deadlines(credit, calls: Sequence[LiveCall], currency: str,
                     short_call: ShortCallCharge | None = None,
                     cap: int = MAX_CALL_SECONDS, *, places: int | None = None) -> list[Deadline]:
    """When each live call of one account must be hung up so that, together, they never cost
    more than `credit` (prepaid balance, or postpaid credit-limit headroom). Input order kept.

    `credit` must not include the cost of calls that have already ended. `places`: the call
    charge precision the calls will be rated at (None: the currency's minor unit); it must be
    the rater's, or a balance could end a fraction of a cent below zero.
    """
    mu = minor_units_of(currency, places)
    budget = mu.floor(credit)
    short = ShortTicks.of(short_call)
    meters = [_Meter(c, mu, short) for c in calls]
    now_cost = [m.cost(m.elapsed) for m in meters]

    spent = sum(now_cost)
    admitted = []
    for i in sorted(range(len(calls)), key=lambda i: (calls[i].answered_at, i)):
        m = meters[i]
        if m.elapsed >= cap:
            continue
        step = m.exposure(m.elapsed + 1) - now_cost[i]
        if spent + step <= budget:
            spent += step
            admitted.append(i)

    ends = [m.elapsed for m in meters]          # hang up now, unless admitted below
    if admitted:
        dropped_cost = sum(now_cost) - sum(now_cost[i] for i in admitted)

        def fits(t: int) -> bool:
            return dropped_cost + sum(meters[i].exposure(min(meters[i].elapsed + t, cap))
                                      for i in admitted) <= budget

        t = _last_true(1, max(cap - meters[i].elapsed for i in admitted), fits)
        total = dropped_cost
        for i in admitted:
            m = meters[i]
            ends[i] = _block_end(m, min(m.elapsed + t, cap), cap)
            total += m.exposure(ends[i])
        # The parallel drain leaves less than one more increment for every call: what is left
        # buys further increments, oldest call first (admitted is in that order).
        extended = True
        while extended:
            extended = False
            for i in admitted:
                m = meters[i]
                if ends[i] >= cap:
                    continue
                extra = m.exposure(ends[i] + 1) - m.exposure(ends[i])
                if 0 < extra and total + extra <= budget:
                    total += extra
                    ends[i] = _block_end(m, ends[i] + 1, cap)
                    extended = True
    return [Deadline(c.call_id, end - m.elapsed, end) for c, m, end in zip(calls, meters, ends)]


def _block_end(m: _Meter, end: int, cap: int) -> int:
    """The last second of the block `end` falls in: hanging up earlier saves nothing."""
    paid = m.exposure(end)
    return _last_true(end, cap, lambda d: m.exposure(d) <= paid)


def elapsed_seconds(now: float, answered: float, margin: float = 0.0) -> int:
    """Whole seconds a call has been answered, rounded down: what its billsec would be if it
    were hung up now (Asterisk's CDR billsec and the watcher's call records both round down).
    `margin`: how long a hangup sent now takes to land; a call that close to its next second
    will be billed for it."""
    return max(0, int(now + margin - answered))


def max_call_seconds(credit, tariff: Tariff, currency: str, *, bundle_seconds: int = 0,
                     short_call: ShortCallCharge | None = None, cap: int = MAX_CALL_SECONDS,
                     places: int | None = None) -> int:
    """Whole seconds a new call may last: bundle seconds first, then what the credit buys.

    0 when not even the first block is affordable: refuse the call.
    """
    call = LiveCall(None, 0, 0, tariff, bundle_seconds)
    return shared_deadlines(credit, [call], currency, short_call, cap, places=places)[0].max_duration
