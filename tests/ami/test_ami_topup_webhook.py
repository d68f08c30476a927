"""End to end: a customer tops up during a call, the fake Stripe reports the payment through
the signed webhook, the credit's balance notice reaches the AMI watcher and the live call's
deadline moves. Fake Asterisk over TCP, real panoramisk, PostgreSQL, Redis, the fake Stripe
(localstripe + Checkout Sessions); nothing calls ledger.post directly."""
import asyncio
import time
from decimal import Decimal

import pytest
from sqlalchemy import select

from app.extensions import db

from tests.ami.db_harness import calling_account, fresh_account, ledger_entries, run_db_world
from tests.ami.harness import SERVER, eventually
from tests.conftest import STRIPE_TEST_WEBHOOK_SECRET
from tests.fake_stripe import deliver
from tenants.models import Tenant
from tenants.scope import unscoped

UK = "442071234567"


def test_a_webhook_credit_during_a_call_moves_its_deadline(app, make_tenant, make_account, make_login, login,
                                                           fake_stripe):
    account, exts = calling_account(make_tenant, make_account, credit="3.00")   # 3 s at 1.00 a second
    with unscoped():
        tenant = db.session.execute(select(Tenant).where(Tenant.id == fresh_account(account.id).tenant_id)).scalar_one()
    customer = login(app.test_client(), make_login(tenant, "account_admin", account=account))
    started = customer.post("/portal/topup", data={"nonce": "during-call", "preset": "10.00"})
    assert started.status_code == 303
    session_id = started.headers["Location"].rsplit("/", 1)[-1]
    outcome = {}

    def pay_and_deliver():
        fake_stripe.pay(session_id)
        (completed,) = fake_stripe.wait_sent("checkout.session.completed")
        outcome["webhook"] = deliver(app.test_client(), completed, STRIPE_TEST_WEBHOOK_SECRET).json

    async def scenario(w):
        channel = w.call(exts[0][1], account.account_number, UK)
        await w.settled()
        answered = time.time()
        w.ami.answer(channel)
        uid = w.ami.channels[channel]["Uniqueid"]
        await eventually(lambda: w.watcher.deadline_of(SERVER, uid) is not None, what="deadline")
        before = w.watcher.deadline_of(SERVER, uid)
        assert before == pytest.approx(answered + 3, abs=0.3)
        await asyncio.to_thread(pay_and_deliver)
        await eventually(lambda: w.watcher.deadline_of(SERVER, uid) == pytest.approx(before + 10, abs=0.01),
                         timeout=3, what="the deadline moved by the 10.00 top-up (10 s)")
        await asyncio.sleep(max(0.0, before + 0.3 - time.time()))
        assert w.ami.actions("Hangup") == []            # the old deadline has passed: still talking
    run_db_world(app, scenario)
    assert outcome["webhook"] == {"received": True, "outcome": "processed"}
    (payment,) = ledger_entries(account.id, "payment")
    assert payment.amount == Decimal("10.00")
