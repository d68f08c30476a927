"""Longest-prefix match of dialled numbers against one rate-sheet version, and fast rating.

Built once per sheet version (`get_index` caches it), then used read-only:
- `lookup(number)`: the tariff of the longest prefix the number starts with;
- `rate(number, duration, currency)`: one call, integer arithmetic, Decimal out;
- `rate_batch(numbers, durations, currency)`: many calls at once, vectorised with numpy,
  amounts identical to `cost.call_cost` for every call (tests check it on random calls).
"""
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from decimal import Decimal
from typing import NamedTuple

from .cost import ShortCallCharge, Tariff, check_duration
from .micro import MinorUnits, ShortTicks, TariffTicks, minor_units_of

try:
    import numpy as np
except ImportError:  # the batch API still works, one call at a time
    np = None

_INT64_ROOM = 2 ** 62          # keep 2 × ticks + rounding term inside int64
_NUMBER_DIGITS_KEPT = 18       # longer dialled strings are cut: prefixes are at most 15 digits


def dialled_digits(number: str) -> str:
    """E.164 digits of a dialled number ('+44…' or '0044…' -> '44…'); '' if it cannot be routed.

    A national number ('020…') is not routable here: the dialplan must send E.164.
    """
    if number.startswith("+"):
        number = number[1:]
    elif number.startswith("00"):
        number = number[2:]
    if number.isascii() and number.isdigit() and number[0] != "0":
        return number
    return ""


class PrefixIndex:
    """All tariffs of one rate-sheet version, keyed by prefix. Immutable after construction."""

    def __init__(self, tariffs: Iterable[Tariff]):
        self.tariffs: list[Tariff] = list(tariffs)
        self._by_prefix: dict[str, int] = {}
        for i, t in enumerate(self.tariffs):
            if t.prefix in self._by_prefix:
                raise ValueError(f"Prefix {t.prefix} appears twice in one rate-sheet version.")
            self._by_prefix[t.prefix] = i
        self._ticks = [TariffTicks.of(t) for t in self.tariffs]
        self._lengths = sorted({len(p) for p in self._by_prefix}, reverse=True)
        # Scalar lookup goes straight from prefix to (tariff, ticks): one dict probe per length.
        self._entries = {p: (self.tariffs[i], self._ticks[i]) for p, i in self._by_prefix.items()}
        self._arrays = self._build_arrays() if np is not None else None

    def __len__(self):
        return len(self.tariffs)

    # -- one call -------------------------------------------------------------------------
    def _entry(self, number: str):
        digits = dialled_digits(number)
        if digits:
            get = self._entries.get
            for n in self._lengths:        # longest first; a short number just repeats itself
                e = get(digits[:n])
                if e is not None:
                    return e
        return None

    def lookup(self, number: str) -> Tariff | None:
        e = self._entry(number)
        return None if e is None else e[0]

    def rate(self, number: str, duration: int, currency: str,
             short_call: ShortCallCharge | None = None, *, places: int | None = None) -> Decimal | None:
        """Cost of one call, or None when no prefix matches (the call has no route)."""
        check_duration(duration)
        e = self._entry(number)
        if e is None:
            return None
        mu = minor_units_of(currency, places)
        return mu.to_decimal(mu.round(e[1].call(duration, ShortTicks.of(short_call))))

    # -- many calls -----------------------------------------------------------------------
    def rate_batch(self, numbers: Sequence[str], durations: Sequence[int], currency: str,
                   short_call: ShortCallCharge | None = None, *, places: int | None = None) -> "BatchResult":
        """Rate many calls at once: same amounts as `rate`/`call_cost` (at the same `places`:
        the call charge precision, None for the currency's minor unit), far fewer Python steps."""
        if len(numbers) != len(durations):
            raise ValueError("numbers and durations must have the same length.")
        mu = minor_units_of(currency, places)
        if self._arrays is not None and self.tariffs:
            result = self._rate_vectorised(numbers, durations, mu, short_call)
            if result is not None:
                return result
        return self._rate_one_by_one(numbers, durations, mu, short_call)

    def _rate_one_by_one(self, numbers, durations, mu, short_call):
        short = ShortTicks.of(short_call)
        index, minor = [], []
        for number, duration in zip(numbers, durations):
            check_duration(duration)
            digits = dialled_digits(number)
            found = self._longest(digits) if digits else -1
            index.append(found)
            minor.append(mu.round(self._ticks[found].call(duration, short)) if found >= 0 else 0)
        return BatchResult(self.tariffs, index, minor, mu)

    def _build_arrays(self):
        a = {"max": {}}
        for field in ("first_block", "increment", "rate", "connect", "minimum"):
            values = [getattr(t, field) for t in self._ticks]
            a["max"][field] = max(values, default=0)
            # a rate too large for int64 must not wrap around: such a sheet rates one by one
            a[field] = np.array(values, np.int64) if a["max"][field] < _INT64_ROOM else None
        a["segments"] = self._segments()
        return a

    def _segments(self):
        """Longest-prefix match as one sorted search.

        Read every number by its first W digits (W = longest prefix). Prefix p of length L
        covers the key range [p·10^(W-L), (p+1)·10^(W-L)); ranges of different prefixes are
        nested or apart. Cutting the key line at every range end gives segments whose longest
        covering prefix is fixed, so a number's match is the segment its key falls in.
        """
        width = self._lengths[0] if self._lengths else 1
        starts = set()
        for p in self._by_prefix:
            scale = 10 ** (width - len(p))
            starts.add(int(p) * scale)
            starts.add((int(p) + 1) * scale)
        starts = sorted(starts)
        rows, lengths = [], []
        for start in starts:
            key = str(start)
            row = self._longest(key) if len(key) == width else -1
            rows.append(row)
            lengths.append(len(self.tariffs[row].prefix) if row >= 0 else 0)
        starts = np.array(starts, np.int64)
        # Shortcut past a full binary search: the first B digits of a key name a bucket, and
        # bucket h can only hold segments buckets[h]..buckets[h+1]. Most buckets hold one; the
        # rest need a few bisection steps. 10^B stays within ~10 entries per segment (≤ 4 MB).
        b = min(width, len(str(len(starts))), 6)
        step = 10 ** (width - b)
        buckets = np.searchsorted(starts, np.arange(10 ** b + 1, dtype=np.int64) * step, side="right") - 1
        steps = int(np.diff(buckets).max()).bit_length()
        return Segments(width, starts, np.array(rows, np.int64), np.array(lengths, np.int64),
                        step, buckets.astype(np.int32), steps)

    def _longest(self, digits: str) -> int:
        get = self._by_prefix.get
        for n in self._lengths:
            row = get(digits[:n], -1)
            if row >= 0:
                return row
        return -1

    def _rate_vectorised(self, numbers, durations, mu, short_call):
        a = self._arrays
        if a["rate"] is None or a["connect"] is None or a["minimum"] is None:
            return None
        d = np.asarray(durations)
        if d.dtype.kind not in "iu" or not len(d):
            return None          # floats, bools, ints beyond int64: checked one by one, exactly
        if d.min() < 0:
            raise ValueError("A call duration cannot be negative.")
        short = ShortTicks.of(short_call)
        m = a["max"]
        longest = int(d.max())
        bound = ((longest + m["first_block"] + m["increment"]) * m["rate"] + m["connect"]
                 + m["minimum"] + (short.ticks if short else 0))
        if 2 * bound + mu.ticks_per_minor >= 2 ** 63:
            return None                        # beyond int64: exact Python ints, one by one
        d = d.astype(np.int64, copy=False)

        index = self._match(numbers)
        matched = index >= 0
        row = np.where(matched, index, 0)
        fb, inc = a["first_block"][row], a["increment"][row]
        after_first = np.maximum(d, fb) - fb
        billed = fb + (after_first + inc - 1) // inc * inc
        ticks = np.maximum(a["connect"][row] + billed * a["rate"][row], a["minimum"][row])
        if short is not None:
            ticks += np.where(d < short.threshold, short.ticks, 0)
        tpm = mu.ticks_per_minor
        minor = (2 * ticks + tpm) // (2 * tpm)
        minor[(d == 0) | ~matched] = 0
        return BatchResult(self.tariffs, index, minor, mu)

    def _match(self, numbers) -> "np.ndarray":
        """Row of the longest matching prefix for each number, -1 where none matches."""
        sg = self._arrays["segments"]
        values, digits = _number_keys(numbers)
        routable = digits > 0
        longer = digits >= sg.width
        key = np.where(longer, values // _POW10[np.where(longer, digits - sg.width, 0)],
                       values * _POW10[np.where(longer, 0, sg.width - digits)])
        key[~routable] = 0
        seg = sg.segment_of(key)
        safe = np.maximum(seg, 0)
        index = np.where(routable & (seg >= 0), sg.rows[safe], -1)
        # A number shorter than W reads as itself followed by zeros, so it can land in a longer
        # prefix that is itself followed by zeros (4420 in 44200). Rare: settle those one by one.
        for i in np.flatnonzero(routable & ~longer & (sg.lengths[safe] > digits)).tolist():
            index[i] = self._longest(dialled_digits(numbers[i]))
        return index


class Segments(NamedTuple):
    """The key line of one sheet version cut where prefix ranges start and end (see _segments)."""
    width: int               # W: digits of a key (the longest prefix)
    starts: "np.ndarray"     # first key of each segment, ascending
    rows: "np.ndarray"       # tariff row of each segment's longest prefix, -1 for none
    lengths: "np.ndarray"    # that prefix's length
    step: int                # keys per bucket
    buckets: "np.ndarray"    # per bucket: the segment holding its first key
    steps: int               # bisection steps that settle the widest bucket

    def segment_of(self, key: "np.ndarray") -> "np.ndarray":
        """Index of the last segment start <= key, -1 if none (np.searchsorted, shortcut)."""
        h = key // self.step
        seg = self.buckets[h].astype(np.int64)
        last = self.buckets[h + 1].astype(np.int64)
        wide = np.flatnonzero(last > seg)
        lo, hi, k = seg[wide], last[wide], key[wide]
        for _ in range(self.steps):            # invariant: starts[lo] <= k (or lo = -1)
            mid = (lo + hi + 1) // 2
            ok = self.starts[mid] <= k
            lo = np.where(ok, mid, lo)
            hi = np.where(ok, hi, mid - 1)
        seg[wide] = lo
        return seg


_POW10 = np.array([10 ** k for k in range(19)], dtype=np.int64) if np is not None else None
_NUMBER_CHARS = b"+0123456789\n"


def _number_keys(numbers):
    """Each number as (integer of its E.164 digits, digit count); count 0 = not routable.

    Fast path, for batches of plain '44…', '+44…' or '0044…' strings: numpy reads all the
    integers in one C pass, then a vectorised check keeps only what `dialled_digits` accepts
    (one '+' or '00' before the digits, no other leading zero). Any other batch (spaces, letters,
    empty strings, over 18 digits) goes number by number through `dialled_digits`.
    """
    n = len(numbers)
    text = "\n".join(numbers)
    if n and text.isascii():
        raw = text.encode("ascii")
        if not raw.translate(None, _NUMBER_CHARS) and raw.count(b"\n") == n - 1:
            try:
                values = np.fromstring(raw, np.int64, sep="\n")
            except (ValueError, AttributeError):   # '4+4'; or a numpy without text fromstring
                values = None
            lengths = np.fromiter(map(len, numbers), np.int64, n)
            if values is not None and len(values) == n and lengths.max() <= _NUMBER_DIGITS_KEPT:
                digits = np.searchsorted(_POW10, values, side="right")
                extra = lengths - digits       # characters that are not significant digits
                plain = extra == 0
                odd = np.flatnonzero(extra > 0)
                if len(odd):
                    at = (np.cumsum(lengths + 1) - lengths - 1)[odd]
                    buf = np.frombuffer(raw, np.uint8)
                    c0, c1 = buf[at], buf[np.minimum(at + 1, len(buf) - 1)]
                    x = extra[odd]
                    plain[odd] = ((x == 1) & (c0 == ord("+"))) | ((x == 2) & (c0 == 48) & (c1 == 48))
                return values, np.where(plain & (values > 0), digits, 0)
    kept = [dialled_digits(s)[:_NUMBER_DIGITS_KEPT] for s in numbers]
    values = np.fromiter((int(k) if k else 0 for k in kept), np.int64, n)
    return values, np.fromiter(map(len, kept), np.int64, n)


def _as_list(values) -> list:
    return values.tolist() if hasattr(values, "tolist") else list(values)


class BatchResult:
    """Outcome of `rate_batch`: per call, the tariff row (-1: no route) and the cost in minor units.

    `minor` holds exact whole units of the charge (cents, or 1/10,000 at a call charge
    precision of 4 places: `places`); Decimals are made only when asked for,
    since building a million Decimal objects costs more than rating the calls.
    """

    def __init__(self, tariffs, index, minor, minor_units: MinorUnits):
        self._tariffs = tariffs
        self.tariff_index = index      # numpy int64 array (list on the one-by-one path)
        self.minor = minor
        self._mu = minor_units

    def __len__(self):
        return len(self.minor)

    @property
    def currency(self) -> str:
        return self._mu.currency

    @property
    def places(self) -> int:
        return self._mu.places

    def cost(self, i: int) -> Decimal | None:
        return None if self.tariff_index[i] < 0 else self._mu.to_decimal(int(self.minor[i]))

    def tariff(self, i: int) -> Tariff | None:
        row = int(self.tariff_index[i])
        return None if row < 0 else self._tariffs[row]

    def costs(self) -> list[Decimal | None]:
        to_decimal = self._mu.to_decimal
        return [to_decimal(m) if i >= 0 else None
                for i, m in zip(_as_list(self.tariff_index), _as_list(self.minor))]

    def total(self) -> Decimal:
        return self._mu.to_decimal(sum(_as_list(self.minor)))

    @property
    def unrouted(self) -> int:
        return sum(1 for i in _as_list(self.tariff_index) if i < 0)


# -- one index per rate-sheet version ---------------------------------------------------------
_CACHE_SIZE = 32
_cache: "OrderedDict[tuple, PrefixIndex]" = OrderedDict()
_cache_lock = threading.Lock()


def get_index(sheet_id, version, loader: Callable[[], Iterable[Tariff]]) -> PrefixIndex:
    """The index of (sheet, version), built with `loader()` on first use.

    A new version of a sheet replaces the old one in the cache: bump the version whenever the
    sheet's rates change and every process picks the new rates on its next call.
    """
    key = (sheet_id, version)
    with _cache_lock:
        idx = _cache.get(key)
        if idx is not None:
            _cache.move_to_end(key)
            return idx
    idx = PrefixIndex(loader())        # built outside the lock: a slow load blocks no other sheet
    with _cache_lock:
        for old in [k for k in _cache if k[0] == sheet_id and k != key]:
            del _cache[old]
        _cache[key] = idx
        _cache.move_to_end(key)
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return idx


def clear_index_cache() -> None:
    with _cache_lock:
        _cache.clear()
