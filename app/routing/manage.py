"""Carriers, route groups and routes as the platform admin edits them (/admin/carriers, /admin/routing).

Every operation checks its values first and raises `FieldError` naming the form field (nothing
written), flushes and never commits. Carriers and route groups belong to the platform (the root
tenant): the AGI decision reads them for every reseller's calls.
"""
from __future__ import annotations

import ipaddress
import re

from sqlalchemy import delete, func, select

from app import audit
from app.conflicts import FieldError
from app.extensions import db
from tenants.models import Tenant

from .models import Carrier, Route, RouteCarrier, RouteGroup

MAX_CARRIERS = 6           # carrier slots on the route form (Dial attempts per call)
_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")
_USERNAME = re.compile(r"^[A-Za-z0-9_.@+-]{1,80}$")
_DIGITS = re.compile(r"^[0-9]{1,32}$")
_ADD = re.compile(r"^[0-9*#+]{0,20}$")
STRATEGIES = {"lcr": "Least cost (cheapest buy rate first)", "priority": "Fixed priority (the listed order)"}


def platform_tenant_id() -> int:
    return db.session.execute(select(Tenant.id).where(Tenant.parent_id.is_(None))
                              .order_by(Tenant.id).limit(1)).scalar_one()


# ---- validation ---------------------------------------------------------------------------
def clean_name(value) -> str:
    name = (value or "").strip()
    if not name:
        raise FieldError("name", "Enter a name.")
    if len(name) > 80:
        raise FieldError("name", "Keep the name to 80 characters.")
    return name


def clean_host(value) -> str:
    """A host name or an IP address of the carrier's SIP proxy (no scheme, port or path)."""
    host = (value or "").strip()
    if not host:
        raise FieldError("host", "Enter the carrier's SIP host name or IP address.")
    if "://" in host or "/" in host or host.lower().startswith("sip:"):
        raise FieldError("host", "Enter just the host name or IP address, without sip: or a path.")
    bare = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        return str(ipaddress.ip_address(bare))
    except ValueError:
        pass
    if ":" in host:
        raise FieldError("host", "Enter the port in the Port field, not after the host.")
    name = host.rstrip(".").lower()
    labels = name.split(".")
    if len(name) > 253 or not all(_LABEL.match(label) for label in labels) or labels[-1].isdigit():
        raise FieldError("host", "This is not a valid host name or IP address "
                                 "(letters, digits, dashes and dots, such as sip.carrier.example or 192.0.2.10).")
    return name


def clean_port(value) -> int:
    text = "" if value is None or isinstance(value, bool) else str(value).strip()
    if not (text.isascii() and text.isdigit()):
        raise FieldError("port", "Enter the port as a whole number, digits only (SIP's default is 5060).")
    port = int(text)
    if not 1 <= port <= 65535:
        raise FieldError("port", "Choose a port from 1 to 65535 (SIP's default is 5060).")
    return port


def clean_credentials(username, secret, old_secret: str = "") -> tuple[str, str]:
    """Both empty: IP authentication (the carrier trusts our address). A username needs a secret;
    a blank secret on edit keeps the stored one."""
    username = (username or "").strip()
    secret = secret or ""
    if not username:
        if secret:
            raise FieldError("username", "Enter the username that goes with this secret, or clear the secret "
                                         "for IP authentication.")
        return "", ""
    if not _USERNAME.match(username):
        raise FieldError("username", "Use up to 80 letters, digits and . _ - @ + (as the carrier gave it).")
    secret = secret or old_secret
    if not secret:
        raise FieldError("secret", "Enter the secret for this username (or clear the username for IP authentication).")
    if len(secret) > 80:
        raise FieldError("secret", "Keep the secret to 80 characters.")
    return username, secret


def clean_strip(value) -> int:
    text = "0" if value is None or str(value).strip() == "" else str(value).strip()
    if not (text.isascii() and text.isdigit()) or int(text) > 20:
        raise FieldError("strip_digits", "Enter how many leading digits to remove, from 0 to 20.")
    return int(text)


def clean_add(value) -> str:
    text = (value or "").strip()
    if not _ADD.match(text):
        raise FieldError("add_prefix", "Use up to 20 digits (and * # +), such as 00 or a tech prefix like 1234#.")
    return text


def clean_buy_sheet(value, sheet_ids) -> int | None:
    """None (no buy sheet: least cost skips the carrier) or one of `sheet_ids`, the platform's
    rate sheets (listed by the caller: routing does not import the rating package)."""
    if value in (None, "", 0, "0"):
        return None
    try:
        sheet_id = int(value)
    except (TypeError, ValueError):
        sheet_id = None
    if sheet_id not in set(sheet_ids):
        raise FieldError("buy_rate_sheet_id", "Choose one of the platform's rate sheets.")
    return sheet_id


def clean_prefixes(value) -> list[str]:
    """Prefixes separated by spaces, commas or new lines; `*` is the catch-all route ('')."""
    parts = [p for p in re.split(r"[\s,;]+", (value or "").strip()) if p]
    if not parts:
        raise FieldError("prefixes", "Enter at least one prefix (digits, such as 44 or 4420), or * for every destination.")
    out = []
    for p in parts:
        p = p.lstrip("+")
        if p != "*" and not _DIGITS.match(p):
            raise FieldError("prefixes", f"“{p}” is not a prefix: use digits only (up to 32), or * for every destination.")
        p = "" if p == "*" else p
        if p in out:
            raise FieldError("prefixes", f"“{p or '*'}” is listed twice.")
        out.append(p)
    return out


def clean_carrier_list(ids, names: dict[int, str]) -> list[int]:
    """The chosen carriers in order (blank slots skipped); each at most once, each a carrier."""
    out = []
    for value in ids:
        if value in (None, "", 0, "0"):
            continue
        cid = int(value)
        if cid not in names:
            raise FieldError("carriers", "Choose carriers from the list.")
        if cid in out:
            raise FieldError("carriers", f"{names[cid]} is listed twice: each carrier once per route.")
        out.append(cid)
    if not out:
        raise FieldError("carriers", "Choose at least one carrier for this route.")
    return out


# ---- carriers -----------------------------------------------------------------------------
def _unique_carrier_name(name: str, tenant_id: int, carrier_id: int | None = None) -> None:
    q = select(Carrier.id).where(Carrier.tenant_id == tenant_id, func.lower(Carrier.name) == name.lower())
    if carrier_id is not None:
        q = q.where(Carrier.id != carrier_id)
    if db.session.execute(q).first() is not None:
        raise FieldError("name", "Another carrier already has this name.")


def carrier_values(tenant_id: int, *, name, host, port, username, secret, strip_digits, add_prefix,
                   buy_rate_sheet_id, enabled, sheet_ids=(), old: Carrier | None = None) -> dict:
    name = clean_name(name)
    _unique_carrier_name(name, tenant_id, old.id if old else None)
    values = dict(name=name, host=clean_host(host), port=clean_port(port))
    values["username"], values["secret"] = clean_credentials(username, secret, old.secret if old else "")
    values.update(strip_digits=clean_strip(strip_digits), add_prefix=clean_add(add_prefix),
                  buy_rate_sheet_id=clean_buy_sheet(buy_rate_sheet_id, sheet_ids), enabled=bool(enabled))
    return values


def create_carrier(tenant_id: int, **fields) -> Carrier:
    values = carrier_values(tenant_id, **fields)
    carrier = Carrier(tenant_id=tenant_id, **values)
    db.session.add(carrier)
    db.session.flush()
    audit.record("carrier.create", carrier, new={k: v for k, v in values.items() if k != "secret"})
    return carrier


def update_carrier(carrier: Carrier, **fields) -> bool:
    values = carrier_values(carrier.tenant_id, old=carrier, **fields)
    changed = {k: v for k, v in values.items() if getattr(carrier, k) != v}
    for k, v in changed.items():
        setattr(carrier, k, v)
    if changed:
        db.session.flush()
        audit.record("carrier.update", carrier, new={k: ("***" if k == "secret" else v) for k, v in changed.items()})
    return bool(changed)


def set_carrier_enabled(carrier: Carrier, enabled: bool) -> bool:
    if carrier.enabled == enabled:
        return False
    carrier.enabled = enabled
    db.session.flush()
    audit.record("carrier.enable" if enabled else "carrier.disable", carrier)
    return True


# ---- route groups and routes --------------------------------------------------------------
def group_values(tenant_id: int, *, name, strategy, is_default, group_id: int | None = None) -> dict:
    name = clean_name(name)
    q = select(RouteGroup.id).where(RouteGroup.tenant_id == tenant_id, func.lower(RouteGroup.name) == name.lower())
    if group_id is not None:
        q = q.where(RouteGroup.id != group_id)
    if db.session.execute(q).first() is not None:
        raise FieldError("name", "Another route group already has this name.")
    if strategy not in STRATEGIES:
        raise FieldError("strategy", "Choose least cost or fixed priority.")
    return dict(name=name, strategy=strategy, is_default=bool(is_default))


def _only_default(group: RouteGroup) -> None:
    if group.is_default:
        for other in db.session.execute(select(RouteGroup).where(
                RouteGroup.tenant_id == group.tenant_id, RouteGroup.id != group.id,
                RouteGroup.is_default.is_(True))).scalars():
            other.is_default = False


def create_group(tenant_id: int, **fields) -> RouteGroup:
    group = RouteGroup(tenant_id=tenant_id, **group_values(tenant_id, **fields))
    db.session.add(group)
    db.session.flush()
    _only_default(group)
    db.session.flush()
    audit.record("route_group.create", group, new={"name": group.name, "strategy": group.strategy})
    return group


def update_group(group: RouteGroup, **fields) -> bool:
    values = group_values(group.tenant_id, group_id=group.id, **fields)
    changed = {k: v for k, v in values.items() if getattr(group, k) != v}
    for k, v in changed.items():
        setattr(group, k, v)
    _only_default(group)
    if changed:
        db.session.flush()
        audit.record("route_group.update", group, new=changed)
    return bool(changed)


def carrier_names(tenant_id: int) -> dict[int, str]:
    return dict(db.session.execute(select(Carrier.id, Carrier.name).where(Carrier.tenant_id == tenant_id)
                                   .order_by(Carrier.name)).all())


def _set_carriers(route: Route, carrier_ids: list[int]) -> None:
    db.session.execute(delete(RouteCarrier).where(RouteCarrier.route_id == route.id)
                       .execution_options(synchronize_session=False))
    for position, cid in enumerate(carrier_ids):
        db.session.add(RouteCarrier(tenant_id=route.tenant_id, route_id=route.id, carrier_id=cid, position=position))


def _taken(group: RouteGroup, prefixes: list[str], route_id: int | None = None) -> None:
    q = select(Route.prefix).where(Route.group_id == group.id, Route.prefix.in_(prefixes))
    if route_id is not None:
        q = q.where(Route.id != route_id)
    taken = sorted(db.session.execute(q).scalars())
    if taken:
        shown = ", ".join(p or "*" for p in taken)
        raise FieldError("prefixes", f"{group.name} already routes {shown}: edit that route instead.")


def add_routes(group: RouteGroup, *, prefixes, carriers) -> list[Route]:
    """One route per prefix, each with the same ordered carrier list."""
    wanted = clean_prefixes(prefixes)
    ids = clean_carrier_list(carriers, carrier_names(group.tenant_id))
    _taken(group, wanted)
    made = []
    for prefix in wanted:
        route = Route(tenant_id=group.tenant_id, group_id=group.id, prefix=prefix)
        db.session.add(route)
        db.session.flush()
        _set_carriers(route, ids)
        made.append(route)
    db.session.flush()
    audit.record("route.create", group, new={"prefixes": wanted, "carriers": ids})
    return made


def update_route(route: Route, group: RouteGroup, *, prefixes, carriers) -> None:
    wanted = clean_prefixes(prefixes)
    if len(wanted) != 1:
        raise FieldError("prefixes", "A route has one prefix: add the others as new routes.")
    ids = clean_carrier_list(carriers, carrier_names(group.tenant_id))
    _taken(group, wanted, route.id)
    route.prefix = wanted[0]
    _set_carriers(route, ids)
    db.session.flush()
    audit.record("route.update", group, new={"prefix": wanted[0], "carriers": ids})


def delete_route(route: Route, group: RouteGroup) -> None:
    prefix = route.prefix
    db.session.execute(delete(RouteCarrier).where(RouteCarrier.route_id == route.id)
                       .execution_options(synchronize_session=False))
    db.session.delete(route)
    db.session.flush()
    audit.record("route.delete", group, old={"prefix": prefix})


def routes_of(group_ids) -> dict[int, list[tuple[Route, list[int]]]]:
    """group id -> [(route, [carrier ids in position order])], routes by prefix."""
    out: dict[int, list] = {g: [] for g in group_ids}
    if not out:
        return out
    routes = db.session.execute(select(Route).where(Route.group_id.in_(list(out)))
                                .order_by(Route.prefix)).scalars().all()
    order: dict[int, list[int]] = {r.id: [] for r in routes}
    if routes:
        for rid, cid in db.session.execute(
                select(RouteCarrier.route_id, RouteCarrier.carrier_id).where(RouteCarrier.route_id.in_(list(order)))
                .order_by(RouteCarrier.route_id, RouteCarrier.position)).all():
            order[rid].append(cid)
    for r in routes:
        out[r.group_id].append((r, order[r.id]))
    return out
