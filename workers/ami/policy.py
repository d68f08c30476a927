"""What the watcher asks about accounts: the CallPolicy interface, and an in-memory one for tests.

The database-backed policy (account status, limits, rating, ledger) lives outside this package
and is plugged in by whoever starts the watcher. Every method may be a plain function or a
coroutine function: the watcher awaits whatever is awaitable. Plain methods run on the event
loop, so they must be quick (in-memory or cached); anything touching the database should be
`async def` and hand the blocking work to a thread (`asyncio.to_thread`).

Times are Unix epoch seconds (float) on the watcher host's clock; deadlines are absolute.
"""
from __future__ import annotations

import collections
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Awaitable, Callable, Iterable, Mapping, Protocol, Sequence, Union

# Refusal causes (operator words; the watcher maps each to a Q.850 Hangup cause).
CHANNEL_LIMIT = "channel_limit"
CPS_LIMIT = "cps_limit"
ACCOUNT_SUSPENDED = "account_suspended"
ACCOUNT_DISABLED = "account_disabled"
ACCOUNT_EXPIRED = "account_expired"
ACCOUNT_CLOSED = "account_closed"
COUNTRY_CLOSED = "country_not_opened"
NO_RATE = "no_rate"                   # the destination has no rate on the account's rate sheet
NO_CREDIT = "no_credit"
UNKNOWN_ACCOUNT = "unknown_account"
POLICY_ERROR = "policy_error"


@dataclass(frozen=True, slots=True)
class Admission:
    allowed: bool
    cause: str = ""  # why not, one of the constants above (free text is logged as is)


ADMITTED = Admission(True)


@dataclass(frozen=True, slots=True)
class LiveCall:
    """One live call of an account as the policy sees it (its billed channel)."""
    key: str                  # "<server>/<uniqueid>": unique across servers; deadlines key
    server: str
    channel: str              # e.g. PJSIP/1001-00000001
    uniqueid: str
    linkedid: str
    account: str
    extension: str
    destination: str          # dialled number, '' if not known yet
    started: float
    answered: float | None    # None while ringing
    # Set on a call that has ended but whose record is not in the ledger yet: its cost is
    # spent (never given a deadline), so the calls still running cannot spend it again.
    ended: float | None = None


Deadlines = Mapping[str, Union[float, None]]  # LiveCall.key -> epoch deadline or None


class CallPolicy(Protocol):
    def admit(self, account_number: str, destination: str, now: float
              ) -> Admission | Awaitable[Admission]:
        """May this new call go on? Called once per call, after it is counted in Redis (the
        account's in-use count already includes it). Check max channels (0 = unlimited), calls
        per second, account status (suspended, disabled, expired) and opened countries."""

    def deadlines(self, account_number: str, live_calls: Sequence[LiveCall], now: float
                  ) -> Deadlines | Awaitable[Deadlines]:
        """When must each live call end? {LiveCall.key: absolute epoch deadline, or None for
        no limit}. The account's credit is shared by all its live calls. Called whenever one
        of them starts, is answered or ends, and when the balance changes."""

    def first_use(self, account_number: str, when: float) -> None | Awaitable[None]:
        """The account placed an admitted call (once per account per watcher process; the
        implementation keeps only the first date)."""

    def record_cdr(self, record: dict) -> None | Awaitable[None]:
        """A finished call, exactly once per call (see docs/ami.md for the fields). Rate it and
        post it to the ledger before returning, so the next deadlines see the new balance."""

    # Optional (the watcher calls them only if the policy has them):
    #   attach(watcher) -> None                       once, at start (e.g. to share its counts)
    #   registrations(list[Registration]) -> None     endpoint registration changes, batched
    #   link_status(server, up, error, when) -> None  a link came up or went down


# ---- in-memory policy for tests and benchmarks ---------------------------------------------
@dataclass
class AccountTerms:
    number: str
    balance: Decimal = Decimal("0")
    price_per_second: Decimal = Decimal("0.01")   # every destination costs the same here
    credit_limit: Decimal | None = Decimal("0")   # None: postpaid without a limit
    status: str = "active"                        # active | suspended | disabled
    max_channels: int = 0                         # 0 = unlimited
    cps: int = 0                                  # calls per second, 0 = unlimited
    expires: float | None = None                  # epoch seconds
    opened_prefixes: tuple[str, ...] | None = None  # None: every country is opened
    first_used: float | None = None
    cdrs: list[dict] = field(default_factory=list)


InUse = Callable[[str], Union[int, Awaitable[int]]]


class InMemoryPolicy:
    """Accounts in a dict; deadline = when the shared credit runs out at the summed price."""

    def __init__(self, accounts: Iterable[AccountTerms], in_use: InUse):
        self.accounts = {a.number: a for a in accounts}
        self.in_use = in_use
        self._attempts: dict[str, collections.deque] = collections.defaultdict(collections.deque)

    async def admit(self, account_number: str, destination: str, now: float) -> Admission:
        acct = self.accounts.get(account_number)
        if acct is None:
            return Admission(False, UNKNOWN_ACCOUNT)
        if acct.status == "suspended":
            return Admission(False, ACCOUNT_SUSPENDED)
        if acct.status != "active":
            return Admission(False, ACCOUNT_DISABLED)
        if acct.expires is not None and now >= acct.expires:
            return Admission(False, ACCOUNT_EXPIRED)
        if acct.opened_prefixes is not None and destination and not (
                destination.lstrip("+").removeprefix("00").startswith(acct.opened_prefixes)):
            return Admission(False, COUNTRY_CLOSED)
        if acct.cps:
            window = self._attempts[account_number]
            while window and window[0] <= now - 1.0:
                window.popleft()
            window.append(now)
            if len(window) > acct.cps:
                return Admission(False, CPS_LIMIT)
        if acct.max_channels:
            in_use = self.in_use(account_number)
            if not isinstance(in_use, int):
                in_use = await in_use
            if in_use > acct.max_channels:  # the count includes this call
                return Admission(False, CHANNEL_LIMIT)
        if acct.credit_limit is not None and acct.balance + acct.credit_limit <= 0:
            return Admission(False, NO_CREDIT)
        return ADMITTED

    def deadlines(self, account_number: str, live_calls: Sequence[LiveCall], now: float
                  ) -> dict[str, float | None]:
        acct = self.accounts.get(account_number)
        answered = [c for c in live_calls if c.answered is not None]
        if acct is None or acct.credit_limit is None or not answered:
            return {c.key: None for c in live_calls}
        spent = sum(acct.price_per_second * Decimal(repr(now - c.answered)) for c in answered)
        left = acct.balance + acct.credit_limit - spent
        per_second = acct.price_per_second * len(answered)
        deadline = now + float(left / per_second) if per_second else None
        return {c.key: (deadline if c.answered is not None else None) for c in live_calls}

    def first_use(self, account_number: str, when: float) -> None:
        acct = self.accounts.get(account_number)
        if acct is not None and acct.first_used is None:
            acct.first_used = when

    def record_cdr(self, record: dict) -> None:
        acct = self.accounts.get(record["accountcode"])
        if acct is None:
            return
        acct.cdrs.append(record)
        if record["answer"] is not None:  # charge exact time: overshoot shows up in money
            seconds = (record["end"] - record["answer"]).total_seconds()
            acct.balance -= acct.price_per_second * Decimal(repr(round(seconds, 3)))

    def top_up(self, account_number: str, amount: Decimal) -> None:
        self.accounts[account_number].balance += Decimal(amount)
