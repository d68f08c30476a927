"""Onboarding: the wizard's two steps become one account in one transaction.

`onboard()` checks everything it can before writing anything (clear message, nothing
written), then creates the account, its plan, the initial credit, the first user and number
charges, the extensions with their SIP credentials and Asterisk realtime rows, the number
assignments, the account administrator's portal login, an activation order and the welcome
email. It flushes and never commits: the route commits once, or rolls back on any
FieldError (a race lost to a concurrent request surfaces as one, from the unique
constraints or the conditional number UPDATE).

First month (decision): users x cost per user and each number's monthly price are charged
for the days left in the current month (account time zone, today included); number setup
prices are charged in full. The users charge uses the monthly key
`account:{id}:users:{YYYY-MM}`, so the recurring run for this month charges nothing again.
A prepaid account must have initial credit covering all of that.
"""
import secrets
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from app import audit, ledger, money
from app.accounts.models import BILLING_TYPES, EXPIRY_MODES, Account
from app.logins.operations import LoginError, create_login, email_taken
from app.billing import plans
from app.billing.orders import record_order
from app.billing.proration import Proration, local_today, prorate
from app.conflicts import FieldError, conflict_error
from app.extensions import db
from app.numbers import operations as dids
from provisioning import extensions


@dataclass
class BasicInfo:
    name: str
    email: str
    first_name: str
    last_name: str
    phone: str                 # E.164
    country: str
    company: str = ""
    address: str = ""
    city: str = ""
    state: str = ""
    postcode: str = ""
    timezone: str = "UTC"
    language: str = "en"
    currency: str = "USD"


@dataclass
class PlanTerms:
    plan_name: str
    users: int = 1
    cost_per_user: Decimal = Decimal("0")
    initial_credit: Decimal = Decimal("0")
    rate_sheet_id: int | None = None
    number_ids: list[int] = field(default_factory=list)
    countries: list[tuple[str, int]] = field(default_factory=list)
    billing_type: str = "prepaid"
    credit_limit: Decimal = Decimal("0")
    max_channels: int = 0
    cps_limit: int = 0
    low_balance_threshold: Decimal = Decimal("0")
    email_alerts: bool = True
    invoice_day: int = 1
    vat_rate: Decimal = Decimal("0")          # unused since issue 17: taxes come from tax_ids
    vat_number: str = ""
    tax_ids: list[int] = field(default_factory=list)
    tax_exempt: bool = False
    tax_exempt_reason: str = ""
    expiry_mode: str = "none"
    expiry_date: date | None = None
    expiry_days: int | None = None
    autorefill: bool = False
    initial_balance: Decimal = Decimal("0")
    with_pin: bool = False
    portal_password: str | None = None   # None or "": generate one


@dataclass(frozen=True)
class FirstCharges:
    users: Proration
    numbers: list[dids.NumberCharge]
    currency: str

    @property
    def numbers_total(self) -> Decimal:
        return sum((c.total for c in self.numbers), Decimal("0"))

    @property
    def total(self) -> Decimal:
        return self.users.amount + self.numbers_total


@dataclass
class Onboarded:
    account: Account
    plan: object
    login: object
    password: str | None          # the generated password (shown once), None if typed
    extensions: list
    numbers: list
    charges: FirstCharges


def new_password() -> str:
    return secrets.token_urlsafe(9)


def check_terms(tenant_id: int, terms: PlanTerms, currency: str | None = None) -> None:
    for name in ("cost_per_user", "initial_credit", "credit_limit", "low_balance_threshold", "initial_balance"):
        try:
            money.check_maximum(money.to_decimal(getattr(terms, name)))
        except money.MoneyError as e:
            raise FieldError(name, str(e)) from None
    if terms.billing_type not in BILLING_TYPES:
        raise FieldError("billing_type", "Choose prepaid or postpaid.")
    if terms.billing_type == "prepaid" and terms.credit_limit:
        raise FieldError("credit_limit", "A credit limit applies to postpaid accounts only; leave it at 0.")
    if terms.expiry_mode not in EXPIRY_MODES:
        raise FieldError("expiry_mode", "Choose how the account expires.")
    if terms.expiry_mode == "date" and terms.expiry_date is None:
        raise FieldError("expiry_date", "Give the expiry date.")
    if terms.expiry_mode == "date" and terms.expiry_date <= local_today("UTC"):
        raise FieldError("expiry_date", "The expiry date must be in the future.")
    if terms.expiry_mode.startswith("days_") and not terms.expiry_days:
        raise FieldError("expiry_days", "Give the number of days.")
    if terms.autorefill and terms.initial_balance <= 0:
        raise FieldError("initial_balance", "Autorefill needs the balance to refill to.")
    if not 1 <= terms.users <= plans.MAX_USERS:
        raise FieldError("users", f"Between 1 and {plans.MAX_USERS} users.")
    if not 1 <= terms.invoice_day <= 28:
        raise FieldError("invoice_day", "A day from 1 to 28, so that every month has it.")
    if plans.plan_name_taken(tenant_id, terms.plan_name):
        raise FieldError("plan_name", "This plan name is already used by another account of this reseller; "
                                      "plan names are never reused.")
    plans.check_rate_sheet(tenant_id, terms.rate_sheet_id, currency)
    plans.check_countries(terms.countries)
    if terms.portal_password and len(terms.portal_password) < 8:
        raise FieldError("portal_password", "Use at least 8 characters, or leave it empty to generate one.")


def chosen_numbers(tenant_id: int, number_ids) -> list[dids.Number]:
    ids = list(dict.fromkeys(number_ids or []))
    if not ids:
        return []
    found = {n.id: n for n in db.session.execute(
        select(dids.Number).where(dids.Number.id.in_(ids), dids.Number.tenant_id == tenant_id)
    ).scalars()}
    missing = [i for i in ids if i not in found]
    taken = [found[i].number for i in ids if i in found and found[i].status != "spare"]
    if missing or taken:
        what = ", ".join(taken) if taken else "some of the chosen numbers"
        raise FieldError("number_ids", f"{what} {'is' if len(taken) == 1 else 'are'} no longer spare; choose again.")
    return [found[i] for i in ids]


def quote_first_charges(info: BasicInfo, terms: PlanTerms, numbers) -> FirstCharges:
    class _Acct:  # what first_charges needs of an account
        timezone, currency = info.timezone, info.currency

    users = prorate(money.to_decimal(terms.cost_per_user) * terms.users, local_today(info.timezone), info.currency)
    return FirstCharges(users=users, numbers=dids.first_charges(numbers, _Acct), currency=info.currency)


def onboard(*, tenant_id: int, info: BasicInfo, terms: PlanTerms, created_by_id: int | None = None) -> Onboarded:
    from app.accounts.operations import create_account
    from app.notifications.outbox import welcome_letter

    # 1. Everything that can be checked before writing.
    email = info.email.strip().lower()
    if email_taken(email):
        raise FieldError("email", "This email is already used by another login.")
    try:
        info.currency = money.check_currency(info.currency)
    except money.MoneyError as e:
        raise FieldError("currency", str(e)) from None
    check_terms(tenant_id, terms, info.currency)
    numbers = chosen_numbers(tenant_id, terms.number_ids)
    for n in numbers:      # sell prices are in the reseller's currency
        try:
            dids.check_price_currency(n, info)
        except FieldError as e:
            raise FieldError("number_ids", e.message) from None
    charges = quote_first_charges(info, terms, numbers)
    if terms.billing_type == "prepaid" and terms.initial_credit < charges.total:
        fmt = lambda a: money.format_money(a, info.currency)  # noqa: E731
        raise FieldError("initial_credit", (
            f"A prepaid account needs initial credit of at least {fmt(charges.total)} for its first charges "
            f"(users {fmt(charges.users.amount)} for {charges.users.days_left} of {charges.users.days_in_month} days, "
            f"numbers {fmt(charges.numbers_total)}). Add credit, or make the account postpaid."))

    # 2. The writes, in one transaction (the caller commits or rolls back). The tenant lock
    #    comes first: onboardings of one reseller run one after the other from here.
    extensions.lock_tenant(tenant_id)
    try:
        account = create_account(
            tenant_id=tenant_id, name=info.name.strip(), email=email, billing_type=terms.billing_type,
            currency=info.currency, initial_credit=terms.initial_credit, credit_limit=terms.credit_limit,
            with_pin=terms.with_pin,
            first_name=info.first_name.strip(), last_name=info.last_name.strip(), phone=info.phone,
            company=info.company.strip(), address=info.address.strip(), city=info.city.strip(),
            state=info.state.strip(), postcode=info.postcode.strip(), country=info.country,
            timezone=info.timezone, language=info.language, max_channels=terms.max_channels,
            cps_limit=terms.cps_limit, low_balance_threshold=terms.low_balance_threshold,
            email_alerts=terms.email_alerts, invoice_day=terms.invoice_day, vat_rate=terms.vat_rate,
            vat_number=terms.vat_number.strip(), expiry_mode=terms.expiry_mode,
            expiry_date=terms.expiry_date if terms.expiry_mode == "date" else None,
            expiry_days=terms.expiry_days if terms.expiry_mode.startswith("days_") else None,
            autorefill=terms.autorefill, initial_balance=terms.initial_balance,
        )
        if terms.tax_ids or terms.tax_exempt:
            from app.invoicing.taxes import set_account_taxes

            set_account_taxes(account, terms.tax_ids, exempt=terms.tax_exempt, reason=terms.tax_exempt_reason)
        plan = plans.create_plan(account, name=terms.plan_name, users=terms.users,
                                 cost_per_user=terms.cost_per_user, rate_sheet_id=terms.rate_sheet_id,
                                 countries=terms.countries)
        if charges.users.amount:
            ledger.post(account.id, -charges.users.amount, "user_charge",
                        f"account:{account.id}:users:{charges.users.period}",
                        description=(f"{terms.users} user{'s' if terms.users != 1 else ''} × "
                                     f"{money.format_money(terms.cost_per_user, info.currency)}, "
                                     f"{charges.users.days_left}/{charges.users.days_in_month} days of {charges.users.period}"),
                        created_by_id=created_by_id)
        exts = extensions.add_extensions(account, terms.users)
        assigned = []
        for i, n in enumerate(numbers):
            ext = exts[i] if i < len(exts) else exts[0]
            try:
                assigned.append(dids.assign(n.id, account, ext, check_credit=False, created_by_id=created_by_id))
            except FieldError as e:
                raise FieldError("number_ids", e.message) from e
        password = terms.portal_password or None
        generated = None
        if not password:
            password = generated = new_password()
        try:
            login = create_login(tenant_id=tenant_id, email=email, role="account_admin", password=password,
                                 name=f"{info.first_name} {info.last_name}".strip() or info.name,
                                 account_id=account.id)
        except LoginError as e:
            raise FieldError("email" if e.field == "email" else "portal_password", str(e)) from e
        record_order(account, "activation", f"Account activation: plan {plan.name}, {terms.users} user(s)",
                     status="processed", plan=plan.name, users=terms.users, numbers=len(assigned))
        audit.record("account.onboarded", account, plan=plan.name, users=terms.users,
                     numbers=[n.number for n in assigned], first_charges=str(charges.total))
        db.session.flush()
        welcome_letter(account, login_email=email)
    except IntegrityError as e:
        raise conflict_error(e) from e
    return Onboarded(account=account, plan=plan, login=login, password=generated, extensions=exts,
                     numbers=assigned, charges=charges)
