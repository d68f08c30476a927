"""The new-account wizard: /reseller/accounts/new (basic info) -> /accounts/new/plan (plan).

Stateless between steps: step 2 carries step 1's values as hidden fields, and Back carries
step 2's values back the same way, so nothing typed is lost in either direction and two
wizards in two tabs never mix. Works as plain forms; with htmx each step swaps into #main.
The final submit calls app.billing.onboarding.onboard() and commits once.
"""
import re

from flask import flash, make_response, redirect, request, session, url_for
from flask_login import current_user
from markupsafe import Markup, escape
from sqlalchemy import select

from app import money
from app.billing.account_templates import AccountTemplate, templates_of
from app.billing.onboarding import BasicInfo, PlanTerms, onboard
from app.conflicts import FieldError
from app.extensions import db
from app.rating.models import RateSheet
from app.rating.sheets import countries_without_rates
from app.web import is_htmx, render
from portals.account_forms import STEP1_FIELDS, Step1Form, Step2Form, amount, tax_choices
from portals.reseller import bp
from app.numbers.operations import spare_numbers
from tenants import Tenant, get_or_404

# A typed password is never echoed back into the page (like any password field).
PASSTHROUGH_SKIP = {"csrf_token", "action", "portal_password"}


def home_tenant() -> Tenant:
    return db.session.execute(select(Tenant).where(Tenant.id == current_user.tenant_id)).scalar_one()


def rate_sheet_choices(tenant_id: int, currency: str | None = None):
    """The reseller's sheets; with `currency`, only those in it (an account is billed in one
    currency: the wizard offers the sheets of the currency chosen in step 1)."""
    q = select(RateSheet).where(RateSheet.tenant_id == tenant_id)
    if currency:
        q = q.where(RateSheet.currency == currency)
    sheets = db.session.execute(q.order_by(RateSheet.name)).scalars()
    return [(0, "— none —")] + [(s.id, f"{s.name} ({s.currency})") for s in sheets]


def number_choices(tenant_id: int, currency: str = "USD"):
    return [(n.id, f"{n.display} · {n.country} · setup {money.format_money(n.sell_setup, currency)}"
                   f" · {money.format_money(n.sell_monthly, currency)}/month")
            for n in spare_numbers(tenant_id)]


def _step1_form(formdata=None) -> Step1Form:
    tenant = home_tenant()
    form = Step1Form(formdata=formdata) if formdata is not None else Step1Form(formdata=None, currency=tenant.currency)
    form.template_id.choices = [(0, "— none —")] + [(t.id, t.name) for t in templates_of(tenant.id)]
    return form


def _step2_form(formdata=None, template: AccountTemplate | None = None) -> Step2Form:
    tenant = home_tenant()
    if formdata is not None:
        form = Step2Form(formdata=formdata)
    else:
        data = dict(template.values) if template else {}
        countries = [{"country": c, "minutes": m} for c, m in data.pop("countries", []) or []]
        for key in ("cost_per_user", "initial_credit", "credit_limit", "low_balance_threshold", "initial_balance"):
            if data.get(key) is not None:
                data[key] = money.to_decimal(data[key])
        data["rate_sheet_id"] = data.get("rate_sheet_id") or 0
        form = Step2Form(formdata=None, data={k: v for k, v in data.items() if v is not None})
        for i, row in enumerate(countries):
            if i < len(form.countries.entries):
                form.countries.entries[i].country.data = row["country"]
                form.countries.entries[i].minutes.data = row["minutes"]
            else:
                form.countries.append_entry(row)
    currency = request.form.get("currency") or tenant.currency
    form.rate_sheet_id.choices = rate_sheet_choices(tenant.id, currency)
    form.rate_sheet_id.description = f"The sheets in {currency}, the account's currency."
    form.number_ids.choices = number_choices(tenant.id, tenant.currency)
    tax_choices(form, tenant.id)
    return form


def hidden_fields(names=None, skip=()) -> Markup:
    """The posted values as hidden inputs: all of `names`, or every key not in `skip`."""
    out = []
    for key, values in request.form.lists():
        if key in PASSTHROUGH_SKIP or key in skip or (names is not None and key not in names):
            continue
        for v in values:
            out.append(f'<input type="hidden" name="{escape(key)}" value="{escape(v)}">')
    return Markup("\n".join(out))


def _render_step1(form1, status=200, keep_step2=False, message=None):
    step1_names = {f.name for f in form1}
    hidden = hidden_fields(skip=step1_names) if keep_step2 else Markup("")
    return render("reseller/account_new_step1.html", status=status, form=form1, hidden=hidden,
                  message=message, title="New account · basic info")


def coverage_warning(sheet_id, countries) -> str | None:
    """A warning (never an error) when a country opened by the plan has no row in the chosen
    rate sheet of this reseller: its calls would all get a rating error."""
    from portals.account_forms import COUNTRY_NAMES

    try:
        sheet_id = int(sheet_id or 0)
    except (TypeError, ValueError):
        return None
    sheet = db.session.execute(select(RateSheet).where(
        RateSheet.id == sheet_id, RateSheet.tenant_id == current_user.tenant_id)).scalar_one_or_none() if sheet_id else None
    if sheet is None:
        return None
    missing = countries_without_rates(sheet.id, [c for c in countries if c in COUNTRY_NAMES])
    if not missing:
        return None
    names = ", ".join(f"{COUNTRY_NAMES[c]} ({c})" for c in missing)
    return (f"Rate sheet “{sheet.name}” has no prefix for {names}. Calls there will not be rated (they show a "
            f"rating error in Calls) until you add rates for {'it' if len(missing) == 1 else 'them'} to the sheet; "
            f"then re-rate them from Calls.")


def _form_countries(form2) -> list[str]:
    return [row.country.data for row in form2.countries if row.country.data]


def _render_step2(form1, form2, status=200, message=None):
    warning = coverage_warning(form2.rate_sheet_id.data, _form_countries(form2))
    return render("reseller/account_new_step2.html", status=status, form=form2, form1=form1,
                  hidden=hidden_fields(names=set(STEP1_FIELDS)), message=message, coverage=warning,
                  title="New account · service plan")


@bp.get("/accounts/new/coverage")
def account_new_coverage():
    """The wizard's warning alone (htmx, when the rate sheet or a country changes)."""
    countries = [v for k, v in request.args.items(multi=True) if re.fullmatch(r"countries-\d+-country", k)]
    return render("reseller/_coverage_warning.html", coverage=coverage_warning(request.args.get("rate_sheet_id"),
                                                                                countries))


def _template(template_id) -> AccountTemplate | None:
    if not template_id:
        return None
    tpl = db.session.execute(
        select(AccountTemplate).where(AccountTemplate.id == int(template_id),
                                      AccountTemplate.tenant_id == current_user.tenant_id)
    ).scalar_one_or_none()
    return tpl


@bp.route("/accounts/new", methods=["GET", "POST"])
def account_new():
    if request.method == "GET":
        form1 = _step1_form()
        tpl_id = request.args.get("template_id", type=int)
        if tpl_id:
            tpl = get_or_404(AccountTemplate, tpl_id)
            form1.template_id.data = tpl.id
            if (tpl.values or {}).get("currency"):   # its rate sheet is in that currency
                form1.currency.data = tpl.values["currency"]
        return _render_step1(form1)
    form1 = _step1_form(request.form)
    if not form1.validate():
        return _render_step1(form1, status=422, keep_step2=True)
    from app.logins.operations import email_taken

    if email_taken(form1.email.data):
        form1.email.errors.append("This email is already used by another login.")
        return _render_step1(form1, status=422, keep_step2=True)
    if request.form.get("step2_seen"):
        form2 = _step2_form(request.form)
    else:
        form2 = _step2_form(None, _template(form1.template_id.data))
    return _render_step2(form1, form2)


@bp.post("/accounts/new/plan")
def account_new_plan():
    form1 = _step1_form(request.form)
    form2 = _step2_form(request.form)
    if request.form.get("action") == "back":
        return _render_step1(form1, keep_step2=True)
    if not form1.validate():
        return _render_step1(form1, status=422, keep_step2=True)
    if not form2.validate():
        return _render_step2(form1, form2, status=422)
    info = BasicInfo(
        name=form1.name.data, email=form1.email.data, first_name=form1.first_name.data,
        last_name=form1.last_name.data, phone=form1.phone_e164, country=form1.country.data,
        company=form1.company.data or "", address=form1.address.data or "", city=form1.city.data or "",
        state=form1.state.data or "", postcode=form1.postcode.data or "", timezone=form1.timezone.data,
        language=form1.language.data, currency=form1.currency.data)
    terms = PlanTerms(
        plan_name=form2.plan_name.data, users=form2.users.data, cost_per_user=amount(form2.cost_per_user),
        initial_credit=amount(form2.initial_credit), rate_sheet_id=form2.rate_sheet_id.data or None,
        number_ids=form2.number_ids.data or [], countries=form2.countries_data(),
        billing_type=form2.billing_type.data, credit_limit=amount(form2.credit_limit),
        max_channels=form2.max_channels.data, cps_limit=form2.cps_limit.data,
        low_balance_threshold=amount(form2.low_balance_threshold), email_alerts=form2.email_alerts.data,
        invoice_day=form2.invoice_day.data, vat_number=form2.vat_number.data or "",
        tax_ids=form2.tax_ids.data or [], tax_exempt=form2.tax_exempt.data,
        tax_exempt_reason=form2.tax_exempt_reason.data or "",
        expiry_mode=form2.expiry_mode.data, expiry_date=form2.expiry_date.data, expiry_days=form2.expiry_days.data,
        autorefill=form2.autorefill.data, initial_balance=amount(form2.initial_balance),
        with_pin=form2.with_pin.data, portal_password=form2.portal_password.data or None)
    try:
        done = onboard(tenant_id=current_user.tenant_id, info=info, terms=terms, created_by_id=current_user.id)
    except FieldError as e:
        db.session.rollback()
        if e.field and e.field in form1._fields and e.field != "template_id":
            form1[e.field].errors = list(form1[e.field].errors) + [e.message]
            return _render_step1(form1, status=422, keep_step2=True)
        form2 = _step2_form(request.form)  # the choices again (the rollback expired them)
        form2.validate()
        if e.field and e.field in form2._fields:
            target = form2[e.field]
            target.errors = list(target.errors) + [e.message]
            return _render_step2(form1, form2, status=422, message=e.message if e.field == "countries" else None)
        return _render_step2(form1, form2, status=409, message=e.message)
    account_id, number = done.account.id, done.account.account_number
    warning = coverage_warning(terms.rate_sheet_id, [c for c, _ in terms.countries])
    db.session.commit()
    if done.password:
        # Shown once on the account page, never stored in clear.
        session["new_portal_password"] = {"account_id": account_id, "password": done.password}
    flash(f"Account {number} created. The welcome email is on its way.", "success")
    if warning:
        flash(warning, "warning")
    url = url_for("reseller.account_detail", account_id=account_id)
    if is_htmx():
        resp = make_response("", 200)
        resp.headers["HX-Redirect"] = url
        return resp
    return redirect(url, code=303)
