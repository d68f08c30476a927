"""Gapless document numbers per tenant and series (issue 17, point 3).

A series is the tenant's prefix with `{year}` expanded (`ACME-2026-`); its row in
`invoice_sequences` holds the last number used. `allocate()` takes the next one with

    UPDATE invoice_sequences SET last_number = last_number + 1 WHERE … RETURNING last_number

in the transaction that finalises the document. The UPDATE locks the row until that
transaction ends: a second finaliser of the same tenant and series waits for the commit and
then gets the next number; if the first rolls back, its number was never used and the
second gets it. So numbers are unique (also: unique (tenant_id, number) on the documents)
and gapless. The first number of a series inserts the row (ON CONFLICT DO NOTHING: a
concurrent first insert blocks on the primary key until the other commits, then we UPDATE).

Contention: the lock is held from allocation to commit, so callers allocate as late as they
can and commit soon after (the run commits per batch; a batch finalises its invoices last).
"""
import re

from sqlalchemy import text

from app.conflicts import FieldError
from app.extensions import db

YEAR = "{year}"
PREFIX_MAX = 40
SERIES_MAX = 60
_ALLOWED = re.compile(r"^[A-Za-z0-9 ._/#-]*$")


def check_prefix(prefix: str, field: str = "number_prefix") -> str:
    """A prefix a form may save: letters, digits, space . _ / # - and `{year}`."""
    prefix = (prefix or "").strip()
    if len(prefix) > PREFIX_MAX:
        raise FieldError(field, f"At most {PREFIX_MAX} characters.")
    if not _ALLOWED.match(prefix.replace(YEAR, "")):
        raise FieldError(field, "Use letters, digits, spaces and . _ / # - (and {year} for the year).")
    if "{" in prefix.replace(YEAR, "") or "}" in prefix.replace(YEAR, ""):
        raise FieldError(field, "The only placeholder is {year}.")
    return prefix


def series_of(prefix: str, year: int) -> str:
    return (prefix or "").replace(YEAR, f"{year:04d}")[:SERIES_MAX]


def format_number(series: str, sequence: int, digits: int) -> str:
    return f"{series}{sequence:0{max(1, min(int(digits), 12))}d}"


def allocate(tenant_id: int, series: str, count: int = 1) -> int:
    """Take the next `count` numbers of the series; returns the last of them (the first is
    last - count + 1). The row stays locked until this transaction ends. Flushes pending rows
    first (the caller's documents are written in the same transaction)."""
    if count < 1:
        raise ValueError("allocate at least one number")
    session = db.session
    session.flush()
    params = {"t": tenant_id, "s": series, "n": int(count)}
    bump = text("UPDATE invoice_sequences SET last_number = last_number + :n "
                "WHERE tenant_id = :t AND series = :s RETURNING last_number")
    for _ in range(3):
        n = session.execute(bump, params).scalar()
        if n is not None:
            return int(n)
        first = session.execute(text(
            "INSERT INTO invoice_sequences (tenant_id, series, last_number) VALUES (:t, :s, :n) "
            "ON CONFLICT (tenant_id, series) DO NOTHING RETURNING last_number"), params).scalar()
        if first is not None:
            return int(first)
    raise RuntimeError(f"could not allocate a number in series {series!r}")


def last_number(tenant_id: int, series: str) -> int:
    n = db.session.execute(text("SELECT last_number FROM invoice_sequences WHERE tenant_id = :t AND series = :s"),
                           {"t": tenant_id, "s": series}).scalar()
    return int(n or 0)
