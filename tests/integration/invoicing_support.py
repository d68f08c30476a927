"""Helpers for the invoicing tests: postpaid accounts with ledger entries and rated calls dated
inside a closed period, taxes, and reads."""
from datetime import datetime
from decimal import Decimal
from types import SimpleNamespace

from sqlalchemy import select, text, update

from app.extensions import db
from tenants.scope import tenant_scope, unscoped

PERIOD = "2026-11"                               # closed on the machine's date (December 2026)
AFTER = "2026-12-01T12:00:00+00:00"              # a moment after it closed everywhere
CREATED = datetime(2026, 9, 1)                   # accounts exist before every test period


def make_postpaid(make_account, tenant, *, tz="UTC", credit_limit="1000", created=CREATED, **kw):
    a = make_account(tenant, billing_type="postpaid", credit_limit=Decimal(credit_limit), timezone=tz, **kw)
    return dated(a, created)


def plain(tenant):
    """A tenant's id and name, usable after the session that loaded it is gone."""
    return SimpleNamespace(id=tenant.id, name=tenant.name)


def dated(account, created=CREATED):
    """The account as created on `created`; returns (id, tenant_id) as a plain record."""
    ref = SimpleNamespace(id=account.id, tenant_id=account.tenant_id)
    with unscoped():
        db.session.execute(text("UPDATE accounts SET created_at = :c WHERE id = :a"), {"c": created, "a": ref.id})
        db.session.commit()
    return ref


def post_at(account_id, amount, kind, key, at: datetime, description="", places=None) -> int:
    """A ledger entry as if it had been posted at `at` (naive UTC)."""
    from app import ledger

    with unscoped():
        posted = ledger.post(account_id, Decimal(str(amount)), kind, key, description=description, places=places)
        db.session.execute(update(ledger.LedgerEntry).where(ledger.LedgerEntry.id == posted.entry_id)
                           .values(created_at=at))
        db.session.commit()
        return posted.entry_id


def call_at(account, country, seconds, cost, at: datetime, n=[0]) -> int:
    """A rated call and its ledger debit `call:<id>` (cost at 4 places), dated `at`."""
    from app.calls.models import Call

    n[0] += 1
    with unscoped():
        c = Call(tenant_id=account.tenant_id, account_id=account.id, server="t", uniqueid=f"u{n[0]}-{account.id}",
                 destination="4420", started_at=at, billsec=seconds, disposition="ANSWERED", rated_at=at,
                 country=country, cost=Decimal(cost), charged_seconds=seconds)
        db.session.add(c)
        db.session.commit()
        call_id = c.id
    post_at(account.id, -Decimal(cost), "call", f"call:{call_id}", at, f"Call {call_id}", places=4)
    return call_id


def make_tax(tenant, name, rate, *, position=None, compound=False):
    from app.invoicing.taxes import create_tax

    with tenant_scope(tenant.id):
        t = create_tax(tenant.id, name=name, rate=rate, position=position, compound=compound)
        db.session.commit()
        return t.id


def give_taxes(tenant, account_id, tax_ids, *, exempt=False, reason=""):
    from app.accounts.models import Account
    from app.invoicing.taxes import set_account_taxes

    with tenant_scope(tenant.id):
        a = db.session.execute(select(Account).where(Account.id == account_id)).scalar_one()
        set_account_taxes(a, tax_ids, exempt=exempt, reason=reason)
        db.session.commit()


def invoices_of(account_id, kind=None):
    from app.invoicing.models import Invoice

    db.session.remove()
    with unscoped():
        q = select(Invoice).where(Invoice.account_id == account_id)
        if kind:
            q = q.where(Invoice.kind == kind)
        return list(db.session.execute(q.order_by(Invoice.id)).scalars())


def ledger_of(account_id):
    from app.ledger import LedgerEntry

    with unscoped():
        return {k: (kind, amount) for k, kind, amount in db.session.execute(
            select(LedgerEntry.idempotency_key, LedgerEntry.kind, LedgerEntry.amount)
            .where(LedgerEntry.account_id == account_id)).all()}


def balance(account_id) -> Decimal:
    from app.accounts.models import Account

    db.session.remove()
    with unscoped():
        return db.session.execute(select(Account.balance).where(Account.id == account_id)).scalar_one()


def run_documents(tenant_id, key=PERIOD, now=AFTER, **kw) -> dict:
    from workers.invoicing import document_period

    db.session.remove()
    result = document_period(tenant_id, key, now=now, **kw)
    db.session.remove()
    return result


def set_settings(tenant, **values):
    from app.invoicing.models import InvoiceSettings

    with unscoped():
        row = db.session.execute(select(InvoiceSettings).where(InvoiceSettings.tenant_id == tenant.id)).scalar_one_or_none()
        if row is None:
            row = InvoiceSettings(tenant_id=tenant.id)
            db.session.add(row)
        for k, v in values.items():
            setattr(row, k, v)
        db.session.commit()
