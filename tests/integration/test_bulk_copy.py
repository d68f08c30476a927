"""app.bulk.copy_rows: binary COPY on the session's connection, numeric values through
psycopg's own dumper with its output kept per value, or already encoded (NUMERIC_BINARY)."""
from decimal import Decimal

import psycopg
from psycopg.pq import Format
from sqlalchemy import text

from app.bulk import NUMERIC_BINARY, RepeatedNumericDumper, copy_rows, numeric_binary, scaled_numeric_binary
from app.extensions import db

VALUES = [Decimal("0.12"), Decimal("0.1200"), Decimal("-0.05"), Decimal("0"), Decimal("-0"),
          Decimal("123456789012.3456"), Decimal("1E-4"), Decimal("7"), 3, None]


def test_a_kept_encoding_is_byte_for_byte_psycopgs_own():
    own = psycopg.adapters.get_dumper_by_oid(psycopg.postgres.types["numeric"].oid, Format.BINARY)(Decimal)
    kept = RepeatedNumericDumper(Decimal)
    distinct = [Decimal("0.12"), Decimal("-0.05"), Decimal("0"), Decimal("123456789012.3456"), Decimal("1E-4"), 3]
    for value in distinct * 2:                              # the second round comes from the kept ones
        assert kept.dump(value) == bytes(own.dump(value)), value
    # Equal values share the first one's encoding (scale aside): 0.1200 is sent as 0.12,
    # which a numeric(18, 4) column stores as 0.1200 all the same (next test).
    assert kept.dump(Decimal("0.1200")) == bytes(own.dump(Decimal("0.12")))


def test_numeric_values_copied_read_back_the_same(app):
    db.session.execute(text("CREATE TEMP TABLE copied (n int4, amount numeric(18, 4))"))
    written = copy_rows(db.session, "copied", (("n", "int4"), ("amount", "numeric")),
                        [(i, v) for i, v in enumerate(VALUES * 3)])
    back = [v for (v,) in db.session.execute(text("SELECT amount FROM copied ORDER BY n"))]
    db.session.rollback()
    assert written == len(VALUES) * 3
    assert back == [None if v is None else Decimal(v).quantize(Decimal("0.0001")) for v in VALUES * 3]


def test_numeric_binary_is_psycopgs_own_encoding_of_an_equal_value():
    """Kept process-wide: an equal value seen first (0.00 before 0) lends its encoding, which
    decodes to the same number."""
    import random

    oid = psycopg.postgres.types["numeric"].oid
    own = psycopg.adapters.get_dumper_by_oid(oid, Format.BINARY)(Decimal)
    load = psycopg.adapters.get_loader(oid, Format.BINARY)(oid).load
    for value in [Decimal("0.12"), Decimal("-0.05"), Decimal("0"), Decimal("123456789012.3456"), Decimal("1E-4")] * 2:
        assert load(numeric_binary(value)) == value
    fresh = Decimal(random.randrange(10 ** 12, 10 ** 13)).scaleb(-4)     # not seen before in this process
    assert numeric_binary(fresh) == bytes(own.dump(fresh))
    assert numeric_binary(None) is None


# Amounts in units of 10^-4: zero, the edges of a base-10,000 digit, both signs, the column's widest.
UNITS = [0, 1, -1, 9_999, -9_999, 10_000, -10_000, 10_001, 123_456_789, -123_456_789, 100_000_000,
         -5_000_000_000_000, 99_999_999_999_999_999, -99_999_999_999_999_999]


def test_encoded_numeric_values_copied_read_back_the_same(app):
    db.session.execute(text("CREATE TEMP TABLE encoded (n int4, amount numeric(18, 4), balance numeric(18, 4))"))
    rows = [(i, numeric_binary(Decimal(u).scaleb(-4)), scaled_numeric_binary(u)) for i, u in enumerate(UNITS * 2)]
    rows.append((len(rows), None, None))
    written = copy_rows(db.session, "encoded", (("n", "int4"), ("amount", NUMERIC_BINARY), ("balance", NUMERIC_BINARY)),
                        rows)
    back = db.session.execute(text("SELECT amount, balance FROM encoded ORDER BY n")).all()
    db.session.rollback()
    assert written == len(UNITS) * 2 + 1
    expected = [Decimal(u).scaleb(-4).quantize(Decimal("0.0001")) for u in UNITS * 2]
    assert [a for a, _ in back] == expected + [None]
    assert [b for _, b in back] == expected + [None]
