"""Number rules: allow and deny lists of dialled prefixes per account.

A deny rule always wins; when an account has any allow rule, only destinations matching one
of its allow rules may be called (A2Billing "restricted numbers" semantics).
"""
from sqlalchemy import CheckConstraint, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from tenants.mixins import AccountOwned, TenantOwned

RULE_KINDS = ("allow", "deny", "callerid")   # callerid: a number the reseller approved as caller ID


class NumberRule(AccountOwned, db.Model):
    __tablename__ = "number_rules"
    __table_args__ = (UniqueConstraint("account_id", "kind", "prefix"),
                      CheckConstraint("kind in ('allow', 'deny', 'callerid')", name="kind"))

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(8))
    prefix: Mapped[str] = mapped_column(String(32))     # digits as dialled after translation


class Carrier(TenantOwned, db.Model):
    """A wholesale carrier the platform sends calls to: a PJSIP endpoint `carrier-<id>`
    (docs/asterisk.md), its digit manipulation and its *buy* rate sheet."""
    __tablename__ = "carriers"
    __table_args__ = (UniqueConstraint("tenant_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(80))
    host: Mapped[str] = mapped_column(String(255))
    port: Mapped[int] = mapped_column(default=5060)
    username: Mapped[str] = mapped_column(String(80), default="")   # empty: IP-authenticated
    secret: Mapped[str] = mapped_column(String(80), default="")
    strip_digits: Mapped[int] = mapped_column(default=0)            # removed from the front
    add_prefix: Mapped[str] = mapped_column(String(20), default="") # then added in front
    buy_rate_sheet_id: Mapped[int | None] = mapped_column(ForeignKey("rate_sheets.id"))
    enabled: Mapped[bool] = mapped_column(default=True)

    @property
    def endpoint(self) -> str:
        return f"carrier-{self.id}"

    def dialled(self, destination: str) -> str:
        return self.add_prefix + destination[self.strip_digits:]


class RouteGroup(TenantOwned, db.Model):
    """A set of routes (A2Billing "call plan" / ASTPP "routing"): prefixes to ordered carriers.
    `lcr`: cheapest buy rate first (ties by position); `priority`: the listed order."""
    __tablename__ = "route_groups"
    __table_args__ = (UniqueConstraint("tenant_id", "name"),
                      CheckConstraint("strategy in ('lcr', 'priority')", name="strategy"))

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(80))
    strategy: Mapped[str] = mapped_column(String(10), default="lcr")
    is_default: Mapped[bool] = mapped_column(default=False)   # used by accounts without a customer route


class Route(TenantOwned, db.Model):
    __tablename__ = "routes"
    __table_args__ = (UniqueConstraint("group_id", "prefix"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("route_groups.id", ondelete="CASCADE"), index=True)
    prefix: Mapped[str] = mapped_column(String(32))      # '' matches everything


class RouteCarrier(TenantOwned, db.Model):
    __tablename__ = "route_carriers"
    __table_args__ = (UniqueConstraint("route_id", "carrier_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    route_id: Mapped[int] = mapped_column(ForeignKey("routes.id", ondelete="CASCADE"), index=True)
    carrier_id: Mapped[int] = mapped_column(ForeignKey("carriers.id"), index=True)
    position: Mapped[int] = mapped_column(default=0)


class CustomerRoute(AccountOwned, db.Model):
    """Which route group an account's calls use; a row with an extension overrides it for that
    extension (seed 000, "customer route")."""
    __tablename__ = "customer_routes"
    __table_args__ = (UniqueConstraint("account_id", "extension_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    extension_id: Mapped[int | None] = mapped_column(ForeignKey("extensions.id", ondelete="CASCADE"))
    group_id: Mapped[int] = mapped_column(ForeignKey("route_groups.id"), index=True)


class TranslationRule(AccountOwned, db.Model):
    """Rewrites what an account dials before anything else looks at it (seed 004): numbers
    starting with `match` lose `strip_digits` digits and get `add_prefix`; the first matching
    rule by position applies. `national_to_e164` instead parses the number as a national
    number of the account's country (phonenumbers) and yields its E.164 digits."""
    __tablename__ = "translation_rules"

    id: Mapped[int] = mapped_column(primary_key=True)
    position: Mapped[int] = mapped_column(default=0)
    match: Mapped[str] = mapped_column(String(32), default="")
    strip_digits: Mapped[int] = mapped_column(default=0)
    add_prefix: Mapped[str] = mapped_column(String(20), default="")
    national_to_e164: Mapped[bool] = mapped_column(default=False)
