"""Bulk writes to PostgreSQL: `COPY … FROM STDIN (FORMAT BINARY)` on the session's connection.

The high-volume writers (rated calls, ledger entries, rate deck rows) use it. Binary, not
text: formatting Decimals and datetimes as text in Python costs more than the database's
own work for the row. It runs inside the session's transaction and never commits.
"""
import gc
import struct
from collections.abc import Callable, Iterable, Sequence
from contextlib import contextmanager
from decimal import Decimal

from psycopg import adapters, postgres
from psycopg.adapt import Dumper
from psycopg.pq import Format
from psycopg.types.string import BytesBinaryDumper

from app.money import MONEY_SCALE

# (column, PostgreSQL type) pairs name the columns and tell psycopg how to encode each value.
Columns = Sequence[tuple[str, str]]

# A numeric column whose values come already in numeric's binary wire format (`numeric_binary`,
# `scaled_numeric_binary`). Binary COPY carries no types: PostgreSQL reads each field with its
# column's own receive function. So psycopg is told "bytea", whose dumper passes bytes through
# in C, where a Python dumper would cost a call per value.
NUMERIC_BINARY = "numeric, already encoded"


def copy_rows(session, table: str, columns: Columns, rows: Iterable[tuple], *,
              progress: Callable[[int], None] | None = None, every: int = 10_000) -> int:
    """COPY `rows` (tuples in `columns` order) into `table`; returns how many were written.
    `progress(n)` is called every `every` rows."""
    raw = session.connection().connection.driver_connection
    names = ", ".join(name for name, _ in columns)
    written = 0
    with raw.cursor() as cur:
        cur.adapters.register_dumper(Decimal, RepeatedNumericDumper)     # this cursor only
        # psycopg's own bytes dumper (in C): for bytea psycopg registers the DB-API one, in Python.
        cur.adapters.register_dumper(bytes, BytesBinaryDumper)
        with cur.copy(f"COPY {table} ({names}) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(["bytea" if kind == NUMERIC_BINARY else kind for _, kind in columns])
            for row in rows:
                copy.write_row(row)
                written += 1
                if progress is not None and written % every == 0:
                    progress(written)
    return written


_NumericBinaryDumper = adapters.get_dumper_by_oid(postgres.types["numeric"].oid, Format.BINARY)


class RepeatedNumericDumper(Dumper):
    """psycopg's own binary numeric dumper, its output kept per value.

    Money repeats (a million calls come to a few thousand distinct costs), and encoding a
    Decimal as binary numeric costs more than the rest of a 22-column row. Keyed by value, so
    0.1 and 0.10 share an encoding: right for our numeric columns, which all declare a scale.
    """
    format = Format.BINARY
    oid = postgres.types["numeric"].oid
    _KEPT = 20_000                        # per COPY; unique values (running balances) pass through

    def __init__(self, cls, context=None):
        super().__init__(cls, context)
        self._numeric = _NumericBinaryDumper(cls, context)
        self._seen: dict[Decimal, bytes] = {}

    def dump(self, obj):
        data = self._seen.get(obj)
        if data is None:
            data = bytes(self._numeric.dump(obj))
            if len(self._seen) < self._KEPT:
                self._seen[obj] = data
        return data


_numeric_dumper = _NumericBinaryDumper(Decimal)
_encoded: dict[Decimal, bytes] = {}


def numeric_binary(value: Decimal | None) -> bytes | None:
    """psycopg's binary numeric encoding of `value`, kept per value (as RepeatedNumericDumper,
    process-wide: call costs repeat from batch to batch). For NUMERIC_BINARY columns, which all
    declare their scale: equal values (0.1, 0.10) share the encoding of the first one seen."""
    data = _encoded.get(value)
    if data is None:
        if value is None:
            return None
        data = bytes(_numeric_dumper.dump(value))
        if len(_encoded) < 50_000:
            _encoded[value] = data
    return data


_NUMERIC_POS, _NUMERIC_NEG, _NBASE = 0x0000, 0x4000, 10_000
_heads: dict[int, bytes] = {}
_LAST_DIGIT = [d.to_bytes(2, "big") for d in range(_NBASE)]


def scaled_numeric_binary(units: int) -> bytes:
    """Binary numeric encoding of units / 10^4 (an amount counted in MONEY_SCALE units), for
    values that rarely repeat (running balances): integer arithmetic, no Decimal.

    Numeric's wire format: ndigits, weight, sign, dscale (int16 each), then base-10,000 digits,
    most significant first. With 4 decimals the last digit is the fraction. PostgreSQL's
    numeric_recv strips zero digits itself, so the digits are not trimmed here.
    """
    whole, last = divmod(units if units >= 0 else -units, _NBASE)
    key = whole << 1 | (units < 0)          # the head: sign and whole part, shared by many values
    head = _heads.get(key)
    if head is None:
        head = _numeric_head(whole, units < 0)
        if len(_heads) < 100_000:
            _heads[key] = head
    return head + _LAST_DIGIT[last]


def _numeric_head(whole: int, negative: bool) -> bytes:
    sign = _NUMERIC_NEG if negative else _NUMERIC_POS
    digits = []
    while whole:
        whole, d = divmod(whole, _NBASE)
        digits.append(d)
    digits.reverse()
    head = struct.pack(">hhHH", len(digits) + 1, len(digits) - 1, sign, MONEY_SCALE)
    return head + b"".join(_LAST_DIGIT[d] for d in digits)


@contextmanager
def collector_paused():
    """Bulk work keeps a million small objects alive (deck rows, call records), and CPython's
    cyclic collector rescans that growing heap again and again: a third of the time. That work
    makes no reference cycles, so collection can wait until the end."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
