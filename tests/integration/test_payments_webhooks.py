"""Stripe webhooks: signed with the stripe library's own scheme, applied once, in any order."""
import json
import threading
import time
from decimal import Decimal

import pytest
import stripe
from sqlalchemy import func, select

from app.accounts.models import Account
from app.extensions import db
from app.ledger import LedgerEntry, balance_mismatches
from app.payments.models import Payment, StripeSettings, WebhookEvent
from app.payments.secrets import encrypt
from tenants.scope import unscoped

SECRET = "whsec_platform_test"


@pytest.fixture
def hook(app):
    app.config["STRIPE_WEBHOOK_SECRET"] = SECRET
    yield app
    app.config["STRIPE_WEBHOOK_SECRET"] = ""


def signed(payload: dict, secret=SECRET, timestamp=None):
    body = json.dumps(payload)
    header = stripe.WebhookSignature.generate_signature_header(body, secret, timestamp=timestamp or int(time.time()))
    return body, {"Stripe-Signature": header, "Content-Type": "application/json"}


def event(eid, kind, obj):
    return {"id": eid, "object": "event", "type": kind, "data": {"object": obj}}


def completed(eid, account, cents=2500, session="cs_1", pi="pi_1", paid="paid"):
    return event(eid, "checkout.session.completed", {
        "id": session, "object": "checkout.session", "amount_total": cents, "currency": account.currency.lower(),
        "payment_status": paid, "payment_intent": pi, "metadata": {"account_id": str(account.id)}})


def balance(account_id):
    with unscoped():
        return db.session.scalar(select(Account.balance).where(Account.id == account_id))


def entries(account_id, kind=None):
    with unscoped():
        q = select(func.count()).select_from(LedgerEntry).where(LedgerEntry.account_id == account_id)
        if kind:
            q = q.where(LedgerEntry.kind == kind)
        return db.session.scalar(q)


def test_a_signed_completion_credits_the_account_once(hook, client, world):
    start = balance(world.account_a.id)
    body, headers = signed(completed("evt_1", world.account_a))
    for _ in range(2):
        r = client.post("/webhooks/stripe", data=body, headers=headers)
        assert r.status_code == 200
    assert r.json["outcome"] == "duplicate"
    assert balance(world.account_a.id) == start + Decimal("25.00")
    assert entries(world.account_a.id, "payment") == 1
    with unscoped():
        p = db.session.execute(select(Payment)).scalar_one()
        assert (p.status, p.amount, p.payment_intent_id) == ("succeeded", Decimal("25.00"), "pi_1")
        assert balance_mismatches() == []


@pytest.mark.parametrize("how", ["bad_signature", "stale", "other_tenant_secret", "no_header"])
def test_a_bad_or_stale_signature_gets_400_and_changes_nothing(hook, client, world, how):
    start = balance(world.account_a.id)
    payload = completed("evt_bad", world.account_a)
    if how == "bad_signature":
        body, headers = signed(payload, secret="whsec_wrong")
    elif how == "stale":
        body, headers = signed(payload, timestamp=int(time.time()) - 3600)
    elif how == "other_tenant_secret":
        with unscoped():
            db.session.add(StripeSettings(tenant_id=world.b.id, webhook_key="tenant-b",
                                          webhook_secret_encrypted=encrypt("whsec_b")))
            db.session.commit()
        body, headers = signed(payload, secret="whsec_b")    # B's secret on the platform endpoint
    else:
        body, headers = signed(payload)
        headers.pop("Stripe-Signature")
    r = client.post("/webhooks/stripe", data=body, headers=headers)
    assert r.status_code == 400
    assert balance(world.account_a.id) == start
    with unscoped():
        assert db.session.scalar(select(func.count()).select_from(WebhookEvent)) == 0


def test_a_resellers_endpoint_takes_its_own_secret_and_only_its_own_accounts(hook, client, world):
    with unscoped():
        db.session.add(StripeSettings(tenant_id=world.a.id, webhook_key="key-a",
                                      webhook_secret_encrypted=encrypt("whsec_a")))
        db.session.commit()
        stored = db.session.scalar(select(StripeSettings.webhook_secret_encrypted))
    assert "whsec_a" not in stored                                   # encrypted at rest
    start_a, start_b = balance(world.account_a.id), balance(world.account_b.id)
    body, headers = signed(completed("evt_a", world.account_a), secret=SECRET)
    assert client.post("/webhooks/stripe/key-a", data=body, headers=headers).status_code == 400
    body, headers = signed(completed("evt_a", world.account_a), secret="whsec_a")
    assert client.post("/webhooks/stripe/key-a", data=body, headers=headers).status_code == 200
    body, headers = signed(completed("evt_b", world.account_b, session="cs_b", pi="pi_b"), secret="whsec_a")
    r = client.post("/webhooks/stripe/key-a", data=body, headers=headers)
    assert r.json["outcome"] == "review"                            # kept, not credited
    assert client.post("/webhooks/stripe/no-such-key", data=body, headers=headers).status_code == 404
    assert balance(world.account_a.id) == start_a + Decimal("25.00")
    assert balance(world.account_b.id) == start_b


def test_ten_concurrent_redeliveries_credit_once(hook, app, world):
    start = balance(world.account_a.id)
    body, headers = signed(completed("evt_race", world.account_a, cents=1000))
    barrier = threading.Barrier(10)
    codes = []

    def send():
        c = app.test_client()
        barrier.wait()
        codes.append(c.post("/webhooks/stripe", data=body, headers=headers).status_code)

    threads = [threading.Thread(target=send) for _ in range(10)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert codes == [200] * 10
    assert balance(world.account_a.id) == start + Decimal("10.00")
    assert entries(world.account_a.id, "payment") == 1


def test_refund_before_completion_applies_once_the_payment_arrives(hook, client, world):
    start = balance(world.account_a.id)
    refund = event("evt_ref", "charge.refunded", {"id": "ch_1", "object": "charge", "payment_intent": "pi_1",
                                                  "amount_refunded": 1000, "currency": "usd"})
    body, headers = signed(refund)
    assert client.post("/webhooks/stripe", data=body, headers=headers).json["outcome"] == "deferred"
    assert balance(world.account_a.id) == start
    body, headers = signed(completed("evt_done", world.account_a))
    client.post("/webhooks/stripe", data=body, headers=headers)
    assert balance(world.account_a.id) == start + Decimal("15.00")
    # the full refund later: only the difference is debited
    full = event("evt_ref2", "charge.refunded", {"id": "ch_1", "object": "charge", "payment_intent": "pi_1",
                                                 "amount_refunded": 2500, "currency": "usd"})
    body, headers = signed(full)
    client.post("/webhooks/stripe", data=body, headers=headers)
    assert balance(world.account_a.id) == start
    with unscoped():
        assert db.session.execute(select(Payment.status)).scalar_one() == "refunded"
        assert balance_mismatches() == []


def test_async_payment_failed_attempts_disputes_and_unknown_events(hook, client, world):
    start = balance(world.account_a.id)
    acct = world.account_a
    for payload in (
        completed("e1", acct, session="cs_2", pi="pi_2", paid="unpaid"),
        event("e2", "checkout.session.async_payment_succeeded", completed("x", acct, session="cs_2", pi="pi_2")["data"]["object"]),
        event("e3", "payment_intent.payment_failed", {"id": "pi_3", "object": "payment_intent", "amount": 900,
              "currency": "usd", "metadata": {"account_id": str(acct.id)},
              "last_payment_error": {"message": "Your card was declined.", "charge": "ch_3"}}),
        event("e4", "charge.dispute.created", {"id": "dp_1", "object": "dispute", "payment_intent": "pi_2",
                                               "amount": 2500, "reason": "fraudulent"}),
        event("e5", "customer.created", {"id": "cus_1", "object": "customer"}),
        completed("e6", acct, session="cs_9", pi="pi_9") | {"data": {"object": {
            "id": "cs_9", "object": "checkout.session", "amount_total": 100, "currency": "usd",
            "payment_status": "paid", "payment_intent": "pi_9", "metadata": {"account_id": "999999"}}}},
    ):
        body, headers = signed(payload)
        assert client.post("/webhooks/stripe", data=body, headers=headers).status_code == 200
    assert balance(acct.id) == start + Decimal("25.00")
    with unscoped():
        rows = {p.provider_ref: (p.status, p.failure_message) for p in db.session.execute(select(Payment)).scalars()}
        assert rows["cs_2"][0] == "disputed"
        assert rows["pi_3:ch_3"] == ("failed", "Your card was declined.")
        statuses = dict(db.session.execute(select(WebhookEvent.event_id, WebhookEvent.status)).all())
        assert statuses["e5"] == "ignored" and statuses["e6"] == "review"


# --- the fast path's own pieces (bench/webhooks.py) --------------------------------------------

def test_a_signed_body_that_is_not_a_stripe_event_gets_400_and_changes_nothing(hook, client, world):
    for payload in ({"id": "evt_x", "type": "checkout.session.completed"}, {"object": "event"},
                    {"id": "evt_y", "type": "x", "data": {"object": "not a dict"}}, ["a list"]):
        body = json.dumps(payload)
        header = stripe.WebhookSignature.generate_signature_header(body, SECRET)
        r = client.post("/webhooks/stripe", data=body, headers={"Stripe-Signature": header})
        assert r.status_code == 400 and "not a Stripe event" in r.json["error"]
    body = "{not json"
    r = client.post("/webhooks/stripe", data=body,
                    headers={"Stripe-Signature": stripe.WebhookSignature.generate_signature_header(body, SECRET)})
    assert r.status_code == 400
    with unscoped():
        assert db.session.scalar(select(func.count()).select_from(WebhookEvent)) == 0


def test_a_resellers_kept_secret_follows_its_changes(hook, client, world, monkeypatch):
    from app.payments import webhooks
    from app.payments.operations import save_stripe_settings

    with unscoped():
        row = save_stripe_settings(world.a.id, secret_key="sk_test_a", webhook_secret="whsec_one", topup_min="5",
                                   topup_max="500", presets="10,25")
        db.session.commit()
        key = row.webhook_key
    url = f"/webhooks/stripe/{key}"
    start = balance(world.account_a.id)

    def send(eid, secret, session):
        body, headers = signed(completed(eid, world.account_a, session=session, pi=f"pi_{session}"), secret=secret)
        return client.post(url, data=body, headers=headers)

    assert send("e1", "whsec_one", "cs_1").status_code == 200          # read, decrypted and kept
    assert webhooks.secret_for(key) == ("whsec_one", world.a.id)
    # Saved in the portal (this process): the kept secret goes at the commit.
    with unscoped():
        save_stripe_settings(world.a.id, webhook_secret="whsec_two", topup_min="5", topup_max="500", presets="10,25")
        db.session.commit()
    assert send("e2", "whsec_one", "cs_2").status_code == 400
    assert send("e3", "whsec_two", "cs_3").status_code == 200
    # Changed by another process (no ORM event here): a new secret works at once, because a
    # failing signature reads the row again ...
    with unscoped():
        db.session.execute(StripeSettings.__table__.update().values(webhook_secret_encrypted=encrypt("whsec_three")))
        db.session.commit()
    monkeypatch.setattr(webhooks, "RELOAD_AFTER_FAILURE", 0)
    assert send("e4", "whsec_three", "cs_4").status_code == 200
    # ... and an old one is refused everywhere once the kept copy is older than SECRET_TTL.
    with unscoped():
        db.session.execute(StripeSettings.__table__.update().values(webhook_secret_encrypted=encrypt("whsec_four")))
        db.session.commit()
    assert send("e5", "whsec_three", "cs_5").status_code == 200         # kept for SECRET_TTL
    monkeypatch.setattr(webhooks, "SECRET_TTL", 0)
    assert send("e6", "whsec_three", "cs_6").status_code == 400
    assert send("e7", "whsec_four", "cs_7").status_code == 200
    assert balance(world.account_a.id) == start + 5 * Decimal("25.00")   # e1, e3, e4, e5, e7
    with unscoped():                                                     # removed: 404
        save_stripe_settings(world.a.id, remove_keys=True, topup_min="5", topup_max="500", presets="10,25")
        db.session.execute(StripeSettings.__table__.delete())
        db.session.commit()
    assert send("e8", "whsec_four", "cs_8").status_code == 404


def test_receipts_go_by_one_woken_job_once_each(hook, app, client, world):
    from app.jobs import queue, redis_connection
    from app.notifications.models import Notification
    from workers.payments import send_receipts

    queue(app).empty()
    for n in range(3):
        body, headers = signed(completed(f"evt_r{n}", world.account_a, session=f"cs_r{n}", pi=f"pi_r{n}"))
        assert client.post("/webhooks/stripe", data=body, headers=headers).json["outcome"] == "processed"
        assert client.post("/webhooks/stripe", data=body, headers=headers).json["outcome"] == "duplicate"
    # Three credits, one run waiting: no RQ enqueue per payment.
    assert [j.func_name for j in queue(app).get_jobs()] == ["workers.payments.send_receipts"]
    with unscoped():
        assert sorted(db.session.scalars(select(Payment.receipt_status))) == ["due"] * 3
    assert send_receipts() == 3                         # what the worker runs
    assert redis_connection(app).exists("ringledger:wake:payment-receipts") == 0
    assert send_receipts() == 0                         # nothing is sent twice
    body, headers = signed(completed("evt_r9", world.account_a, session="cs_r9", pi="pi_r9"))
    client.post("/webhooks/stripe", data=body, headers=headers)
    woken = [j for j in queue(app).get_jobs() if j.func_name == "workers.payments.send_receipts"]
    assert len(woken) == 2                              # the run started: the next credit wakes another
    assert send_receipts() == 1
    with unscoped():
        assert sorted(db.session.scalars(select(Payment.receipt_status))) == ["queued"] * 4
        mails = db.session.scalars(select(Notification).where(Notification.kind == "payment_received")).all()
        assert len(mails) == 4 and all(m.to_email == world.account_a.email for m in mails)


def test_a_credit_rolled_back_wakes_nothing(hook, app, world):
    from app.jobs import queue
    from app.payments import webhooks

    queue(app).empty()
    with unscoped():
        event_ = completed("evt_rb", world.account_a, session="cs_rb", pi="pi_rb")
        assert webhooks.record_event(event_, None) == "processed"
        db.session.rollback()
    assert queue(app).get_jobs() == []
    assert entries(world.account_a.id, "payment") == 0


def test_a_top_up_started_in_the_portal_is_credited_at_what_stripe_collected(hook, client, world):
    # The pending payment of the portal (amount typed) meets the completion (amount collected).
    with unscoped():
        db.session.add(Payment(tenant_id=world.a.id, account_id=world.account_a.id, provider="stripe",
                               provider_ref="cs_p", currency="USD", amount=Decimal("30.00")))
        db.session.commit()
    start = balance(world.account_a.id)
    body, headers = signed(completed("evt_p", world.account_a, cents=2900, session="cs_p", pi="pi_p"))
    assert client.post("/webhooks/stripe", data=body, headers=headers).json["outcome"] == "processed"
    assert balance(world.account_a.id) == start + Decimal("29.00")
    with unscoped():
        p = db.session.execute(select(Payment)).scalar_one()
        assert (p.status, p.amount, p.payment_intent_id, p.receipt_status) == ("succeeded", Decimal("29.00"), "pi_p", "due")
        assert p.ledger_entry_id and p.paid_at


def test_a_closed_account_or_another_currency_is_held_for_review(hook, client, world):
    start = balance(world.account_a2.id)
    with unscoped():
        db.session.execute(Account.__table__.update().where(Account.id == world.account_a2.id).values(status="closed"))
        db.session.commit()
    body, headers = signed(completed("evt_c", world.account_a2, session="cs_c", pi="pi_c"))
    assert client.post("/webhooks/stripe", data=body, headers=headers).json["outcome"] == "review"
    payload = completed("evt_eur", world.account_a, session="cs_eur", pi="pi_eur")
    payload["data"]["object"]["currency"] = "eur"
    body, headers = signed(payload)
    assert client.post("/webhooks/stripe", data=body, headers=headers).json["outcome"] == "review"
    assert balance(world.account_a2.id) == start
    with unscoped():
        assert sorted(db.session.scalars(select(Payment.status))) == ["review", "review"]
        assert entries(world.account_a.id, "payment") == 0


def test_a_refund_recorded_while_its_payment_is_credited_is_applied_not_left_deferred(hook, app, world, monkeypatch):
    """The refund's transaction records it "deferred" (no credited payment yet) and stays open a
    moment; the completion comes in meanwhile. The completion waits for the refund's transaction
    (one event of an intent at a time), then sees it deferred and applies it."""
    import app.payments.webhooks as webhooks

    start = balance(world.account_a.id)
    refunding = threading.Event()
    real_refund = webhooks._refund

    def slow_refund(charge):
        outcome = real_refund(charge)
        refunding.set()
        time.sleep(0.8)                 # the refund's transaction is still open
        return outcome
    monkeypatch.setattr(webhooks, "_refund", slow_refund)
    refund = signed(event("evt_ref_race", "charge.refunded", {"id": "ch_9", "object": "charge", "payment_intent": "pi_9",
                                                              "amount_refunded": 1000, "currency": "usd"}))
    done = signed(completed("evt_done_race", world.account_a, cents=2500, session="cs_9", pi="pi_9"))
    outcomes = {}

    def send(name, body_headers):
        body, headers = body_headers
        outcomes[name] = app.test_client().post("/webhooks/stripe", data=body, headers=headers).json["outcome"]

    r = threading.Thread(target=send, args=("refund", refund))
    r.start()
    assert refunding.wait(10)
    c = threading.Thread(target=send, args=("completion", done))
    c.start()
    r.join(10)
    c.join(10)
    assert outcomes == {"refund": "deferred", "completion": "processed"}
    assert balance(world.account_a.id) == start + Decimal("15.00")       # 25.00 in, 10.00 refunded
    with unscoped():
        assert db.session.execute(select(WebhookEvent.status).where(WebhookEvent.event_id == "evt_ref_race")
                                  ).scalar_one() == "processed"
        assert balance_mismatches() == []
