"""Top-ups through Stripe Checkout against the fake Stripe (localstripe + Checkout Sessions):
the portal creates a session and a pending payment; only the signed webhook credits; the
payment page says "Payment received" once it has; limits per reseller; double clicks; the
payment history for the customer and the reseller; the reseller's Stripe settings."""
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from decimal import Decimal

import pytest
from sqlalchemy import func, select
from werkzeug.serving import make_server

from app.accounts.models import Account
from app.conflicts import FieldError
from app.extensions import db
from app.ledger import LedgerEntry, balance_mismatches
from app.notifications.models import Notification
from app.payments.models import Payment, StripeSettings
from app.payments.operations import save_stripe_settings
from app.payments.secrets import decrypt
from tests.conftest import STRIPE_TEST_WEBHOOK_SECRET
from tests.fake_stripe import deliver
from tests.integration.onboarding_support import run_jobs
from tenants.scope import unscoped


def balance(account_id):
    with unscoped():
        return db.session.scalar(select(Account.balance).where(Account.id == account_id).execution_options(
            populate_existing=True))


def payments():
    db.session.rollback()
    with unscoped():
        return list(db.session.execute(select(Payment).order_by(Payment.id)
                                       .execution_options(populate_existing=True)).scalars())


def start(client, amount="25.00", preset=True, nonce="nonce-1"):
    data = {"nonce": nonce, ("preset" if preset else "amount"): amount}
    return client.post("/portal/topup", data=data)


def session_id_of(resp):
    assert resp.status_code == 303, resp.get_data(as_text=True)[:500]
    return resp.headers["Location"].rsplit("/", 1)[-1]


@pytest.fixture
def customer(world, client, login, fake_stripe):
    return login(client, world.customer_a)


def test_the_topup_page_offers_the_presets_and_the_limits(world, customer):
    page = customer.get("/portal/topup").get_data(as_text=True)
    for preset in ("$10.00", "$25.00", "$50.00", "$100.00"):
        assert preset in page
    assert "From $5.00 to $500.00" in page and 'name="nonce"' in page


def test_the_topup_page_says_a_prepaid_top_up_includes_the_accounts_taxes(world, customer):
    from tests.integration.invoicing_support import give_taxes, make_tax

    assert 'data-testid="topup-tax-note"' not in customer.get("/portal/topup").get_data(as_text=True)
    give_taxes(world.a, world.account_a.id, [make_tax(world.a, "VAT 25%", "25")])
    page = customer.get("/portal/topup").get_data(as_text=True)
    # The first preset, $10.00, includes 25 % VAT: $8.00 reaches the balance, $2.00 is the tax.
    assert "Amounts include VAT 25%" in page and "a top-up of\n    $10.00 credits $8.00" in page


def test_starting_a_topup_creates_a_session_and_a_pending_payment_that_credits_nothing(world, customer, fake_stripe):
    before = balance(world.account_a.id)
    resp = start(customer)
    sid = session_id_of(resp)
    assert resp.headers["Location"].startswith(fake_stripe.checkout_base)
    session = fake_stripe.session(sid)
    assert (session["amount_total"], session["currency"], session["mode"]) == (2500, "usd", "payment")
    assert session["metadata"] == {"account_id": str(world.account_a.id), "purpose": "topup"}
    assert "{CHECKOUT_SESSION_ID}" in session["success_url"]
    (p,) = payments()
    assert (p.status, p.amount, p.provider_ref, p.account_id) == ("pending", Decimal("25.00"), sid, world.account_a.id)
    # The success page (the customer comes back before the webhook) credits nothing.
    back = customer.get(f"/portal/payments/return?session_id={sid}")
    assert back.status_code == 303 and back.headers["Location"].endswith(f"/portal/payments/{p.id}")
    page = customer.get(back.headers["Location"]).get_data(as_text=True)
    assert "Waiting for the card processor" in page and "Payment received" not in page
    assert 'hx-trigger="every 1500ms"' in page
    assert balance(world.account_a.id) == before


def test_the_webhook_credits_once_and_the_page_then_says_payment_received(world, app, customer, fake_stripe):
    before = balance(world.account_a.id)
    sid = session_id_of(start(customer, "40", preset=False))
    fake_stripe.pay(sid)
    (completed,) = fake_stripe.wait_sent("checkout.session.completed")
    for _ in range(3):                                    # redeliveries credit once
        assert deliver(app.test_client(), completed, STRIPE_TEST_WEBHOOK_SECRET).status_code == 200
    (p,) = payments()
    assert p.status == "succeeded" and p.payment_intent_id == completed["object"]["payment_intent"]
    assert balance(world.account_a.id) == before + Decimal("40.00")
    page = customer.get(f"/portal/payments/{p.id}", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "Payment received" in page and "every 1500ms" not in page          # polling stops
    assert "$50.00" in page                                                    # the new balance
    run_jobs(app)                                                              # the receipt job
    with unscoped():
        (mail,) = db.session.execute(select(Notification).where(Notification.kind == "payment_received")).scalars()
        assert "$40.00" in mail.body and mail.to_email == world.account_a.email
        assert balance_mismatches() == []


def test_the_amount_stripe_collected_is_what_gets_credited(world, app, customer, fake_stripe):
    before = balance(world.account_a.id)
    sid = session_id_of(start(customer, "25.00"))
    fake_stripe.pay(sid)
    (completed,) = fake_stripe.wait_sent("checkout.session.completed")
    completed["object"]["amount_total"] = 2400          # e.g. a discount applied on Stripe's side
    deliver(app.test_client(), completed, STRIPE_TEST_WEBHOOK_SECRET)
    (p,) = payments()
    assert p.amount == Decimal("24.00") and balance(world.account_a.id) == before + Decimal("24.00")


def test_double_clicking_pay_gives_one_session_and_one_pending_payment(world, app, new_client, login, fake_stripe):
    clients = [login(new_client(), world.customer_a) for _ in range(6)]
    barrier, locations = threading.Barrier(6), []

    def click(c):
        barrier.wait()
        locations.append(start(c, "25.00", nonce="same-form").headers.get("Location"))

    threads = [threading.Thread(target=click, args=(c,)) for c in clients]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert len(set(locations)) == 1 and locations[0]
    assert len(fake_stripe.sessions()) == 1
    (p,) = payments()
    fake_stripe.pay(p.provider_ref)
    (completed,) = fake_stripe.wait_sent("checkout.session.completed")
    before = balance(world.account_a.id)
    deliver(app.test_client(), completed, STRIPE_TEST_WEBHOOK_SECRET)
    assert balance(world.account_a.id) == before + Decimal("25.00")
    # The same form sent again with another amount is refused, not a second session.
    resp = start(clients[0], "50.00", nonce="same-form")
    assert resp.status_code == 422 and "already started" in resp.get_data(as_text=True)
    assert len(fake_stripe.sessions()) == 1


@pytest.mark.parametrize("amount,message", [
    ("", "Enter an amount to top up."),
    ("abc", "is not a number"),
    ("2", "The smallest top-up is $5.00."),
    ("501", "The largest top-up is $500.00."),
    ("10.001", "at most 2 decimal places"),
    ("-5", "cannot be negative"),
    ("1.000,50", "use a dot for decimals"),
])
def test_a_refused_amount_says_why_next_to_the_field_and_writes_nothing(world, customer, fake_stripe, amount, message):
    resp = start(customer, amount, preset=False)
    assert resp.status_code == 422
    page = resp.get_data(as_text=True)
    assert 'class="field-error" id="amount-error"' in page and message in page
    assert payments() == [] and fake_stripe.sessions() == []


def test_the_resellers_limits_and_presets_apply_in_the_accounts_currency(world, make_account, new_client, login,
                                                                          fake_stripe, make_login):
    with unscoped():
        save_stripe_settings(world.a.id, topup_min="20", topup_max="40", presets="30, 20")
        db.session.commit()
    with pytest.raises(FieldError, match="outside the limits"):      # 10 is outside 20..40
        with unscoped():
            save_stripe_settings(world.a.id, topup_min="20", topup_max="40", presets="10")
    db.session.rollback()
    euro = make_account(world.a, credit="0", currency="EUR")
    c = login(new_client(), make_login(world.a, "account_admin", account=euro))
    page = c.get("/portal/topup").get_data(as_text=True)
    assert "€20.00" in page and "€30.00" in page and "€10.00" not in page and "From €20.00 to €40.00" in page
    assert "The largest top-up is €40.00." in start(c, "50", preset=False).get_data(as_text=True)
    sid = session_id_of(start(c, "30.00"))
    assert fake_stripe.session(sid)["currency"] == "eur"
    # Reseller B keeps the defaults.
    b = login(new_client(), world.customer_b)
    assert "From $5.00 to $500.00" in b.get("/portal/topup").get_data(as_text=True)


def test_without_stripe_keys_the_portal_says_so_and_writes_nothing(world, app, customer, fake_stripe):
    app.config["STRIPE_SECRET_KEY"] = ""
    assert "Online payments are not set up yet" in customer.get("/portal/topup").get_data(as_text=True)
    resp = start(customer)
    assert resp.status_code == 422 and "not set up yet" in resp.get_data(as_text=True)
    assert payments() == []


def test_a_closed_account_cannot_top_up(world, customer, fake_stripe):
    with unscoped():
        db.session.execute(Account.__table__.update().where(Account.id == world.account_a.id).values(status="closed"))
        db.session.commit()
    resp = start(customer)
    assert resp.status_code == 422 and "This account is closed." in resp.get_data(as_text=True)
    assert payments() == []


def test_a_declined_card_and_an_abandoned_checkout_show_in_the_history(world, app, customer, fake_stripe):
    before = balance(world.account_a.id)
    sid = session_id_of(start(customer))
    # The hosted page, over HTTP: the decline is shown there and reported by a webhook.
    form = urllib.parse.urlencode({"card": "4000 0000 0000 0341"}).encode()
    with pytest.raises(urllib.error.HTTPError) as declined:
        urllib.request.urlopen(f"{fake_stripe.checkout_base}/pay/{sid}", data=form, timeout=5)
    assert declined.value.code == 402 and "declined" in declined.value.read().decode()
    (failed,) = fake_stripe.wait_sent("payment_intent.payment_failed")
    deliver(app.test_client(), failed, STRIPE_TEST_WEBHOOK_SECRET)
    fake_stripe.expire(sid)
    (expired,) = fake_stripe.wait_sent("checkout.session.expired")
    deliver(app.test_client(), expired, STRIPE_TEST_WEBHOOK_SECRET)
    rows = {p.status: p for p in payments()}
    assert set(rows) == {"failed", "expired"} and "declined" in rows["failed"].failure_message
    assert balance(world.account_a.id) == before
    page = customer.get("/portal/payments").get_data(as_text=True)
    assert "pay-failed" in page and "pay-expired" in page and "declined" in page
    assert "not completed" in customer.get(f"/portal/payments/{rows['expired'].id}").get_data(as_text=True)
    only_failed = customer.get("/portal/payments?status=failed").get_data(as_text=True)
    assert "pay-failed" in only_failed and "pay-expired" not in only_failed


def test_the_return_page_of_another_accounts_session_is_not_found(world, customer, new_client, login, fake_stripe):
    other = login(new_client(), world.customer_a2)
    sid = session_id_of(start(other))
    (p,) = payments()
    assert customer.get(f"/portal/payments/return?session_id={sid}").status_code == 404
    assert customer.get(f"/portal/payments/{p.id}").status_code == 404
    assert customer.get("/portal/payments/return").status_code == 404


# --- reseller: payment history and settings -----------------------------------------------

@pytest.fixture
def history(world, app, new_client, login, fake_stripe):
    """A paid top-up on A, a failed attempt on A2, a paid one on B."""
    for cust, amount in ((world.customer_a, "25.00"), (world.customer_a2, "10.00"), (world.customer_b, "50.00")):
        c = login(new_client(), cust)
        sid = session_id_of(start(c, amount, nonce=f"n-{cust.id}"))
        if cust is world.customer_a2:
            fake_stripe.call(lambda: _decline(sid))
            event = fake_stripe.wait_sent("payment_intent.payment_failed")[0]
        else:
            fake_stripe.pay(sid)
            event = [e for e in fake_stripe.wait_sent("checkout.session.completed") if e["object"]["id"] == sid][0]
        deliver(app.test_client(), event, STRIPE_TEST_WEBHOOK_SECRET)
    return world


def _decline(sid):
    from localstripe import resources as ls
    from localstripe.errors import UserError

    try:
        ls.store["checkout.session:" + sid]._pay("4000000000000341")
    except UserError:
        pass


def test_the_reseller_sees_every_attempt_of_its_accounts_and_filters_them(history, new_client, login):
    w = history
    c = login(new_client(), w.owner_a)
    page = c.get("/reseller/payments").get_data(as_text=True)
    assert w.account_a.account_number in page and w.account_a2.account_number in page
    assert w.account_b.account_number not in page
    assert "3 payments" in page                    # A: pending-then-paid + A2: pending and failed
    failed = c.get("/reseller/payments?status=failed").get_data(as_text=True)
    assert "1 payment<" in failed and "declined" in failed
    by_number = c.get(f"/reseller/payments?q={w.account_a.account_number}").get_data(as_text=True)
    assert "1 payment<" in by_number and "pay-succeeded" in by_number
    assert "1 payment<" in c.get(f"/reseller/accounts/{w.account_a.id}/payments").get_data(as_text=True)
    account_page = c.get(f"/reseller/accounts/{w.account_a.id}").get_data(as_text=True)
    assert "pay-succeeded" in account_page and "$25.00" in account_page
    bad = c.get("/reseller/payments?status=nope&date_from=31-12-2026")
    assert bad.status_code == 422
    assert "Unknown status." in bad.get_data(as_text=True) and "Use a date like" in bad.get_data(as_text=True)
    # The customer sees its own attempts only.
    own = login(new_client(), w.customer_a).get("/portal/payments").get_data(as_text=True)
    assert "1 payment<" in own and "pay-succeeded" in own


def test_the_reseller_owner_enters_its_stripe_keys_and_limits(world, new_client, login):
    c = login(new_client(), world.owner_a)
    assert "platform's Stripe account" in c.get("/reseller/payments/settings").get_data(as_text=True)
    bad = c.post("/reseller/payments/settings", data={"secret_key": "pk_wrong", "webhook_secret": "whsec_1",
                                                      "topup_min": "5", "topup_max": "100", "presets": "10"})
    assert bad.status_code == 422 and "A secret key starts with sk_" in bad.get_data(as_text=True)
    half = c.post("/reseller/payments/settings", data={"secret_key": "sk_test_a", "topup_min": "5",
                                                       "topup_max": "100", "presets": "10"})
    assert half.status_code == 422 and "Enter both the secret key and the webhook signing secret" in half.get_data(as_text=True)
    limits = c.post("/reseller/payments/settings", data={"topup_min": "50", "topup_max": "20", "presets": ""})
    assert limits.status_code == 422 and "cannot be below the smallest" in limits.get_data(as_text=True)
    with unscoped():
        assert db.session.scalar(select(func.count()).select_from(StripeSettings)) == 0       # nothing written
    ok = c.post("/reseller/payments/settings", data={
        "publishable_key": "pk_test_a", "secret_key": "sk_test_a_secret", "webhook_secret": "whsec_a_secret",
        "topup_min": "10", "topup_max": "200", "presets": "20,50"})
    assert ok.status_code == 303
    with unscoped():
        row = db.session.execute(select(StripeSettings)).scalar_one()
        assert "sk_test_a_secret" not in row.secret_key_encrypted and decrypt(row.secret_key_encrypted) == "sk_test_a_secret"
        assert (row.topup_min, row.topup_max, row.topup_presets) == (Decimal("10.00"), Decimal("200.00"), "20.00,50.00")
    page = c.get("/reseller/payments/settings").get_data(as_text=True)
    assert f"/webhooks/stripe/{row.webhook_key}" in page and "sk_test_a_secret" not in page
    # Blank secrets keep the stored ones.
    c.post("/reseller/payments/settings", data={"topup_min": "10", "topup_max": "300", "presets": "20"})
    with unscoped():
        db.session.refresh(row)
        assert decrypt(row.webhook_secret_encrypted) == "whsec_a_secret" and row.topup_max == Decimal("300.00")
    staff = login(new_client(), world.staff_a)
    assert staff.get("/reseller/payments/settings").status_code == 200
    assert staff.post("/reseller/payments/settings", data={"topup_min": "1", "topup_max": "2"}).status_code == 403


def test_a_resellers_own_stripe_account_creates_the_session_with_its_key(world, customer, fake_stripe):
    from app.payments.checkout import secret_key_for

    with unscoped():
        save_stripe_settings(world.a.id, secret_key="sk_test_reseller_a", webhook_secret="whsec_ra",
                             topup_min="5", topup_max="500", presets="10")
        db.session.commit()
        assert secret_key_for(world.a.id) == "sk_test_reseller_a"
        assert secret_key_for(world.b.id) == "sk_test_platform_fake"
    sid = session_id_of(start(customer))
    assert fake_stripe.keys == ["sk_test_reseller_a"]
    assert fake_stripe.session(sid)["metadata"]["account_id"] == str(world.account_a.id)


# --- over HTTP: localstripe delivers the webhook itself -----------------------------------

@pytest.fixture
def served_app(app):
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(5)


def test_localstripe_delivers_the_signed_webhook_and_the_page_turns_to_received(world, customer, served_app, fake_stripe):
    fake_stripe.register_webhook(f"{served_app}/webhooks/stripe", STRIPE_TEST_WEBHOOK_SECRET)
    before = balance(world.account_a.id)
    sid = session_id_of(start(customer, "100.00"))
    fake_stripe.pay(sid)
    (p,) = payments()
    url = f"/portal/payments/{p.id}"
    assert "Waiting for the card processor" in customer.get(url).get_data(as_text=True)   # delivery lags 1 s
    deadline = time.time() + 10
    while "Payment received" not in customer.get(url).get_data(as_text=True):
        assert time.time() < deadline, "the webhook never credited"
        time.sleep(0.2)
    assert balance(world.account_a.id) == before + Decimal("100.00")
    with unscoped():
        assert db.session.scalar(select(func.count()).select_from(LedgerEntry)
                                 .where(LedgerEntry.account_id == world.account_a.id, LedgerEntry.kind == "payment")) == 1


def test_a_delivery_an_earlier_test_scheduled_never_reaches_the_next_tests_webhook(world, customer, served_app,
                                                                                   fake_stripe):
    """localstripe sends each webhook 1 s after the event, to the webhooks registered then: the
    fake's reset (between tests) cancels what is still pending, or it credits the next test."""
    before = balance(world.account_a.id)
    fake_stripe.pay(session_id_of(start(customer, "25.00")))     # scheduled, nobody registered yet
    fake_stripe.reset()                                          # what the next test's fixture does
    fake_stripe.register_webhook(f"{served_app}/webhooks/stripe", STRIPE_TEST_WEBHOOK_SECRET)
    time.sleep(1.5)
    assert balance(world.account_a.id) == before
    with unscoped():
        assert db.session.scalar(select(func.count()).select_from(LedgerEntry)
                                 .where(LedgerEntry.account_id == world.account_a.id,
                                        LedgerEntry.kind == "payment")) == 0
