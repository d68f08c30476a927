"""Customer IP trunks (seed 002): an account's SIP trunk identified by the address(es) it sends
calls from instead of a registration, each with its own call limit and CPS limit.

A trunk is the PJSIP endpoint `trunk-<id>` (accountcode = the account number) plus one
`ps_endpoint_id_ips` row per address or network (res_pjsip_endpoint_identifier_ip): a call
from that address is the trunk's, and the dialplan hands `${CHANNEL(endpoint)}` to the AGI,
which finds the account and enforces the trunk's limits. An address belongs to one trunk on the
whole platform (Asterisk could not tell two trunks apart), so overlapping networks are refused.

Operations raise FieldError naming the form field, flush and never commit.
"""
from __future__ import annotations

import ipaddress
import re
from datetime import datetime

from sqlalchemy import ForeignKey, String, UniqueConstraint, delete, func, or_, select
from sqlalchemy.orm import Mapped, mapped_column

from app.conflicts import FieldError
from app.extensions import db
from provisioning import realtime
from tenants.mixins import AccountOwned
from tenants.models import utcnow
from tenants.scope import unscoped

MAX_HOSTS = 16
MAX_LIMIT = 10_000
ENDPOINT = re.compile(r"^trunk-(\d+)$")


class CustomerTrunk(AccountOwned, db.Model):
    __tablename__ = "customer_trunks"
    __table_args__ = (UniqueConstraint("account_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(80))
    hosts: Mapped[str] = mapped_column(String(1024))   # normalised addresses/networks, space-separated
    call_limit: Mapped[int] = mapped_column(default=0)  # simultaneous calls; 0: only the account's own
    cps_limit: Mapped[int] = mapped_column(default=0)   # call attempts per second; 0: idem
    enabled: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    @property
    def endpoint(self) -> str:
        return f"trunk-{self.id}"

    @property
    def host_list(self) -> list[str]:
        return self.hosts.split()


def trunk_id_of(endpoint: str) -> int | None:
    m = ENDPOINT.match(endpoint or "")
    return int(m.group(1)) if m else None


# ---- validation ---------------------------------------------------------------------------
def clean_hosts(value) -> list[str]:
    """IP addresses or networks (CIDR), IPv4 or IPv6, separated by spaces, commas or lines."""
    parts = [p for p in re.split(r"[\s,;]+", (value or "").strip()) if p]
    if not parts:
        raise FieldError("hosts", "Enter the IP address (or network, such as 203.0.113.0/28) the trunk sends calls from.")
    if len(parts) > MAX_HOSTS:
        raise FieldError("hosts", f"Up to {MAX_HOSTS} addresses or networks per trunk.")
    nets = []
    for p in parts:
        try:
            net = ipaddress.ip_network(p, strict=True)
        except ValueError:
            try:
                ipaddress.ip_network(p, strict=False)
            except ValueError:
                raise FieldError("hosts", f"“{p}” is not an IP address or network (such as 203.0.113.10 or "
                                          "203.0.113.0/28); host names cannot identify a trunk.") from None
            raise FieldError("hosts", f"“{p}” has host bits set: write the network address, such as "
                                      f"{ipaddress.ip_network(p, strict=False)}.") from None
        if net.prefixlen < (16 if net.version == 4 else 32):
            raise FieldError("hosts", f"{net} is too wide: a trunk is identified by a few addresses "
                                      f"(at most /{16 if net.version == 4 else 32}).")
        if net.is_unspecified or net.is_multicast or net.is_loopback:
            raise FieldError("hosts", f"{net} cannot be a customer's address.")
        for other in nets:
            if net.version == other.version and net.overlaps(other):
                raise FieldError("hosts", f"{net} overlaps {other}: list each address once.")
        nets.append(net)
    return [str(n) if n.prefixlen != n.max_prefixlen else str(n.network_address) for n in nets]


def clean_limit(value, field: str, what: str) -> int:
    text = "0" if value is None or str(value).strip() == "" else str(value).strip()
    if not (text.isascii() and text.isdigit()) or int(text) > MAX_LIMIT:
        raise FieldError(field, f"Enter {what} from 0 (no limit of its own) to {MAX_LIMIT}, digits only.")
    return int(text)


def _claimed_elsewhere(hosts: list[str], trunk_id: int | None) -> None:
    """An address may belong to one trunk of the whole platform (read across every reseller;
    the message names no one)."""
    wanted = [ipaddress.ip_network(h) for h in hosts]
    q = select(CustomerTrunk.id, CustomerTrunk.hosts)
    if trunk_id is not None:
        q = q.where(CustomerTrunk.id != trunk_id)
    with unscoped():
        rows = db.session.execute(q.execution_options(all_tenants=True)).all()
    for _tid, text in rows:
        for h in text.split():
            other = ipaddress.ip_network(h)
            for net in wanted:
                if net.version == other.version and net.overlaps(other):
                    raise FieldError("hosts", f"{net} is already another trunk's address: an address can "
                                              "identify one trunk only.")


def _values(account, *, name, hosts, call_limit, cps_limit, enabled, trunk_id=None) -> dict:
    name = (name or "").strip()
    if not name:
        raise FieldError("name", "Enter a name for the trunk, such as “Office PBX”.")
    if len(name) > 80:
        raise FieldError("name", "Keep the name to 80 characters.")
    q = select(CustomerTrunk.id).where(CustomerTrunk.account_id == account.id,
                                       func.lower(CustomerTrunk.name) == name.lower())
    if trunk_id is not None:
        q = q.where(CustomerTrunk.id != trunk_id)
    if db.session.execute(q).first() is not None:
        raise FieldError("name", "This account already has a trunk with this name.")
    clean = clean_hosts(hosts)
    values = dict(name=name, hosts=" ".join(clean),
                  call_limit=clean_limit(call_limit, "call_limit", "a call limit"),
                  cps_limit=clean_limit(cps_limit, "cps_limit", "a CPS limit"), enabled=bool(enabled))
    _claimed_elsewhere(clean, trunk_id)
    return values


# ---- operations ---------------------------------------------------------------------------
def add_trunk(account, **fields) -> CustomerTrunk:
    if account.status == "closed":
        raise FieldError(None, "The account is closed: it cannot get a trunk.")
    trunk = CustomerTrunk(tenant_id=account.tenant_id, account_id=account.id, **_values(account, **fields))
    db.session.add(trunk)
    db.session.flush()
    sync(trunk, account)
    return trunk


def update_trunk(trunk: CustomerTrunk, account, **fields) -> bool:
    values = _values(account, trunk_id=trunk.id, **fields)
    changed = {k: v for k, v in values.items() if getattr(trunk, k) != v}
    for k, v in changed.items():
        setattr(trunk, k, v)
    db.session.flush()
    sync(trunk, account)
    return bool(changed)


def set_enabled(trunk: CustomerTrunk, account, enabled: bool) -> bool:
    if trunk.enabled == enabled:
        return False
    trunk.enabled = enabled
    db.session.flush()
    sync(trunk, account)
    return True


def delete_trunk(trunk: CustomerTrunk) -> None:
    realtime.remove_trunk(trunk)
    db.session.delete(trunk)
    db.session.flush()


def sync(trunk: CustomerTrunk, account) -> None:
    """Realtime rows follow the trunk: written while it and its account are usable, else removed."""
    if trunk.enabled and account.status != "closed":
        realtime.write_trunk(trunk, account)
    else:
        realtime.remove_trunk(trunk)


def trunks_of(account_id: int) -> list[CustomerTrunk]:
    return list(db.session.execute(select(CustomerTrunk).where(CustomerTrunk.account_id == account_id)
                                   .order_by(CustomerTrunk.name)).scalars())


def search_filter(query: str, name_columns):
    """Rows whose account/trunk name (any of `name_columns`) or address contains `query`."""
    like = f"%{query.strip().lower()}%"
    return or_(*[func.lower(c).like(like) for c in name_columns], func.lower(CustomerTrunk.hosts).like(like))


__all__ = ["CustomerTrunk", "add_trunk", "update_trunk", "set_enabled", "delete_trunk", "trunks_of",
           "trunk_id_of", "clean_hosts"]
