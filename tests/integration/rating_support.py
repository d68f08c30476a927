"""Factories for the rating tests: rate sheets with rows, plans with countries, calls."""
import itertools
import uuid
from datetime import date, datetime
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from app.accounts.models import Account
from app.calls.models import Call
from app.extensions import db
from app.ledger import LedgerEntry
from tenants.scope import unscoped

_uid = itertools.count(1)


@pytest.fixture(autouse=True)
def fresh_index_cache():
    """Tests restart ids at 1: a cached index of another test's sheet 1 must not be reused."""
    from app.rating.index import clear_index_cache

    clear_index_cache()
    yield
    clear_index_cache()


def make_sheet(tenant, rows=(), *, name=None, currency="USD", short_call=(0, "0")):
    """rows: (prefix, country, rate[, connect, first block, increment, minimum, effective_from])."""
    from app.rating.models import Rate, RateSheet

    with unscoped():
        sheet = RateSheet(tenant_id=tenant.id, name=name or f"Sheet {uuid.uuid4().hex[:6]}", currency=currency,
                          short_call_seconds=short_call[0], short_call_charge=Decimal(short_call[1]))
        db.session.add(sheet)
        db.session.flush()
        for row in rows:
            prefix, country, rate, *rest = row
            connect, fb, inc, minimum, effective = (list(rest) + [None] * 5)[:5]
            db.session.add(Rate(tenant_id=tenant.id, rate_sheet_id=sheet.id, prefix=prefix, country=country,
                                description=f"{country} {prefix}", rate_per_minute=Decimal(rate),
                                connect_fee=Decimal(connect or "0"), first_block=fb if fb is not None else 1,
                                increment=inc or 1, minimum_charge=Decimal(minimum or "0"),
                                effective_from=effective or date(2000, 1, 1)))
        db.session.commit()
        return sheet.id


def give_plan(account, sheet_id=None, countries=(("GB", 0),)):
    from app.billing.models import PlanCountry, ServicePlan

    with unscoped():
        plan = ServicePlan(tenant_id=account.tenant_id, account_id=account.id, name=f"Plan {uuid.uuid4().hex[:8]}",
                           rate_sheet_id=sheet_id)
        db.session.add(plan)
        db.session.flush()
        for country, minutes in countries:
            db.session.add(PlanCountry(tenant_id=account.tenant_id, account_id=account.id, plan_id=plan.id,
                                       country=country, minutes=minutes))
        db.session.commit()
        return plan.id


def add_call(account, destination, billsec, started_at=None, *, disposition=None):
    with unscoped():
        call = Call(tenant_id=account.tenant_id, account_id=account.id, server="pbx1",
                    uniqueid=f"{next(_uid)}.{uuid.uuid4().hex[:8]}", extension="1000", destination=destination,
                    started_at=started_at or datetime(2025, 5, 10, 12, 0, 0), billsec=billsec,
                    disposition=disposition or ("ANSWERED" if billsec else "NO ANSWER"))
        db.session.add(call)
        db.session.commit()
        return call.id


def call(call_id) -> Call:
    db.session.rollback()
    with unscoped():
        return db.session.execute(select(Call).where(Call.id == call_id)
                                  .execution_options(populate_existing=True)).scalar_one()


def balance(account_id) -> Decimal:
    db.session.rollback()
    with unscoped():
        return db.session.execute(select(Account.balance).where(Account.id == account_id)).scalar_one()


def call_entries(account_id) -> list[tuple[str, Decimal]]:
    db.session.rollback()
    with unscoped():
        return [tuple(r) for r in db.session.execute(
            select(LedgerEntry.idempotency_key, LedgerEntry.amount)
            .where(LedgerEntry.account_id == account_id, LedgerEntry.kind == "call").order_by(LedgerEntry.id))]


def ledger_count(kind="call") -> int:
    with unscoped():
        return db.session.scalar(select(func.count()).select_from(LedgerEntry).where(LedgerEntry.kind == kind))
