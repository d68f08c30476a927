"""The new-account wizard and onboarding: one transaction, clear refusals, races settled by the database."""
import threading
from decimal import Decimal
from types import SimpleNamespace

import pytest
from sqlalchemy import select

from app.accounts.models import Account
from app.billing.models import PlanCountry, ServicePlan
from app.billing.orders import Order
from app.extensions import db
from app.ledger import LedgerEntry, balance_mismatches
from app.notifications.models import Notification
from app.logins.models import User
from app.numbers.models import Number
from provisioning.models import Extension
from provisioning.realtime import PsAor, PsAuth, PsEndpoint
from tenants.scope import unscoped

from onboarding_support import make_numbers, make_rate_sheet, onboard_account, row_counts, run_jobs, step1, wizard

NEW = "/reseller/accounts/new"
PLAN = "/reseller/accounts/new/plan"


@pytest.fixture
def owner(world, new_client, login):
    return login(new_client(), world.owner_a)


def _account_by_email(email):
    with unscoped():
        return db.session.execute(select(Account).where(Account.email == email)).scalar_one_or_none()


# --- step 1 -------------------------------------------------------------------------------------

def test_step_one_asks_for_the_basic_info(owner):
    resp = owner.get(NEW)
    assert resp.status_code == 200
    html = resp.get_data(as_text=True)
    for name in ("name", "email", "first_name", "last_name", "phone", "company", "address", "country",
                 "timezone", "language", "currency"):
        assert f'name="{name}"' in html
    assert 'hx-post="/reseller/accounts/new"' in html and 'action="/reseller/accounts/new"' in html


def test_an_htmx_request_gets_only_the_partial(owner):
    resp = owner.get(NEW, headers={"HX-Request": "true"})
    assert resp.status_code == 200
    assert "<html" not in resp.get_data(as_text=True)


def test_step_one_with_bad_input_says_what_is_wrong_next_to_each_field(owner):
    before = row_counts()
    resp = owner.post(NEW, data=step1(name="", email="not-an-email", phone="12", country="", first_name=""))
    assert resp.status_code == 422
    html = resp.get_data(as_text=True)
    assert "Give the account a name." in html
    assert "This is not a valid email address." in html
    assert "Choose a country." in html
    assert "Enter the first name." in html
    assert "not a valid phone number" in html or "This is not a phone number" in html
    assert 'class="field-error"' in html
    assert row_counts() == before


def test_a_contact_number_is_checked_for_the_chosen_country_and_stored_in_e164(world, owner):
    resp = owner.post(NEW, data=step1(phone="0201 234", country="GB"))
    assert resp.status_code == 422
    assert "not a valid phone number in United Kingdom" in resp.get_data(as_text=True)
    resp = owner.post(PLAN, data=wizard(phone="(202) 555-0123", country="US", email="us@customer.example",
                                        plan_name="US plan"))
    assert resp.status_code == 303, resp.get_data(as_text=True)
    assert _account_by_email("us@customer.example").phone == "+12025550123"


def test_step_one_refuses_an_email_that_already_has_a_login(world, owner):
    resp = owner.post(NEW, data=step1(email=world.customer_a.email))
    assert resp.status_code == 422
    assert "already used by another login" in resp.get_data(as_text=True)


def test_step_one_moves_on_to_step_two_carrying_step_one_in_hidden_fields(owner):
    resp = owner.post(NEW, data=step1())
    assert resp.status_code == 200
    html = resp.get_data(as_text=True)
    assert "Step 2 of 2" in html
    assert '<input type="hidden" name="name" value="Harbour Cafe">' in html
    assert '<input type="hidden" name="phone" value="020 7946 0018">' in html
    for name in ("plan_name", "users", "cost_per_user", "initial_credit", "rate_sheet_id",
                 "countries-0-country", "billing_type", "credit_limit", "max_channels", "cps_limit",
                 "low_balance_threshold", "email_alerts", "invoice_day", "tax_exempt", "tax_exempt_reason", "vat_number", "expiry_mode",
                 "autorefill", "initial_balance", "portal_password", "with_pin"):
        assert f'name="{name}"' in html, name
    assert "No spare numbers" in html


def test_back_keeps_what_was_typed_in_both_steps(owner):
    data = wizard(plan_name="Typed plan", users="3")
    data["action"] = "back"
    resp = owner.post(PLAN, data=data)
    assert resp.status_code == 200
    html = resp.get_data(as_text=True)
    assert "Step 1 of 2" in html
    assert 'value="Harbour Cafe"' in html                                 # step 1 shown with its values
    assert '<input type="hidden" name="plan_name" value="Typed plan">' in html   # step 2 kept
    # ...and Next brings step 2 back as it was typed.
    again = dict(data, action="next")
    resp = owner.post(NEW, data=again)
    html = resp.get_data(as_text=True)
    assert 'value="Typed plan"' in html and 'value="3"' in html


# --- the final submit -------------------------------------------------------------------------

def test_onboarding_creates_the_whole_account_in_one_go(app, world, owner):
    sheet_id = make_rate_sheet(world.a)
    numbers = make_numbers(world.a, 2, setup="1.00", monthly="3.00")
    resp = owner.post(PLAN, data=wizard(rate_sheet_id=str(sheet_id), number_ids=[str(i) for i in numbers],
                                        with_pin="y"))
    assert resp.status_code == 303, resp.get_data(as_text=True)
    account = _account_by_email("owner@harbour.example")
    assert resp.headers["Location"].endswith(f"/reseller/accounts/{account.id}")
    with unscoped():
        assert account.tenant_id == world.a.id
        assert len(account.account_number) == 10 and account.account_number.isdigit()
        assert account.pin and len(account.pin) == 6
        assert (account.phone, account.country, account.timezone) == ("+442079460018", "GB", "Europe/London")
        assert (account.max_channels, account.cps_limit, account.invoice_day) == (4, 2, 1)
        plan = db.session.execute(select(ServicePlan).where(ServicePlan.account_id == account.id)).scalar_one()
        assert (plan.name, plan.users, plan.cost_per_user, plan.rate_sheet_id) == ("Harbour Gold", 2, Decimal("10"), sheet_id)
        countries = db.session.execute(select(PlanCountry.country, PlanCountry.minutes)
                                       .where(PlanCountry.plan_id == plan.id)).all()
        assert countries == [("GB", 100)]
        entries = db.session.execute(select(LedgerEntry).where(LedgerEntry.account_id == account.id)
                                     .order_by(LedgerEntry.id)).scalars().all()
        kinds = [e.kind for e in entries]
        assert kinds[0] == "credit" and entries[0].amount == Decimal("100.00")
        users_entry = next(e for e in entries if e.kind == "user_charge")
        assert users_entry.idempotency_key.startswith(f"account:{account.id}:users:")
        assert kinds.count("number_charge") == 4      # setup + prorated month for each number
        assert account.balance == sum(e.amount for e in entries)
        exts = db.session.execute(select(Extension).where(Extension.account_id == account.id)
                                  .order_by(Extension.number)).scalars().all()
        assert [e.number for e in exts] == [str(world.a.base_extension), str(world.a.base_extension + 1)]
        assert all(len(e.sip_secret) >= 20 for e in exts)
        endpoint = db.session.execute(select(PsEndpoint).where(PsEndpoint.id == exts[0].sip_username)).scalar_one()
        assert endpoint.accountcode == account.account_number
        assert (endpoint.aors, endpoint.auth, endpoint.disallow) == (exts[0].sip_username,) * 2 + ("all",)
        assert endpoint.context and endpoint.allow and endpoint.transport
        assert endpoint.tenant_id == world.a.id and endpoint.account_id == account.id
        auth = db.session.execute(select(PsAuth).where(PsAuth.id == exts[0].sip_username)).scalar_one()
        assert (auth.auth_type, auth.username, auth.password) == ("userpass", exts[0].sip_username, exts[0].sip_secret)
        aor = db.session.execute(select(PsAor).where(PsAor.id == exts[0].sip_username)).scalar_one()
        assert aor.max_contacts == 1
        dids = db.session.execute(select(Number).where(Number.id.in_(numbers)).order_by(Number.id)).scalars().all()
        assert all(n.status == "assigned" and n.account_id == account.id for n in dids)
        assert dids[0].extension_id == exts[0].id and dids[1].extension_id == exts[1].id
        assert f"+44207946" in endpoint.callerid                       # the DID is the caller id
        login_user = db.session.execute(select(User).where(User.account_id == account.id)).scalar_one()
        assert login_user.role == "account_admin" and login_user.email == "owner@harbour.example"
        assert not login_user.check_password(account.account_number)
        orders = db.session.execute(select(Order.kind, Order.status).where(Order.account_id == account.id)).all()
        assert ("activation", "processed") in orders and ("number", "processed") in orders
        welcome = db.session.execute(select(Notification).where(Notification.account_id == account.id)).scalar_one()
        assert welcome.kind == "welcome" and welcome.status == "queued"
        assert account.account_number in welcome.body
        assert balance_mismatches() == []
    run_jobs(app)
    with unscoped():
        welcome = db.session.execute(select(Notification).where(Notification.kind == "welcome")).scalar_one()
        assert welcome.status == "logged"          # no SMTP configured in tests


def test_the_generated_portal_password_is_shown_once_and_opens_the_portal(world, owner, new_client):
    resp = owner.post(PLAN, data=wizard(), follow_redirects=True)
    html = resp.get_data(as_text=True)
    assert "shown this once" in html
    password = html.split("<code>")[1].split("</code>")[0]
    assert "shown this once" not in owner.get(resp.request.path).get_data(as_text=True)
    customer = new_client()
    resp = customer.post("/portal/login", data={"email": "owner@harbour.example", "password": password})
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/portal/")


def test_a_typed_portal_password_is_used(world, owner, new_client):
    owner.post(PLAN, data=wizard(portal_password="typed-password-9"))
    resp = new_client().post("/portal/login", data={"email": "owner@harbour.example", "password": "typed-password-9"})
    assert resp.status_code == 302


def test_step_two_bad_input_is_refused_field_by_field_and_nothing_is_written(world, owner):
    before = row_counts()
    resp = owner.post(PLAN, data=wizard(plan_name="", users="0", cost_per_user="ten", initial_credit="-5",
                                        invoice_day="31", max_channels="-1", billing_type="prepaid",
                                        credit_limit="50", expiry_mode="date", expiry_date="",
                                        **{"countries-1-country": "", "countries-1-minutes": "20"}))
    assert resp.status_code == 422
    html = resp.get_data(as_text=True)
    for message in ("Give the plan a name.", "From 1 to 1,000 users.", "“ten” is not a number.",
                    "The amount cannot be negative.", "A day from 1 to 28", "From 0 to 10,000.",
                    "A credit limit applies to postpaid accounts only", "Give the expiry date.",
                    "Choose the country these minutes are for."):
        assert message in html, message
    assert row_counts() == before


def test_a_prepaid_account_without_credit_for_its_first_charges_is_refused_and_nothing_is_written(world, owner):
    numbers = make_numbers(world.a, 1, setup="5.00", monthly="3.00")
    before = row_counts()
    resp = owner.post(PLAN, data=wizard(initial_credit="1.00", users="3", cost_per_user="30",
                                        number_ids=[str(numbers[0])]))
    assert resp.status_code == 422
    html = resp.get_data(as_text=True)
    assert "A prepaid account needs initial credit of at least" in html
    assert row_counts() == before
    with unscoped():
        assert db.session.execute(select(Number.status).where(Number.id == numbers[0])).scalar_one() == "spare"


def test_a_postpaid_account_may_start_below_zero(world, owner):
    resp = owner.post(PLAN, data=wizard(initial_credit="0", billing_type="postpaid", credit_limit="500"))
    assert resp.status_code == 303
    account = _account_by_email("owner@harbour.example")
    assert account.balance < 0 and account.credit_limit == Decimal("500")
    with unscoped():
        assert balance_mismatches() == []


def test_another_resellers_rate_sheet_or_number_cannot_be_chosen(world, owner):
    foreign_sheet = make_rate_sheet(world.b, "B sheet")
    foreign_number = make_numbers(world.b, 1)[0]
    before = row_counts()
    resp = owner.post(PLAN, data=wizard(rate_sheet_id=str(foreign_sheet)))
    assert resp.status_code == 422 and "Choose one of this reseller&#39;s rate sheets." in resp.get_data(as_text=True)
    resp = owner.post(PLAN, data=wizard(number_ids=[str(foreign_number)]))
    assert resp.status_code == 422 and "no longer spare" in resp.get_data(as_text=True)
    assert row_counts() == before


def test_a_plan_name_is_never_reused_even_after_the_account_is_closed(world, owner):
    account_id = onboard_account(world.a, plan_name="Gold", initial_credit="20", cost_per_user="0")
    from app.accounts.operations import adjust_balance, close_account
    from tenants.scope import tenant_scope
    with tenant_scope(world.a.id):
        account = db.session.execute(select(Account).where(Account.id == account_id)).scalar_one()
        adjust_balance(account, "reset", Decimal("0"), "closing", nonce="n1")
        close_account(account, reason="left")
        db.session.commit()
    for name in ("Gold", " gold ", "GOLD"):
        resp = owner.post(PLAN, data=wizard(plan_name=name))
        assert resp.status_code == 422
        assert "plan names are never reused" in resp.get_data(as_text=True)
    # Another reseller may use the name.
    onboard_account(world.b, plan_name="Gold")


def test_a_template_fills_step_two(world, owner):
    from app.billing.account_templates import save_template
    from tenants.scope import tenant_scope

    with tenant_scope(world.a.id):
        tpl = save_template(world.a.id, "Office pack", {"users": 5, "cost_per_user": "7.50", "billing_type": "postpaid",
                                                         "credit_limit": "250", "countries": [["FR", 60]]})
        db.session.commit()
        tpl_id = tpl.id
    resp = owner.get(f"{NEW}?template_id={tpl_id}")
    assert f'<option selected value="{tpl_id}">Office pack' in resp.get_data(as_text=True)
    resp = owner.post(NEW, data=step1(template_id=str(tpl_id)))
    html = resp.get_data(as_text=True)
    assert 'value="5"' in html and 'value="7.50"' in html and 'value="250.00"' in html
    assert '<option selected value="FR">' in html and '<option selected value="postpaid">' in html


def test_the_template_of_another_reseller_is_not_found(world, owner):
    from app.billing.account_templates import save_template
    from tenants.scope import tenant_scope

    with tenant_scope(world.b.id):
        tpl = save_template(world.b.id, "B pack", {"users": 5})
        db.session.commit()
        tpl_id = tpl.id
    assert owner.get(f"{NEW}?template_id={tpl_id}").status_code == 404


@pytest.mark.parametrize("who", ["customer_a", "admin"])
def test_other_portals_cannot_open_the_wizard(world, new_client, login, who):
    client = login(new_client(), getattr(world, who))
    assert client.get(NEW).status_code == 403
    assert client.post(PLAN, data=wizard()).status_code == 403


def test_anonymous_visitors_go_to_the_reseller_login(client):
    resp = client.get(NEW)
    assert resp.status_code == 302 and "/reseller/login" in resp.headers["Location"]


# --- races on PostgreSQL ----------------------------------------------------------------------

def _race(app, world, login, new_client, monkeypatch, datas):
    """Submit the wizard from several threads at once; every thread calls onboard() together."""
    import portals.reseller.onboarding as wizard_module

    real = wizard_module.onboard
    barrier = threading.Barrier(len(datas))

    def synchronised(**kw):
        barrier.wait(timeout=10)
        return real(**kw)

    monkeypatch.setattr(wizard_module, "onboard", synchronised)
    results = [None] * len(datas)
    owner_login = SimpleNamespace(id=world.owner_a.id)   # no ORM object shared across threads

    def submit(i):
        try:
            with app.app_context():
                client = login(new_client(), owner_login)
                resp = client.post(PLAN, data=datas[i])
                results[i] = (resp.status_code, resp.get_data(as_text=True))
        except BaseException as e:  # shown by the assertion below
            results[i] = (repr(e), "")

    threads = [threading.Thread(target=submit, args=(i,)) for i in range(len(datas))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert all(isinstance(code, int) for code, _ in results), results
    return results


def test_two_submissions_racing_for_one_plan_name_make_one_account(app, world, login, new_client, monkeypatch):
    results = _race(app, world, login, new_client, monkeypatch, [
        wizard(email="one@race.example", plan_name="Race plan"),
        wizard(email="two@race.example", plan_name="Race plan"),
    ])
    codes = sorted(code for code, _ in results)
    assert codes == [303, 422], codes
    loser = next(html for code, html in results if code == 422)
    assert "plan names are never reused" in loser
    with unscoped():
        assert db.session.query(Account).count() == 4 + 1          # the world's four, and one more
        assert db.session.query(ServicePlan).count() == 1
        assert balance_mismatches() == []


def test_two_submissions_racing_for_one_number_assign_it_once(app, world, login, new_client, monkeypatch):
    number_id = make_numbers(world.a, 1)[0]
    results = _race(app, world, login, new_client, monkeypatch, [
        wizard(email="one@race.example", plan_name="Plan one", number_ids=[str(number_id)]),
        wizard(email="two@race.example", plan_name="Plan two", number_ids=[str(number_id)]),
    ])
    codes = sorted(code for code, _ in results)
    assert codes == [303, 422], codes
    loser = next(html for code, html in results if code == 422)
    assert "was just assigned to another account" in loser
    with unscoped():
        assert db.session.query(Account).count() == 4 + 1
        owner_of = db.session.execute(select(Number.account_id).where(Number.id == number_id)).scalar_one()
        winner = db.session.execute(select(Account.id).where(Account.email.like("%@race.example"))).scalar_one()
        assert owner_of == winner
        assert db.session.query(Extension).count() == 2          # only the winner's users
        assert balance_mismatches() == []


def test_two_submissions_racing_for_one_email_make_one_login(app, world, login, new_client, monkeypatch):
    results = _race(app, world, login, new_client, monkeypatch, [
        wizard(email="same@race.example", plan_name="Plan one"),
        wizard(email="same@race.example", plan_name="Plan two"),
    ])
    codes = sorted(code for code, _ in results)
    assert codes == [303, 422], codes
    assert any("already used by another login" in html for code, html in results if code == 422)
    with unscoped():
        assert db.session.query(Account).filter(Account.email == "same@race.example").count() == 1


def test_when_the_check_misses_a_race_the_unique_constraint_gives_the_same_clear_message(world, owner, monkeypatch):
    """The database has the last word: a name taken between our check and our insert."""
    import app.billing.onboarding as onboarding_module
    import app.billing.plans as plans_module

    onboard_account(world.a, plan_name="Taken")
    monkeypatch.setattr(plans_module, "plan_name_taken", lambda tenant_id, name: False)
    monkeypatch.setattr(onboarding_module.plans, "plan_name_taken", lambda tenant_id, name: False)
    before = row_counts()
    resp = owner.post(PLAN, data=wizard(plan_name="taken"))
    assert resp.status_code == 422
    assert "plan names are never reused" in resp.get_data(as_text=True)
    assert row_counts() == before
