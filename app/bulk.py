"""Bulk writes to PostgreSQL: `COPY … FROM STDIN (FORMAT BINARY)` on the session's connection.

The high-volume writers (rated calls, ledger entries, rate deck rows) use it. Binary, not
text: formatting Decimals and datetimes as text in Python costs more than the database's
own work for the row. It runs inside the session's transaction and never commits.
"""
import gc
from collections.abc import Callable, Iterable, Sequence
from contextlib import contextmanager
from decimal import Decimal

from psycopg import adapters, postgres
from psycopg.adapt import Dumper
from psycopg.pq import Format

# (column, PostgreSQL type) pairs name the columns and tell psycopg how to encode each value.
Columns = Sequence[tuple[str, str]]


def copy_rows(session, table: str, columns: Columns, rows: Iterable[tuple], *,
              progress: Callable[[int], None] | None = None, every: int = 10_000) -> int:
    """COPY `rows` (tuples in `columns` order) into `table`; returns how many were written.
    `progress(n)` is called every `every` rows."""
    raw = session.connection().connection.driver_connection
    names = ", ".join(name for name, _ in columns)
    written = 0
    with raw.cursor() as cur:
        cur.adapters.register_dumper(Decimal, RepeatedNumericDumper)     # this cursor only
        with cur.copy(f"COPY {table} ({names}) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types([kind for _, kind in columns])
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
