"""The ledger: idempotent keys, atomic balance updates, balance == sum(ledger) under load."""
import threading
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from app import ledger
from app.accounts.models import Account
from app.extensions import db
from app.ledger import LedgerEntry, balance_mismatches, post
from tenants.scope import account_scope, tenant_scope, unscoped


def test_post_credits_the_balance_and_records_the_balance_after(world):
    with tenant_scope(world.a.id):
        result = post(world.account_a.id, Decimal("2.50"), "credit", "test:credit:1", description="Top-up")
        db.session.commit()
        assert result.created
        assert result.balance_after == Decimal("12.50")
        assert db.session.scalar(select(Account.balance).where(Account.id == world.account_a.id)) == Decimal("12.50")


def test_a_repeated_key_changes_nothing_and_returns_the_first_entry(world):
    with tenant_scope(world.a.id):
        first = post(world.account_a.id, Decimal("-3"), "call", "call:abc")
        again = post(world.account_a.id, Decimal("-3"), "call", "call:abc")
        db.session.commit()
        assert not again.created
        assert again.entry_id == first.entry_id
        assert db.session.scalar(select(Account.balance).where(Account.id == world.account_a.id)) == Decimal("7.00")


def test_amounts_are_rounded_once_half_up_to_the_currency_minor_unit(world, make_account):
    jpy = make_account(world.a, currency="JPY")
    with tenant_scope(world.a.id):
        usd = post(world.account_a.id, Decimal("0.125"), "credit", "round:1")
        yen = post(jpy.id, Decimal("10.5"), "credit", "round:2")
        db.session.commit()
    assert usd.amount == Decimal("0.13")
    assert yen.amount == Decimal("11")


def test_floats_are_refused(world):
    with tenant_scope(world.a.id), pytest.raises(TypeError):
        post(world.account_a.id, 0.1, "credit", "float:1")


def test_posting_to_another_tenants_account_finds_no_account(world):
    with tenant_scope(world.a.id), pytest.raises(LookupError):
        post(world.account_b.id, Decimal("1"), "credit", "cross:1")


def test_a_customer_scope_cannot_post_to_a_sibling_account(world):
    with account_scope(world.a.id, world.account_a.id), pytest.raises(LookupError):
        post(world.account_a2.id, Decimal("1"), "credit", "cross:2")


def test_a_loaded_account_sees_the_new_balance_after_a_post(world):
    with tenant_scope(world.a.id):
        account = db.session.execute(select(Account).where(Account.id == world.account_a.id)).scalar_one()
        assert account.balance == Decimal("10.00")
        post(account.id, Decimal("1"), "credit", "fresh:1")
        assert account.balance == Decimal("11.00")
        db.session.rollback()


def test_concurrent_posts_on_postgresql_keep_balance_equal_to_the_ledger_sum(app, world):
    """Many threads post at once, and several threads race with the same key."""
    account_id, tenant_id = world.account_a.id, world.a.id
    threads, errors = 16, []
    barrier = threading.Barrier(threads)

    def worker(n):
        try:
            with app.app_context(), tenant_scope(tenant_id):
                barrier.wait()
                for i in range(25):
                    # unique debit per thread and step
                    post(account_id, Decimal("-0.01"), "call", f"call:{n}:{i}")
                    # the same refund key from every thread: exactly one may land
                    post(account_id, Decimal("5.00"), "refund", f"refund:shared:{i}")
                    db.session.commit()
                db.session.remove()
        except Exception as e:  # pragma: no cover - reported below
            errors.append(repr(e))

    pool = [threading.Thread(target=worker, args=(n,)) for n in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    assert errors == []
    with unscoped():
        balance = db.session.scalar(select(Account.balance).where(Account.id == account_id))
        total = db.session.scalar(select(func.sum(LedgerEntry.amount)).where(LedgerEntry.account_id == account_id))
        refunds = db.session.scalar(select(func.count()).select_from(LedgerEntry).where(LedgerEntry.kind == "refund"))
        assert refunds == 25
        # 10 initial + 25 refunds x 5 - 16 threads x 25 calls x 0.01
        assert balance == total == Decimal("10") + Decimal("125") - Decimal("4.00")
        assert balance_mismatches() == []
        # Each entry's balance_after is the balance right after it: post() locks the account
        # before inserting, so entries of one account are numbered in the order they landed.
        running = Decimal("0")
        for amount, after in db.session.execute(select(LedgerEntry.amount, LedgerEntry.balance_after)
                                                .where(LedgerEntry.account_id == account_id).order_by(LedgerEntry.id)):
            running += amount
            assert after == running


def test_unknown_kinds_and_empty_keys_are_programming_errors(world):
    with tenant_scope(world.a.id):
        with pytest.raises(ValueError):
            post(world.account_a.id, Decimal("1"), "gift", "k")
        with pytest.raises(ValueError):
            post(world.account_a.id, Decimal("1"), "credit", "")
    assert "call" in ledger.KINDS


def test_post_many_credits_wake_the_owed_charges_job_only_for_accounts_that_wait_for_credit(app, world, make_account):
    """A batch of credits (autorefills of a billing run) checks every credited account in two
    queries: apply_owed is queued for those with owed charges or a suspension of the cycle."""
    from app import jobs
    from app.billing.cycle import RecurringCharge
    from app.ledger import Entry, post_many

    owing, suspended, plain, debited = (make_account(world.a, credit="1") for _ in range(4))
    with unscoped():
        db.session.add(RecurringCharge(tenant_id=world.a.id, account_id=owing.id, kind="extra", item=1,
                                       period="2027-01", amount=Decimal("9.00"), ledger_key="k", status="owed"))
        acct = db.session.execute(select(Account).where(Account.id == suspended.id)).scalar_one()
        acct.status, acct.status_reason = "suspended", "credit limit exceeded"
        db.session.commit()
    with tenant_scope(world.a.id):
        post_many([Entry(owing.id, Decimal("5"), "payment", "p1"), Entry(suspended.id, Decimal("5"), "payment", "p2"),
                   Entry(plain.id, Decimal("5"), "payment", "p3"), Entry(debited.id, Decimal("-1"), "call", "c1")])
        db.session.commit()
    queued = [j for j in jobs.queue(app).job_ids if j.startswith("apply-owed-")]
    assert sorted(int(j.split("-")[2]) for j in queued) == sorted([owing.id, suspended.id])
