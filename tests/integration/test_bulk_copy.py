"""app.bulk.copy_rows: binary COPY on the session's connection, numeric values through
psycopg's own dumper with its output kept per value."""
from decimal import Decimal

import psycopg
from psycopg.pq import Format
from sqlalchemy import text

from app.bulk import RepeatedNumericDumper, copy_rows
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
