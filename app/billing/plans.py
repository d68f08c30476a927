"""Service plans: names never reused, countries & minutes, and user-count changes.

Plan names are unique within a reseller and never reused, not even after the account is
closed or the plan renamed: every name a plan ever had is kept in `plan_names`
(case- and space-insensitive), whose unique constraint also settles two requests racing
for the same name.

User-count changes follow Kazoo: `quote_user_change()` says what will be charged now, and
`apply_user_change()` only goes ahead if that quote is still what the admin accepted.
Added users are charged for the rest of the billing period (prorated); removed users go at
the start of the next period (a scheduled change, app/billing/user_changes.py), or at once
with a prorated credit when the reseller allows it. Flush, never commit.
"""
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

import pycountry
from sqlalchemy import ForeignKey, String, UniqueConstraint, delete, select
from sqlalchemy.orm import Mapped, mapped_column

from app import audit, ledger, money
from app.billing.models import PlanCountry, ServicePlan
from app.billing.proration import Proration, prorate_in_period
from app.conflicts import FieldError, flush_or_conflict
from app.extensions import db
from tenants.mixins import TenantOwned
from tenants.models import utcnow

MAX_USERS = 1000


class PlanName(TenantOwned, db.Model):
    """Every plan name a reseller ever used."""
    __tablename__ = "plan_names"
    __table_args__ = (UniqueConstraint("tenant_id", "name_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name_key: Mapped[str] = mapped_column(String(120))
    name: Mapped[str] = mapped_column(String(120))
    plan_id: Mapped[int | None] = mapped_column(ForeignKey("service_plans.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


def name_key(name: str) -> str:
    return " ".join((name or "").split()).casefold()[:120]


def plan_name_taken(tenant_id: int, name: str) -> bool:
    key = name_key(name)
    return db.session.execute(
        select(PlanName.id).where(PlanName.tenant_id == tenant_id, PlanName.name_key == key)
        .execution_options(all_tenants=True)
    ).first() is not None


def _reserve_name(tenant_id: int, name: str, plan_id: int | None) -> PlanName:
    if plan_name_taken(tenant_id, name):
        raise FieldError("plan_name", "This plan name is already used by another account of this reseller; "
                                      "plan names are never reused.")
    reserved = PlanName(tenant_id=tenant_id, name_key=name_key(name), name=name.strip()[:120], plan_id=plan_id)
    db.session.add(reserved)
    flush_or_conflict()
    return reserved


def check_rate_sheet(tenant_id: int, rate_sheet_id: int | None, currency: str | None = None) -> int | None:
    """The reseller's sheet, in the account's `currency` (one currency per account: a call is
    charged in the sheet's currency, the balance is kept in the account's)."""
    from app.rating.models import RateSheet

    if not rate_sheet_id:
        return None
    found = db.session.execute(
        select(RateSheet.id, RateSheet.name, RateSheet.currency)
        .where(RateSheet.id == rate_sheet_id, RateSheet.tenant_id == tenant_id)
    ).one_or_none()
    if found is None:
        raise FieldError("rate_sheet_id", "Choose one of this reseller's rate sheets.")
    if currency and found.currency != currency.upper():
        raise FieldError("rate_sheet_id", f"“{found.name}” is in {found.currency}, but the account bills in "
                                          f"{currency.upper()}: choose a {currency.upper()} rate sheet.")
    return found.id


def check_countries(countries) -> list[tuple[str, int]]:
    out, seen = [], set()
    for code, minutes in countries:
        code = (code or "").upper()
        if pycountry.countries.get(alpha_2=code) is None:
            raise FieldError("countries", f"“{code}” is not a country.")
        if code in seen:
            raise FieldError("countries", f"{pycountry.countries.get(alpha_2=code).name} is listed twice.")
        if minutes is None or int(minutes) < 0:
            raise FieldError("countries", "Minutes cannot be negative.")
        seen.add(code)
        out.append((code, int(minutes)))
    return out


def create_plan(account, *, name: str, users: int, cost_per_user: Decimal, rate_sheet_id: int | None,
                countries) -> ServicePlan:
    name = (name or "").strip()
    if not name:
        raise FieldError("plan_name", "Give the plan a name.")
    if not 1 <= users <= MAX_USERS:
        raise FieldError("users", f"Between 1 and {MAX_USERS} users.")
    rate_sheet_id = check_rate_sheet(account.tenant_id, rate_sheet_id, account.currency)
    countries = check_countries(countries)
    reserved = _reserve_name(account.tenant_id, name, None)
    plan = ServicePlan(tenant_id=account.tenant_id, account_id=account.id, name=name, users=users,
                       cost_per_user=cost_per_user, rate_sheet_id=rate_sheet_id)
    db.session.add(plan)
    flush_or_conflict()
    reserved.plan_id = plan.id
    _set_countries(plan, countries)
    return plan


def _set_countries(plan: ServicePlan, countries) -> None:
    db.session.execute(delete(PlanCountry).where(PlanCountry.plan_id == plan.id)
                       .execution_options(synchronize_session="fetch"))
    for code, minutes in countries:
        db.session.add(PlanCountry(tenant_id=plan.tenant_id, account_id=plan.account_id, plan_id=plan.id,
                                   country=code, minutes=minutes))
    flush_or_conflict()


def plan_of(account_id: int) -> ServicePlan | None:
    return db.session.execute(select(ServicePlan).where(ServicePlan.account_id == account_id)).scalar_one_or_none()


def countries_of(plan: ServicePlan | None) -> list[PlanCountry]:
    if plan is None:
        return []
    return list(db.session.execute(
        select(PlanCountry).where(PlanCountry.plan_id == plan.id).order_by(PlanCountry.country)
    ).scalars())


def update_plan(plan: ServicePlan, *, name: str, cost_per_user: Decimal, rate_sheet_id: int | None,
                countries, currency: str | None = None) -> dict:
    """Change the plan's terms (not its users: that is a billable change, see below). The rate
    sheet must be in `currency` (the account's, as it will be after the same edit)."""
    changes = {}
    name = (name or "").strip()
    if not name:
        raise FieldError("plan_name", "Give the plan a name.")
    rate_sheet_id = check_rate_sheet(plan.tenant_id, rate_sheet_id, currency)
    countries = check_countries(countries)
    if name_key(name) != name_key(plan.name):
        _reserve_name(plan.tenant_id, name, plan.id)
    if name != plan.name:
        changes["plan_name"] = [plan.name, name]
        plan.name = name
    if money.to_decimal(plan.cost_per_user) != cost_per_user:
        changes["cost_per_user"] = [str(plan.cost_per_user), str(cost_per_user)]
        plan.cost_per_user = cost_per_user
    if plan.rate_sheet_id != rate_sheet_id:
        changes["rate_sheet_id"] = [plan.rate_sheet_id, rate_sheet_id]
        plan.rate_sheet_id = rate_sheet_id
    old = sorted((c.country, c.minutes) for c in countries_of(plan))
    if old != sorted(countries):
        changes["countries"] = [[list(c) for c in old], [list(c) for c in sorted(countries)]]
        _set_countries(plan, countries)
    flush_or_conflict()
    return changes


# --- user count changes ------------------------------------------------------------------------

@dataclass(frozen=True)
class UserChangeQuote:
    """What a change of the user count does, shown before it is accepted.

    An increase is charged now for the rest of the current billing period (prorated). A
    decrease takes effect at the start of the next period (`effective_on`), unless the
    reseller lets decreases apply at once, with a prorated credit for the rest of the period."""
    current: int
    new: int
    cost_per_user: Decimal
    proration: Proration | None   # the added users' charge, or the removed users' credit (at once)
    currency: str
    effective_on: date | None = None      # a decrease at the next period: that period's first day
    effective_period: str = ""            # and its key
    waiting: tuple[int, date] | None = None   # (users, from) of the scheduled change this one replaces

    @property
    def added(self) -> int:
        return max(self.new - self.current, 0)

    @property
    def removed(self) -> int:
        return max(self.current - self.new, 0)

    @property
    def scheduled(self) -> bool:
        return self.effective_on is not None

    @property
    def charge_now(self) -> Decimal:
        return self.proration.amount if self.proration and self.added else Decimal("0")

    @property
    def credit_now(self) -> Decimal:
        return self.proration.amount if self.proration and self.removed else Decimal("0")

    @property
    def accepted_amount(self) -> Decimal:
        """What the accept form carries back: + charged now, - credited now, 0 scheduled."""
        return self.charge_now - self.credit_now

    @property
    def accepted_when(self) -> str:
        return self.effective_on.isoformat() if self.effective_on else "now"

    @property
    def monthly_before(self) -> Decimal:
        return money.quantize(self.cost_per_user * self.current, self.currency)

    @property
    def monthly_after(self) -> Decimal:
        return money.quantize(self.cost_per_user * self.new, self.currency)


class QuoteChanged(FieldError):
    def __init__(self, quote: UserChangeQuote):
        super().__init__("users", "The change is no longer the one shown (another change, a new day or a new "
                                  "setting). Review the new charge and accept again.")
        self.quote = quote


def decreases_at_once(tenant_id: int) -> bool:
    """The reseller's setting: a decrease applies at once with a prorated credit (else at the
    start of the next billing period)."""
    from tenants.models import Tenant

    return bool(db.session.execute(select(Tenant.user_decrease_immediate).where(Tenant.id == tenant_id)
                                   .execution_options(all_tenants=True)).scalar())


def _plural(n: int, word: str = "user") -> str:
    return f"{n} {word}{'s' if n != 1 else ''}"


def quote_user_change(account, plan: ServicePlan, new_users: int, *, now: datetime | None = None) -> UserChangeQuote:
    from app.billing import user_changes
    from app.billing.schedule import current_period, local_date

    if account.status == "closed":
        raise FieldError("users", "This account is closed.")
    if new_users is None or not 1 <= new_users <= MAX_USERS:
        raise FieldError("users", f"Between 1 and {MAX_USERS} users.")
    waiting = user_changes.pending_change(account.id)
    if new_users == plan.users:
        if waiting is not None:
            raise FieldError("users", (
                f"The account already has {_plural(plan.users)}; a change to {_plural(waiting.to_users)} from "
                f"{waiting.effective_on.isoformat()} is scheduled. To keep {_plural(plan.users)}, cancel that change."))
        raise FieldError("users", f"The account already has {_plural(plan.users)}.")
    if waiting is not None and new_users == waiting.to_users:
        raise FieldError("users", f"A change to {_plural(new_users)} from {waiting.effective_on.isoformat()} "
                                  "is already scheduled.")
    cost = money.to_decimal(plan.cost_per_user)
    period = current_period(account.timezone, account.billing_schedule, account.billing_day, now)
    today = local_date(account.timezone, now)
    proration, effective_on, effective_period = None, None, ""
    if new_users > plan.users:
        proration = prorate_in_period(cost * (new_users - plan.users), period, today, account.currency)
    elif decreases_at_once(account.tenant_id):
        proration = prorate_in_period(cost * (plan.users - new_users), period, today, account.currency)
    else:
        nxt = user_changes.next_period(account, now)
        effective_on, effective_period = nxt.start, nxt.key
    return UserChangeQuote(plan.users, new_users, cost, proration, account.currency, effective_on, effective_period,
                           (waiting.to_users, waiting.effective_on) if waiting is not None else None)


def apply_user_change(account, plan: ServicePlan, new_users: int, *, accepted_from: int,
                      accepted_charge: Decimal, accepted_when: str | None = None,
                      created_by_id: int | None = None, now: datetime | None = None) -> UserChangeQuote:
    """Apply a change the admin accepted; refuse if the quote is no longer the accepted one
    (`accepted_charge`: + charged, - credited, 0 scheduled; `accepted_when`: "now" or the day
    a scheduled decrease starts). An increase is charged now and adds extensions; a decrease
    is scheduled for the next period (app/billing/user_changes.py) or, when the reseller allows
    it, applied now with a prorated credit. A change applied now replaces a scheduled one."""
    from app.billing import user_changes
    from app.billing.orders import record_order
    from app.numbers.operations import detach_from_extension
    from provisioning import extensions

    # Lock the account first (the period run's lock: a change never interleaves with the run
    # charging this account), then the tenant (extension numbering), then the plan row: two
    # accepted changes apply one after the other.
    user_changes.lock_account(account.id)
    extensions.lock_tenant(account.tenant_id)
    plan = db.session.execute(
        select(ServicePlan).where(ServicePlan.id == plan.id).with_for_update().execution_options(populate_existing=True)
    ).scalar_one()
    quote = quote_user_change(account, plan, new_users, now=now)
    if (quote.current != accepted_from or quote.accepted_amount != accepted_charge
            or (accepted_when and accepted_when != quote.accepted_when)):
        raise QuoteChanged(quote)
    if quote.charge_now and account.billing_type == "prepaid" and account.balance < quote.charge_now:
        raise FieldError("users", (
            f"The balance {money.format_money(account.balance, account.currency)} does not cover the charge of "
            f"{money.format_money(quote.charge_now, account.currency)}. Add credit first."))
    if quote.scheduled:
        user_changes.schedule(account, plan, quote.new, quote.effective_on, quote.effective_period,
                              created_by_id=created_by_id)
        return quote
    user_changes.replace_pending(account, f"replaced by a change to {quote.new} users at once", by_id=created_by_id)
    order = record_order(account, "users", f"Users {quote.current} → {quote.new}", status="processed",
                         before=quote.current, after=quote.new, charged=quote.charge_now,
                         credited=quote.credit_now)
    key = f"account:{account.id}:users:{quote.proration.period}:order:{order.id}" if quote.proration else ""
    days = (f"{quote.proration.days_left}/{quote.proration.days_in_month} days of {quote.proration.period}"
            if quote.proration else "")
    each = money.format_money(quote.cost_per_user, account.currency)
    if quote.added:
        extensions.add_extensions(account, quote.added)
        if quote.charge_now:
            ledger.post(account.id, -quote.charge_now, "user_charge", key,
                        description=f"{quote.added} more user{'s' if quote.added != 1 else ''} × {each}, {days}",
                        created_by_id=created_by_id)
    else:
        for ext in extensions.newest_extensions(account, quote.removed):
            detach_from_extension(ext)   # its DIDs stay on the account, unattached
        extensions.remove_extensions(account, quote.removed)
        if quote.credit_now:
            # The key names the order: one credit per change, and a retried request finds it.
            ledger.post(account.id, quote.credit_now, "user_charge", key,
                        description=f"Credit: {quote.removed} user{'s' if quote.removed != 1 else ''} removed × "
                                    f"{each}, {days}", created_by_id=created_by_id)
    plan.users = quote.new
    audit.record("plan.users_changed", plan, account_id=account.id, before=quote.current, after=quote.new,
                 charged=str(quote.charge_now), credited=str(quote.credit_now))
    flush_or_conflict()
    return quote


@dataclass(frozen=True)
class BundleMinutes:
    """One opened country's free minutes this period: what the plan gives, used, left."""
    country: str
    minutes: int
    used_seconds: int

    @property
    def left_seconds(self) -> int:
        return max(self.minutes * 60 - self.used_seconds, 0)


def bundle_minutes(account_id: int, period_start: date) -> list[BundleMinutes]:
    """The plan's countries with their bundle use in the period starting `period_start` (the
    calendar month of the calls' UTC start, as rating counts them)."""
    from app.billing.models import BundleUsage

    plan = plan_of(account_id)
    used = dict(db.session.execute(
        select(BundleUsage.country, BundleUsage.seconds_used)
        .where(BundleUsage.account_id == account_id, BundleUsage.period_start == period_start)).all())
    return [BundleMinutes(c.country, c.minutes, used.get(c.country, 0)) for c in countries_of(plan)]
