"""The reseller's account page: edit (never over newer data), balance through the ledger,
status, delete, letters, password, templates, users, numbers, orders, log in as customer."""
import re
from decimal import Decimal

import pytest
from sqlalchemy import select

from app.accounts.models import Account
from app.audit import AuditEntry
from app.billing.account_templates import AccountTemplate
from app.billing.models import ServicePlan
from app.billing.orders import Order, record_order
from app.extensions import db
from app.ledger import LedgerEntry, balance_mismatches
from app.notifications.models import Notification
from app.logins.models import User
from app.numbers.models import Number
from provisioning.models import Extension
from provisioning.realtime import PsEndpoint
from tenants.scope import tenant_scope, unscoped

from onboarding_support import make_numbers, onboard_account, row_counts

URL = "/reseller/accounts/{}"


@pytest.fixture
def owner(world, new_client, login):
    return login(new_client(), world.owner_a)


@pytest.fixture
def acct(world):
    """An onboarded account of reseller A: 2 users, balance 100 - 2 x 10 prorated."""
    return onboard_account(world.a, name="Quay Dental", email="admin@quay.example", plan_name="Quay plan",
                           users=2, cost_per_user="10.00", initial_credit="100.00")


def _account(account_id) -> Account:
    with unscoped():
        db.session.expire_all()
        return db.session.execute(select(Account).where(Account.id == account_id)).scalar_one()


def _edit_data(page_html: str, **over) -> dict:
    """The edit form's current values, as the browser would post them back."""
    form = page_html.split('id="edit"')[1].split("</form>")[0]
    data = {}
    for name, value in re.findall(r'<input[^>]*name="([^"]+)"[^>]*value="([^"]*)"', form):
        data.setdefault(name, value)
    for m in re.finditer(r'<input([^>]*)>', form):
        attrs = m.group(1)
        if 'type="checkbox"' in attrs:
            name = re.search(r'name="([^"]+)"', attrs).group(1)
            if "checked" in attrs:
                data[name] = "y"
            else:
                data.pop(name, None)
    for m in re.finditer(r'<select[^>]*name="([^"]+)"[^>]*>(.*?)</select>', form, re.S):
        sel = re.search(r'<option selected value="([^"]*)"', m.group(2))
        data[m.group(1)] = sel.group(1) if sel else ""
    import html as _h
    data = {k: _h.unescape(v) for k, v in data.items()}
    data.update(over)
    return data


# --- the page --------------------------------------------------------------------------------

def test_the_page_shows_every_section(world, owner, acct):
    resp = owner.get(URL.format(acct))
    assert resp.status_code == 200
    html = resp.get_data(as_text=True)
    for section in ('id="info"', 'id="actions"', 'id="balance"', 'id="edit"', 'id="account-notes"', 'id="extensions"',
                    'id="numbers"', 'id="orders"', 'id="payments"', 'id="history"'):
        assert section in html
    assert "Calls in progress" in html and "not registered" in html
    assert "account.onboarded" in html                       # history
    assert "Initial credit" in html                          # payment history
    assert "Account activation" in html                      # orders
    assert 'name="version"' in html
    assert 'name="balance"' not in html                      # never a form field


def test_staff_may_use_the_page_too(world, new_client, login, acct):
    assert login(new_client(), world.staff_a).get(URL.format(acct)).status_code == 200


def test_a_parent_reseller_sees_its_sub_resellers_account(world, owner):
    assert owner.get(URL.format(world.account_a_sub.id)).status_code == 200


# --- editing ---------------------------------------------------------------------------------

def test_editing_saves_every_field_and_records_the_change(world, owner, acct):
    page = owner.get(URL.format(acct)).get_data(as_text=True)
    data = _edit_data(page, name="Quay Dental Group", city="Leeds", max_channels="9", plan_name="Quay plan 2",
                      cost_per_user="12.50", **{"countries-0-country": "FR", "countries-0-minutes": "30"})
    resp = owner.post(URL.format(acct) + "/edit", data=data)
    assert resp.status_code == 303, resp.get_data(as_text=True)
    account = _account(acct)
    assert (account.name, account.city, account.max_channels) == ("Quay Dental Group", "Leeds", 9)
    with unscoped():
        plan = db.session.execute(select(ServicePlan).where(ServicePlan.account_id == acct)).scalar_one()
        assert (plan.name, plan.cost_per_user) == ("Quay plan 2", Decimal("12.50"))
        entry = db.session.execute(select(AuditEntry).where(AuditEntry.account_id == acct,
                                                            AuditEntry.action == "account.updated")).scalar_one()
        assert entry.details["name"] == ["Quay Dental", "Quay Dental Group"]
        assert entry.details["plan_name"] == ["Quay plan", "Quay plan 2"]
        # the new name reaches Asterisk's caller id
        endpoint = db.session.execute(select(PsEndpoint).where(PsEndpoint.account_id == acct)).scalars().first()
        assert "Quay Dental Group" in endpoint.callerid
    # ...and the old plan name stays taken.
    from app.billing.plans import plan_name_taken
    with unscoped():
        assert plan_name_taken(world.a.id, "Quay plan") and plan_name_taken(world.a.id, "Quay plan 2")


def test_a_stale_form_never_overwrites_newer_data(world, owner, new_client, login, acct):
    opened = owner.get(URL.format(acct)).get_data(as_text=True)        # Alice opens the page
    staff = login(new_client(), world.staff_a)                          # Sam opens it too and saves
    sams = _edit_data(staff.get(URL.format(acct)).get_data(as_text=True), city="Bristol")
    assert staff.post(URL.format(acct) + "/edit", data=sams).status_code == 303
    before = row_counts()
    resp = owner.post(URL.format(acct) + "/edit", data=_edit_data(opened, city="Leeds", name="Alice's name"))
    assert resp.status_code == 409
    assert "changed by someone else since you opened it" in resp.get_data(as_text=True)
    assert (_account(acct).city, _account(acct).name) == ("Bristol", "Quay Dental")
    assert row_counts() == before


def test_a_stale_notes_form_is_refused_too(world, owner, acct):
    page = owner.get(URL.format(acct)).get_data(as_text=True)
    version = re.search(r'id="account-notes".*?name="version"[^>]*value="(\d+)"', page, re.S).group(1)
    assert owner.post(URL.format(acct) + "/notes", data={"notes": "first", "version": version}).status_code == 303
    resp = owner.post(URL.format(acct) + "/notes", data={"notes": "stale", "version": version})
    assert resp.status_code == 409
    assert _account(acct).notes == "first"


def test_bad_input_is_shown_next_to_the_fields_and_nothing_is_saved(world, owner, acct):
    page = owner.get(URL.format(acct)).get_data(as_text=True)
    before = row_counts()
    resp = owner.post(URL.format(acct) + "/edit", data=_edit_data(
        page, email="nope", phone="123", invoice_day="40", billing_type="prepaid", credit_limit="10",
        cost_per_user="abc"))
    assert resp.status_code == 422
    html = resp.get_data(as_text=True)
    for message in ("This is not a valid email address.", "phone number", "A day from 1 to 28",
                    "A credit limit applies to postpaid accounts only", "“abc” is not a number."):
        assert message in html, message
    assert row_counts() == before


def test_a_plan_name_of_another_account_is_refused_on_edit(world, owner, acct):
    onboard_account(world.a, plan_name="Other plan")
    page = owner.get(URL.format(acct)).get_data(as_text=True)
    resp = owner.post(URL.format(acct) + "/edit", data=_edit_data(page, plan_name="OTHER PLAN"))
    assert resp.status_code == 422 and "plan names are never reused" in resp.get_data(as_text=True)


def test_the_currency_cannot_change_once_there_are_transactions(world, owner, acct):
    page = owner.get(URL.format(acct)).get_data(as_text=True)
    resp = owner.post(URL.format(acct) + "/edit", data=_edit_data(page, currency="EUR"))
    assert resp.status_code == 422
    assert "The currency cannot change once the account has transactions." in resp.get_data(as_text=True)


# --- balance ---------------------------------------------------------------------------------

def test_the_balance_changes_only_through_ledger_adjustments_with_a_reason(world, owner, acct):
    start = _account(acct).balance
    url = URL.format(acct) + "/balance"
    assert owner.post(url, data={"action": "credit", "amount": "10", "reason": "goodwill", "nonce": "a"}).status_code == 303
    assert owner.post(url, data={"action": "debit", "amount": "2.50", "reason": "fee", "nonce": "b"}).status_code == 303
    assert _account(acct).balance == start + Decimal("7.50")
    assert owner.post(url, data={"action": "reset", "amount": "42", "reason": "agreed", "nonce": "c"}).status_code == 303
    assert _account(acct).balance == Decimal("42")
    with unscoped():
        entries = db.session.execute(select(LedgerEntry.kind, LedgerEntry.amount, LedgerEntry.description)
                                     .where(LedgerEntry.account_id == acct).order_by(LedgerEntry.id)).all()
        assert entries[-3][:2] == ("credit", Decimal("10.00")) and "goodwill" in entries[-3][2]
        assert entries[-2][:2] == ("adjustment", Decimal("-2.50"))
        assert entries[-1][0] == "adjustment" and entries[-1][1] == Decimal("42") - (start + Decimal("7.50"))
        assert balance_mismatches() == []


def test_a_double_submitted_adjustment_posts_once(world, owner, acct):
    start = _account(acct).balance
    data = {"action": "credit", "amount": "5", "reason": "twice", "nonce": "same-nonce"}
    owner.post(URL.format(acct) + "/balance", data=data)
    resp = owner.post(URL.format(acct) + "/balance", data=data, follow_redirects=True)
    assert "already recorded" in resp.get_data(as_text=True)
    assert _account(acct).balance == start + 5


def test_an_adjustment_needs_a_reason_and_a_valid_amount(world, owner, acct):
    before = row_counts()
    resp = owner.post(URL.format(acct) + "/balance", data={"action": "credit", "amount": "x", "reason": ""})
    assert resp.status_code == 422
    html = resp.get_data(as_text=True)
    assert "Say why" in html and "“x” is not a number." in html
    resp = owner.post(URL.format(acct) + "/balance", data={"action": "debit", "amount": "-3", "reason": "r"})
    assert resp.status_code == 422 and "choose debit to take money" in resp.get_data(as_text=True)
    assert row_counts() == before


# --- status and delete -------------------------------------------------------------------------

CONFIRMED = {"confirm": "1", "reason": "unpaid invoice"}   # the confirmation page's answer


@pytest.mark.parametrize("action,status", [("disable", "disabled"), ("suspend", "suspended"), ("enable", "active")])
def test_status_actions_take_effect_at_once(world, owner, acct, action, status):
    if action == "enable":
        owner.post(URL.format(acct) + "/status", data={"action": "disable", **CONFIRMED})
    assert owner.post(URL.format(acct) + "/status", data={"action": action, **CONFIRMED}).status_code == 303
    assert _account(acct).status == status


def test_delete_is_refused_while_the_balance_is_not_zero(world, owner, acct):
    resp = owner.post(URL.format(acct) + "/delete", data=CONFIRMED, follow_redirects=True)
    assert "Not deleted" in resp.get_data(as_text=True) and "refund or adjust it to zero" in resp.get_data(as_text=True)
    assert _account(acct).status == "active"


def test_delete_closes_the_account_releases_numbers_and_keeps_the_records(world, owner):
    number_id = make_numbers(world.a, 1)[0]
    acct = onboard_account(world.a, number_ids=[number_id])
    owner.post(URL.format(acct) + "/balance", data={"action": "reset", "amount": "0", "reason": "closing", "nonce": "z"})
    resp = owner.post(URL.format(acct) + "/delete", data=CONFIRMED)
    assert resp.status_code == 303
    with unscoped():
        account = _account(acct)
        assert account.status == "closed"
        number = db.session.execute(select(Number).where(Number.id == number_id)).scalar_one()
        assert (number.status, number.account_id, number.extension_id) == ("spare", None, None)
        exts = db.session.execute(select(Extension).where(Extension.account_id == acct)).scalars().all()
        assert exts and not any(e.active for e in exts)
        assert db.session.execute(select(PsEndpoint).where(PsEndpoint.account_id == acct)).first() is None
        assert not db.session.execute(select(User).where(User.account_id == acct)).scalar_one().active
        assert db.session.execute(select(LedgerEntry).where(LedgerEntry.account_id == acct)).first() is not None
    assert owner.post(URL.format(acct) + "/status", data={"action": "enable"}).status_code == 303
    assert _account(acct).status == "closed"                       # never reopened


# --- letters, password, template -----------------------------------------------------------

@pytest.mark.parametrize("action,kind", [("welcome", "welcome"), ("low-balance-alert", "low_balance")])
def test_letters_are_queued_for_the_account_email(world, owner, acct, action, kind):
    assert owner.post(URL.format(acct) + f"/{action}", data={}).status_code == 303
    with unscoped():
        rows = db.session.execute(select(Notification).where(Notification.account_id == acct,
                                                             Notification.kind == kind)).scalars().all()
        assert rows and rows[-1].to_email == "admin@quay.example"


def test_changing_the_portal_password_lets_the_customer_in_with_it(world, owner, new_client, acct):
    assert owner.post(URL.format(acct) + "/password", data={"password": "short"}).status_code == 422
    assert owner.post(URL.format(acct) + "/password", data={"password": "brand-new-pass-1"}).status_code == 303
    resp = new_client().post("/portal/login", data={"email": "admin@quay.example", "password": "brand-new-pass-1"})
    assert resp.status_code == 302
    with unscoped():
        assert db.session.execute(select(Notification).where(Notification.kind == "password_changed")).first()


def test_saving_a_template_and_creating_from_it(world, owner, acct):
    resp = owner.post(URL.format(acct) + "/template", data={"template_name": "Dental pack"})
    assert resp.status_code == 303
    with unscoped():
        tpl = db.session.execute(select(AccountTemplate)).scalar_one()
        assert tpl.tenant_id == world.a.id and tpl.values["users"] == 2 and tpl.values["cost_per_user"] == "10.0000"
    assert owner.post(URL.format(acct) + "/template", data={"template_name": "Dental pack"}).status_code == 422
    html = owner.get("/reseller/templates").get_data(as_text=True)
    assert "Dental pack" in html and f"template_id={tpl.id}" in html
    assert owner.post(f"/reseller/templates/{tpl.id}/delete", data={}).status_code == 303


# --- users -----------------------------------------------------------------------------------

def test_adding_users_shows_the_prorated_charge_first_and_applies_it_only_when_accepted(world, owner, acct):
    before = row_counts()
    resp = owner.post(URL.format(acct) + "/users/preview", data={"users": "4"})
    assert resp.status_code == 200
    html = resp.get_data(as_text=True)
    assert "Change users from 2 to 4" in html and "Charged now" in html
    assert row_counts() == before                                    # a preview writes nothing
    charge = re.search(r'name="accepted_charge" value="([^"]+)"', html).group(1)
    start = _account(acct).balance
    resp = owner.post(URL.format(acct) + "/users/apply", data={"users": "4", "accepted_from": "2",
                                                                "accepted_charge": charge})
    assert resp.status_code == 303
    assert _account(acct).balance == start - Decimal(charge)
    with unscoped():
        assert db.session.query(Extension).filter(Extension.account_id == acct).count() == 4
        assert db.session.query(PsEndpoint).filter(PsEndpoint.account_id == acct).count() == 4
        assert db.session.execute(select(ServicePlan.users).where(ServicePlan.account_id == acct)).scalar_one() == 4
        assert balance_mismatches() == []


def test_a_quote_that_no_longer_holds_is_shown_again_instead_of_charged(world, owner, acct):
    before = row_counts()
    resp = owner.post(URL.format(acct) + "/users/apply", data={"users": "4", "accepted_from": "2",
                                                                "accepted_charge": "0.01"})
    assert resp.status_code == 409
    assert "Review the new charge" in resp.get_data(as_text=True)
    assert row_counts() == before


def test_removing_users_at_once_removes_the_newest_extensions(world, owner, acct):
    """With the reseller's setting "at once" (tests/integration/test_user_changes.py has the
    default: at the next period, and the credit)."""
    from tenants.models import Tenant

    with unscoped():
        db.session.execute(select(Tenant).where(Tenant.id == world.a.id)).scalar_one().user_decrease_immediate = True
        db.session.commit()
    html = owner.post(URL.format(acct) + "/users/preview", data={"users": "1"}).get_data(as_text=True)
    credit = re.search(r'name="accepted_charge" value="([^"]+)"', html).group(1)
    resp = owner.post(URL.format(acct) + "/users/apply", data={"users": "1", "accepted_from": "2",
                                                                "accepted_charge": credit, "accepted_when": "now"})
    assert resp.status_code == 303
    with unscoped():
        numbers = db.session.execute(select(Extension.number).where(Extension.account_id == acct)).scalars().all()
        assert numbers == [str(world.a.base_extension)]
        assert db.session.query(PsEndpoint).filter(PsEndpoint.account_id == acct).count() == 1


# --- numbers and orders -------------------------------------------------------------------

def test_assigning_moving_and_releasing_a_number_on_the_account(world, owner, acct):
    number_id = make_numbers(world.a, 1, setup="2.00", monthly="4.00")[0]
    with unscoped():
        ext_ids = db.session.execute(select(Extension.id).where(Extension.account_id == acct)
                                     .order_by(Extension.number)).scalars().all()
    start = _account(acct).balance
    resp = owner.post(URL.format(acct) + "/numbers", data={"number_id": str(number_id), "extension_id": str(ext_ids[0])})
    assert resp.status_code == 303
    account = _account(acct)
    assert start - Decimal("6.00") <= account.balance < start - Decimal("2.00")   # setup + prorated month
    resp = owner.post(URL.format(acct) + f"/numbers/{number_id}/extension", data={"extension_id": str(ext_ids[1])})
    assert resp.status_code == 303
    with unscoped():
        assert db.session.execute(select(Number.extension_id).where(Number.id == number_id)).scalar_one() == ext_ids[1]
        cid = db.session.execute(select(Extension.caller_id).where(Extension.id == ext_ids[1])).scalar_one()
        assert "+44207946" in cid
    assert owner.post(URL.format(acct) + f"/numbers/{number_id}/release", data={}).status_code == 303
    with unscoped():
        assert db.session.execute(select(Number.status).where(Number.id == number_id)).scalar_one() == "spare"
        assert balance_mismatches() == []


def test_a_number_the_prepaid_balance_cannot_pay_is_refused(world, owner):
    acct = onboard_account(world.a, initial_credit="20.00", users=1, cost_per_user="0")
    number_id = make_numbers(world.a, 1, setup="50.00", monthly="1.00")[0]
    before = row_counts()
    resp = owner.post(URL.format(acct) + "/numbers", data={"number_id": str(number_id), "extension_id": "0"})
    assert resp.status_code == 422 and "Add credit first." in resp.get_data(as_text=True)
    assert row_counts() == before


def test_another_resellers_number_cannot_be_assigned(world, owner, acct):
    foreign = make_numbers(world.b, 1)[0]
    resp = owner.post(URL.format(acct) + "/numbers", data={"number_id": str(foreign), "extension_id": "0"})
    assert resp.status_code == 422 and "Choose one of this reseller" in resp.get_data(as_text=True)


def test_a_pending_order_is_marked_processed(world, owner, acct):
    with tenant_scope(world.a.id):
        account = db.session.execute(select(Account).where(Account.id == acct)).scalar_one()
        order_id = record_order(account, "number", "Number requested in France").id
        db.session.commit()
    assert "Mark processed" in owner.get(URL.format(acct)).get_data(as_text=True)
    assert owner.post(URL.format(acct) + f"/orders/{order_id}/process", data={}).status_code == 303
    with unscoped():
        assert db.session.execute(select(Order.status).where(Order.id == order_id)).scalar_one() == "processed"


# --- log in as the customer ------------------------------------------------------------------

def test_logging_in_as_the_customer_is_audited_scoped_to_that_account_and_reversible(world, owner, acct):
    resp = owner.post(URL.format(acct) + "/impersonate", data={})
    assert resp.status_code == 303 and resp.headers["Location"].endswith("/portal/")
    with owner.session_transaction() as s:
        assert s["impersonator_id"] == world.owner_a.id
    page = owner.get("/portal/").get_data(as_text=True)
    assert "on their behalf" in page and "Back to the reseller portal" in page
    assert "Quay Dental" in page
    # Nothing beyond that account: no reseller portal, no other account's rows.
    assert owner.get("/reseller/").status_code == 403
    assert owner.get(URL.format(world.account_a.id)).status_code == 403
    transactions = owner.get("/portal/transactions").get_data(as_text=True)
    assert "Initial credit" in transactions
    with unscoped():
        other_entries = db.session.execute(select(LedgerEntry.description)
                                           .where(LedgerEntry.account_id == world.account_a.id)).scalars().all()
    # An action on behalf of the customer is audited with the reseller behind it.
    owner.post("/portal/numbers", data={"country": "FR", "note": "please"})
    with unscoped():
        started = db.session.execute(select(AuditEntry).where(AuditEntry.action == "account.impersonation_started")).scalar_one()
        assert started.actor_id == world.owner_a.id and started.account_id == acct
        on_behalf = db.session.execute(select(AuditEntry).where(AuditEntry.action == "order.pending")).scalar_one()
        assert on_behalf.impersonator_id == world.owner_a.id
    resp = owner.post("/portal/impersonation/end", data={})
    assert resp.status_code == 303 and resp.headers["Location"].endswith(URL.format(acct))
    assert owner.get(URL.format(acct)).status_code == 200
    with owner.session_transaction() as s:
        assert "impersonator_id" not in s
    assert other_entries  # the sibling account has rows, and they were not shown above


def test_ending_an_impersonation_that_never_started_is_not_found(world, new_client, login):
    assert login(new_client(), world.customer_a).post("/portal/impersonation/end", data={}).status_code == 404


def test_an_account_without_a_portal_login_cannot_be_impersonated(world, owner, make_account):
    bare = make_account(world.a)
    resp = owner.post(URL.format(bare.id) + "/impersonate", data={}, follow_redirects=True)
    assert "has no portal login yet" in resp.get_data(as_text=True)
    with owner.session_transaction() as s:
        assert "impersonator_id" not in s


# --- isolation and roles for every account-page route ----------------------------------------

ACCOUNT_POSTS = ["/edit", "/notes", "/status", "/balance", "/delete", "/welcome", "/low-balance-alert", "/password",
                 "/template", "/impersonate", "/users/preview", "/users/apply", "/numbers"]


def test_another_tenants_account_answers_404_on_every_route(world, owner):
    b = world.account_b.id
    assert owner.get(URL.format(b)).status_code == 404
    for suffix in ACCOUNT_POSTS:
        assert owner.post(URL.format(b) + suffix, data={"action": "credit"}).status_code == 404, suffix
    before = _account(b)
    assert (before.status, before.balance) == ("active", Decimal("20.00"))


def test_a_number_or_order_of_another_account_answers_404(world, owner, acct):
    other = onboard_account(world.a, number_ids=make_numbers(world.a, 1))
    with unscoped():
        number_id = db.session.execute(select(Number.id).where(Number.account_id == other)).scalar_one()
        order_id = db.session.execute(select(Order.id).where(Order.account_id == other)).scalars().first()
    assert owner.post(URL.format(acct) + f"/numbers/{number_id}/release", data={}).status_code == 404
    assert owner.post(URL.format(acct) + f"/numbers/{number_id}/extension", data={}).status_code == 404
    assert owner.post(URL.format(acct) + f"/orders/{order_id}/process", data={}).status_code == 404


def test_a_sub_reseller_cannot_reach_its_parents_accounts(world, new_client, login, acct):
    client = login(new_client(), world.owner_a_sub)
    assert client.get(URL.format(acct)).status_code == 404
    assert client.post(URL.format(acct) + "/status", data={"action": "disable"}).status_code == 404


@pytest.mark.parametrize("who", ["customer_a", "admin"])
def test_other_portals_get_403_on_the_account_page(world, new_client, login, acct, who):
    client = login(new_client(), getattr(world, who))
    assert client.get(URL.format(acct)).status_code == 403
    for suffix in ACCOUNT_POSTS:
        assert client.post(URL.format(acct) + suffix, data={}).status_code == 403


def test_anonymous_visitors_are_sent_to_the_reseller_login(client, acct):
    for suffix in [""] + ACCOUNT_POSTS:
        method = client.get if not suffix else client.post
        resp = method(URL.format(acct) + suffix)
        assert resp.status_code == 302 and "/reseller/login" in resp.headers["Location"]


def test_an_account_made_outside_the_wizard_edits_without_plan_fields(world, owner):
    account_id = world.account_a.id
    page = owner.get(URL.format(account_id)).get_data(as_text=True)
    assert "has no service plan" in page and 'name="plan_name"' not in page
    data = _edit_data(page, phone="+442079460018", country="GB", company="Now with a company",
                      first_name="Ann", last_name="Other")
    resp = owner.post(URL.format(account_id) + "/edit", data=data)
    assert resp.status_code == 303, resp.get_data(as_text=True)
    assert _account(account_id).company == "Now with a company"


def test_calls_in_progress_are_shown_and_stop_a_delete(app, world, owner):
    from app.jobs import redis_connection

    acct = onboard_account(world.a, initial_credit="0", cost_per_user="0")
    account = _account(acct)
    conn = redis_connection(app)
    conn.sadd("inuse:servers", "ast1")
    conn.set("inuse:ast1:alive", 1, ex=60)
    conn.hset("inuse:ast1:account", account.account_number, 2)
    html = owner.get(URL.format(acct)).get_data(as_text=True)
    assert re.search(r'Calls in progress</small><div class="figure"><span id="in-use-\d+" class="in-use live">2</span></div>', html)
    resp = owner.post(URL.format(acct) + "/delete", data=CONFIRMED, follow_redirects=True)
    assert "2 call(s) in progress" in resp.get_data(as_text=True)
    assert _account(acct).status == "active"
