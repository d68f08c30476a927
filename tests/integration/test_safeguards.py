"""Safeguards (issue 14, point 5): suspend, disable and delete ask for a confirmation and a
reason (kept in the history); a ledger adjustment above the reseller's limit needs a second
confirmation and posts once however often it is sent; a reset never leaves a prepaid balance
below zero; every amount has a stated maximum; the limit is set on /reseller/settings."""
import threading
from decimal import Decimal

import pytest
from sqlalchemy import select

from app.accounts.models import Account
from app.audit import AuditEntry
from app.conflicts import FieldError
from app.extensions import db
from app.ledger import LedgerEntry, balance_mismatches
from tenants.models import Tenant
from tenants.scope import tenant_scope, unscoped

from onboarding_support import make_numbers, onboard_account, row_counts, wizard

URL = "/reseller/accounts/{}"


@pytest.fixture
def owner(world, new_client, login):
    return login(new_client(), world.owner_a)


@pytest.fixture
def acct(world):
    """Prepaid, balance 100 minus the first users' charge."""
    return onboard_account(world.a, name="Quay Dental", email="admin@quay.example", users=1, cost_per_user="0",
                           initial_credit="100.00")


def _account(account_id) -> Account:
    with unscoped():
        db.session.expire_all()
        return db.session.execute(select(Account).where(Account.id == account_id)).scalar_one()


def _audit(action, account_id):
    with unscoped():
        return db.session.execute(select(AuditEntry).where(AuditEntry.action == action,
                                                           AuditEntry.account_id == account_id)).scalars().all()


def _adjustments(account_id):
    with unscoped():
        return db.session.execute(select(LedgerEntry).where(LedgerEntry.account_id == account_id,
                                                            LedgerEntry.idempotency_key.like("%:adjust:%"))
                                  ).scalars().all()


# --- suspend, disable, delete: a confirmation page that asks why ---------------------------------

@pytest.mark.parametrize("action,verb,status", [("suspend", "Suspend", "suspended"), ("disable", "Disable", "disabled")])
def test_suspend_and_disable_first_show_a_confirmation_page_and_change_nothing(world, owner, acct, action, verb, status):
    before = row_counts()
    resp = owner.post(URL.format(acct) + "/status", data={"action": action})
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200
    assert f"{verb} Quay Dental?" in html and 'name="reason"' in html and 'name="confirm" type="hidden" value="1"' in html
    assert f'name="action" type="hidden" value="{action}"' in html
    assert _account(acct).status == "active" and row_counts() == before


@pytest.mark.parametrize("reason", ["", "   "])
def test_a_confirmation_without_a_reason_is_refused_next_to_the_field(world, owner, acct, reason):
    before = row_counts()
    resp = owner.post(URL.format(acct) + "/status", data={"action": "suspend", "confirm": "1", "reason": reason})
    html = resp.get_data(as_text=True)
    assert resp.status_code == 422
    assert 'class="field-error" id="reason-error">Say why: the reason is kept in the account' in html
    assert _account(acct).status == "active" and row_counts() == before


def test_a_reason_too_long_is_refused_next_to_the_field(world, owner, acct):
    resp = owner.post(URL.format(acct) + "/status", data={"action": "disable", "confirm": "1", "reason": "x" * 201})
    assert resp.status_code == 422 and "At most 200 characters." in resp.get_data(as_text=True)
    assert _account(acct).status == "active"


def test_the_confirmed_suspension_keeps_its_reason_in_the_history(world, owner, acct):
    resp = owner.post(URL.format(acct) + "/status",
                      data={"action": "suspend", "confirm": "1", "reason": "Invoice  of November unpaid"})
    assert resp.status_code == 303
    assert _account(acct).status == "suspended"
    [entry] = _audit("account.suspended", acct)
    assert entry.details == {"old": "active", "new": "suspended", "reason": "Invoice of November unpaid"}
    page = owner.get(URL.format(acct)).get_data(as_text=True)
    history = page.split('id="history"')[1]
    assert "account.suspended" in history and "reason: Invoice of November unpaid" in history


def test_enable_needs_no_confirmation(world, owner, acct):
    owner.post(URL.format(acct) + "/status", data={"action": "disable", "confirm": "1", "reason": "fraud check"})
    assert owner.post(URL.format(acct) + "/status", data={"action": "enable"}).status_code == 303
    assert _account(acct).status == "active"
    assert [e.details["reason"] for e in _audit("account.disabled", acct)] == ["fraud check"]


def test_delete_asks_for_confirmation_and_a_reason_then_closes(world, owner, acct):
    owner.post(URL.format(acct) + "/balance", data={"action": "reset", "amount": "0", "reason": "refunded",
                                                    "nonce": "zero"})
    before = row_counts()
    first = owner.post(URL.format(acct) + "/delete", data={})
    assert first.status_code == 200 and "Delete Quay Dental?" in first.get_data(as_text=True)
    assert "closes the account for good" in first.get_data(as_text=True)
    refused = owner.post(URL.format(acct) + "/delete", data={"confirm": "1", "reason": ""})
    assert refused.status_code == 422 and "Say why" in refused.get_data(as_text=True)
    assert row_counts() == before and _account(acct).status == "active"
    done = owner.post(URL.format(acct) + "/delete", data={"confirm": "1", "reason": "Moved to another provider"})
    assert done.status_code == 303 and _account(acct).status == "closed"
    [entry] = _audit("account.closed", acct)
    assert entry.details["reason"] == "Moved to another provider"


def test_the_domain_refuses_a_suspension_or_close_without_a_reason(world, acct):
    from app.accounts.operations import close_account, set_account_status

    with tenant_scope(world.a.id):
        account = db.session.execute(select(Account).where(Account.id == acct)).scalar_one()
        for call in (lambda: set_account_status(account, "suspend"), lambda: set_account_status(account, "disable", reason=" "),
                     lambda: close_account(account)):
            with pytest.raises(FieldError) as e:
                call()
            assert e.value.field == "reason"
        db.session.rollback()


def test_the_account_page_buttons_lead_to_the_confirmation(world, owner, acct):
    html = owner.get(URL.format(acct)).get_data(as_text=True)
    assert 'value="suspend" class="secondary">Suspend…</button>' in html
    assert "Delete Quay Dental…" in html and "asks for a second confirmation" in html


def test_bulk_deactivate_needs_the_tick_and_a_reason(world, owner):
    ids = [world.account_a.id, world.account_a2.id]
    for data, message in (({}, "Tick “I confirm”"), ({"confirm": "1"}, "Say why you deactivate them"),
                          ({"confirm": "1", "reason": "  "}, "Say why you deactivate them")):
        owner.post("/reseller/accounts/bulk", data={"action": "deactivate", "ids": ids, **data})
        assert message in owner.get("/reseller/accounts").get_data(as_text=True)
        assert {_account(i).status for i in ids} == {"active"}
    owner.post("/reseller/accounts/bulk", data={"action": "deactivate", "ids": ids, "confirm": "1",
                                                "reason": "Season closed"})
    assert {_account(i).status for i in ids} == {"disabled"}
    assert [e.details["reason"] for i in ids for e in _audit("account.disabled", i)] == ["Season closed"] * 2
    # Activating needs neither.
    owner.post("/reseller/accounts/bulk", data={"action": "activate", "ids": ids})
    assert {_account(i).status for i in ids} == {"active"}


def test_the_list_shows_the_reason_and_the_tick(world, owner):
    html = owner.get("/reseller/accounts").get_data(as_text=True)
    assert 'name="reason"' in html and 'name="confirm" value="1"' in html


# --- large adjustments: a second confirmation, posted once ---------------------------------------

def _adjust(client, acct, **data):
    return client.post(URL.format(acct) + "/balance", data={"reason": "goodwill", "nonce": "n-1", **data})


def test_an_adjustment_under_the_limit_posts_at_once(world, owner, acct):
    start = _account(acct).balance
    assert _adjust(owner, acct, action="credit", amount="1000").status_code == 303   # the limit itself: no question
    assert _account(acct).balance == start + 1000


@pytest.mark.parametrize("action,amount,change", [("credit", "1500", "$1,500.00"), ("debit", "1000.01", "-$1,000.01"),
                                                   ("reset", "1200", "$1,100.00")])
def test_an_adjustment_above_the_limit_asks_again_showing_the_amount_and_the_limit(world, owner, acct, action, amount,
                                                                                    change):
    before = row_counts()
    resp = _adjust(owner, acct, action=action, amount=amount)
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200 and "Confirm a large adjustment" in html
    assert f"This changes the balance by {change}, more than your limit of $1,000.00" in html
    assert 'name="confirm_large" type="hidden" value="1"' in html and 'name="nonce" type="hidden" value="n-1"' in html
    assert f'name="amount" value="{amount}"' in html
    assert row_counts() == before                              # nothing written, no lock kept


def test_the_confirmed_large_adjustment_posts_once_however_often_it_is_sent(world, owner, acct):
    start = _account(acct).balance
    first = _adjust(owner, acct, action="credit", amount="2500", confirm_large="1")
    assert first.status_code == 303
    again = _adjust(owner, acct, action="credit", amount="2500", confirm_large="1")
    assert again.status_code == 303
    assert "already recorded" in owner.get(URL.format(acct)).get_data(as_text=True)
    assert _account(acct).balance == start + 2500
    assert len(_adjustments(acct)) == 1
    # A reset's confirmation sent twice: the second finds the key, not a "balance is already" error.
    for _ in range(2):
        assert _adjust(owner, acct, action="reset", amount="5000", nonce="n-2", confirm_large="1").status_code == 303
    assert _account(acct).balance == Decimal("5000")
    assert len(_adjustments(acct)) == 2
    with unscoped():
        assert balance_mismatches() == []


def test_two_confirmations_racing_post_once(app, world, acct):
    from app.accounts.operations import adjust_balance

    barrier, outcomes, tenant_id = threading.Barrier(2), [], world.a.id

    def confirm():
        with app.app_context(), tenant_scope(tenant_id):
            account = db.session.execute(select(Account).where(Account.id == acct)).scalar_one()
            try:
                barrier.wait(5)
                posted = adjust_balance(account, "credit", Decimal("3000"), "big deal", nonce="race-1",
                                        confirm_large=True)
                db.session.commit()
                outcomes.append(posted.created)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=confirm) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert sorted(outcomes) == [False, True]
    assert len(_adjustments(acct)) == 1 and _account(acct).balance == Decimal("3100.00")


def test_a_limit_of_zero_confirms_every_adjustment(world, owner, acct):
    with unscoped():
        db.session.execute(select(Tenant).where(Tenant.id == world.a.id)).scalar_one().adjustment_confirm_limit = 0
        db.session.commit()
    assert _adjust(owner, acct, action="credit", amount="0.01").status_code == 200


# --- resets and maxima ------------------------------------------------------------------------

def test_a_reset_cannot_leave_a_prepaid_balance_below_zero(world, owner, acct):
    before = row_counts()
    resp = _adjust(owner, acct, action="reset", amount="-5")
    assert resp.status_code == 422
    assert "balance cannot be reset below zero" in resp.get_data(as_text=True)
    assert row_counts() == before


def test_a_postpaid_balance_may_be_reset_below_zero(world, owner):
    acct = onboard_account(world.a, billing_type="postpaid", credit_limit=Decimal("50"), users=1,
                           cost_per_user="0", initial_credit="0")
    assert _adjust(owner, acct, action="reset", amount="-20").status_code == 303
    assert _account(acct).balance == Decimal("-20")


@pytest.mark.parametrize("amount", ["1000000000", "-1000000000", "99999999999999"])
def test_an_adjustment_above_the_maximum_says_the_maximum(world, owner, acct, amount):
    resp = _adjust(owner, acct, action="reset" if amount.startswith("-") else "credit", amount=amount)
    assert resp.status_code == 422
    assert "must be less than 1,000,000,000" in resp.get_data(as_text=True)


def test_every_amount_field_of_the_wizard_says_the_maximum(world, owner):
    too_big = "1000000000"
    for field in ("cost_per_user", "initial_credit", "low_balance_threshold", "initial_balance"):
        resp = owner.post("/reseller/accounts/new/plan", data=wizard(**{field: too_big}))
        assert resp.status_code == 422, field
        assert f'id="{field}-error">The amount is too large: it must be less than 1,000,000,000.' in \
            resp.get_data(as_text=True), field
    resp = owner.post("/reseller/accounts/new/plan", data=wizard(billing_type="postpaid", credit_limit=too_big))
    assert 'id="credit_limit-error">The amount is too large' in resp.get_data(as_text=True)


def test_number_prices_say_the_maximum(world, owner):
    [number_id] = make_numbers(world.a, 1)
    owner.post(f"/reseller/numbers/{number_id}/price", data={"sell_setup": "1", "sell_monthly": "5000000000"})
    assert "must be less than 1,000,000,000" in owner.get("/reseller/numbers").get_data(as_text=True)


def test_a_rate_says_its_maximum(world, owner):
    from onboarding_support import make_rate_sheet

    sheet = make_rate_sheet(world.a)
    resp = owner.post(f"/reseller/rates/{sheet}/rows", data={"prefix": "44", "rate_per_minute": "100000000"})
    assert "must be less than 100,000,000" in resp.get_data(as_text=True)


# --- the limit's page ------------------------------------------------------------------------

def test_the_owner_sets_the_limit_on_the_settings_page(world, owner, acct):
    page = owner.get("/reseller/settings")
    assert page.status_code == 200 and 'value="1000.00"' in page.get_data(as_text=True)
    assert owner.post("/reseller/settings", data={"adjustment_confirm_limit": "5000"}).status_code == 303
    with unscoped():
        assert db.session.scalar(select(Tenant.adjustment_confirm_limit).where(Tenant.id == world.a.id)) == 5000
        [entry] = db.session.execute(select(AuditEntry).where(AuditEntry.action == "reseller.adjustment_limit")
                                     ).scalars().all()
        assert entry.details == {"old": "1000.00", "new": "5000.00"}
    assert _adjust(owner, acct, action="credit", amount="4000").status_code == 303     # now under the limit


@pytest.mark.parametrize("value,message", [("-1", "cannot be negative"), ("abc", "is not a number"),
                                           ("1000000000", "must be less than 1,000,000,000"), ("", "Enter an amount")])
def test_a_bad_limit_is_refused_next_to_the_field(world, owner, value, message):
    resp = owner.post("/reseller/settings", data={"adjustment_confirm_limit": value})
    assert resp.status_code == 422
    assert 'id="adjustment_confirm_limit-error">' in resp.get_data(as_text=True)
    assert message in resp.get_data(as_text=True)
    with unscoped():
        assert db.session.scalar(select(Tenant.adjustment_confirm_limit).where(Tenant.id == world.a.id)) == 1000


@pytest.mark.parametrize("who", ["staff_a"])
def test_only_the_owner_changes_the_limit(world, new_client, login, who):
    client = login(new_client(), getattr(world, who))
    assert client.get("/reseller/settings").status_code == 200
    assert client.post("/reseller/settings", data={"adjustment_confirm_limit": "1"}).status_code == 403
    with unscoped():
        assert db.session.scalar(select(Tenant.adjustment_confirm_limit).where(Tenant.id == world.a.id)) == 1000


def test_each_reseller_has_its_own_limit(world, new_client, login):
    login(new_client(), world.owner_b).post("/reseller/settings", data={"adjustment_confirm_limit": "10"})
    with unscoped():
        limits = dict(db.session.execute(select(Tenant.id, Tenant.adjustment_confirm_limit)
                                         .where(Tenant.id.in_((world.a.id, world.b.id)))).all())
    assert limits == {world.a.id: 1000, world.b.id: 10}


def test_the_domain_refuses_amounts_above_the_maximum_too(world):
    from app.billing.onboarding import BasicInfo, PlanTerms, onboard

    info = BasicInfo(name="Big", email="big@x.example", first_name="B", last_name="G", phone="+442079460018",
                     country="GB")
    for name in ("cost_per_user", "initial_credit", "credit_limit"):
        terms = PlanTerms(plan_name=f"Plan {name}", billing_type="postpaid", **{name: Decimal("1000000000")})
        with tenant_scope(world.a.id):
            with pytest.raises(FieldError) as e:
                onboard(tenant_id=world.a.id, info=info, terms=terms)
            db.session.rollback()
        assert e.value.field == name and "less than 1,000,000,000" in e.value.message


def test_the_status_and_delete_forms_need_the_csrf_token(app, world, owner, acct):
    app.config["WTF_CSRF_ENABLED"] = True
    try:
        for suffix in ("/status", "/delete"):
            resp = owner.post(URL.format(acct) + suffix, data={"action": "suspend", "confirm": "1", "reason": "r"})
            assert resp.status_code == 400, suffix
    finally:
        app.config["WTF_CSRF_ENABLED"] = False
    assert _account(acct).status == "active"
