"""Bulk writes to PostgreSQL: `COPY … FROM STDIN (FORMAT BINARY)` on the session's connection.

The high-volume writers (rated calls, ledger entries, rate deck rows) use it. Binary, not
text: formatting Decimals and datetimes as text in Python costs more than the database's
own work for the row. It runs inside the session's transaction and never commits.
"""
import gc
from collections.abc import Callable, Iterable, Sequence
from contextlib import contextmanager

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
        with cur.copy(f"COPY {table} ({names}) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types([kind for _, kind in columns])
            for row in rows:
                copy.write_row(row)
                written += 1
                if progress is not None and written % every == 0:
                    progress(written)
    return written


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
