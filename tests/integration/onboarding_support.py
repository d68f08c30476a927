"""Helpers for the onboarding, account-page, numbers and self-service tests."""
import itertools
from decimal import Decimal

from sqlalchemy import func, select

from app.extensions import db
from tenants.scope import tenant_scope, unscoped

_numbers = itertools.count()


def step1(**over) -> dict:
    data = {
        "name": "Harbour Cafe", "email": "owner@harbour.example", "first_name": "Hanna", "last_name": "Harbour",
        "phone": "020 7946 0018", "company": "Harbour Cafe Ltd", "address": "1 Quay Street", "city": "London",
        "state": "", "postcode": "E1 1AA", "country": "GB", "timezone": "Europe/London", "language": "en",
        "currency": "USD", "template_id": "0",
    }
    data.update(over)
    return data


def step2(**over) -> dict:
    data = {
        "step2_seen": "1", "plan_name": "Harbour Gold", "users": "2", "cost_per_user": "10.00",
        "initial_credit": "100.00", "rate_sheet_id": "0", "billing_type": "prepaid", "credit_limit": "0",
        "max_channels": "4", "cps_limit": "2", "low_balance_threshold": "5.00", "email_alerts": "y",
        "invoice_day": "1", "vat_rate": "20", "vat_number": "GB123", "expiry_mode": "none", "expiry_date": "",
        "expiry_days": "", "initial_balance": "0", "portal_password": "",
        "countries-0-country": "GB", "countries-0-minutes": "100",
        "countries-1-country": "", "countries-1-minutes": "",
    }
    data.update(over)
    return {k: v for k, v in data.items() if v is not None}


def wizard(**over) -> dict:
    """Both steps' fields, as the final submit posts them."""
    s1 = {k: over.pop(k) for k in list(over) if k in step1()}
    return {**step1(**s1), **step2(**over), "action": "create"}


def make_rate_sheet(tenant, name="Standard"):
    from app.rating.models import RateSheet

    with unscoped():
        sheet = RateSheet(tenant_id=tenant.id, name=name, currency="USD")
        db.session.add(sheet)
        db.session.commit()
        return sheet.id


def make_numbers(tenant, count=1, *, setup="1.00", monthly="3.00", status="spare"):
    """DIDs already allocated to `tenant` as spare numbers (or the platform's, status=platform)."""
    from app.numbers.models import Number

    ids = []
    with unscoped():
        for _ in range(count):
            n = next(_numbers)
            num = Number(tenant_id=tenant.id, number=f"+44207946{n % 1000:04d}", country="GB",
                         setup_cost=Decimal(setup), monthly_cost=Decimal(monthly), sell_setup=Decimal(setup),
                         sell_monthly=Decimal(monthly), status=status)
            db.session.add(num)
            db.session.flush()
            ids.append(num.id)
        db.session.commit()
    return ids


def onboard_account(tenant, *, name="Harbour Cafe", email=None, plan_name=None, users=2, cost_per_user="10.00",
                    initial_credit="100.00", number_ids=(), **terms):
    """An account made by the domain function (committed); returns its id."""
    from app.billing.onboarding import BasicInfo, PlanTerms, onboard

    n = next(_numbers)
    info = BasicInfo(name=name, email=email or f"admin{n}@customer.example", first_name="Ann", last_name="Admin",
                     phone="+442079460018", country="GB", timezone="UTC", currency="USD")
    plan = PlanTerms(plan_name=plan_name or f"Plan {n}", users=users, cost_per_user=Decimal(cost_per_user),
                     initial_credit=Decimal(initial_credit), number_ids=list(number_ids),
                     portal_password=terms.pop("portal_password", "portal-password-1"), **terms)
    with tenant_scope(tenant.id):
        done = onboard(tenant_id=tenant.id, info=info, terms=plan)
        account_id = done.account.id
        db.session.commit()
    return account_id


def row_counts() -> dict:
    """Rows in every table (unscoped): to show that a refused request wrote nothing."""
    out = {}
    with unscoped():
        for table in db.metadata.sorted_tables:
            out[table.name] = db.session.execute(select(func.count()).select_from(table)).scalar_one()
    return out


def run_jobs(app):
    """Run the queued RQ jobs (emails) in this process."""
    from workers.runner import SimpleWorker

    from app.jobs import queue, redis_connection

    db.session.remove()   # the jobs commit through their own session; read afresh afterwards
    SimpleWorker([queue(app)], connection=redis_connection(app)).work(burst=True)
    db.session.remove()
