"""Creating and changing resellers (tenants). Flush, never commit."""
import re

from sqlalchemy import select

from app import audit
from app.extensions import db
from tenants.models import Tenant, place_in_tree

SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9-]{1,58}[a-z0-9]$")


class TenantError(ValueError):
    def __init__(self, field, message):
        super().__init__(message)
        self.field = field


def slugify(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:60]


def create_tenant(*, name: str, slug: str, parent_id: int, email: str = "",
                  currency: str = "USD", base_extension: int = 1000) -> Tenant:
    slug = (slug or slugify(name)).strip().lower()
    if not SLUG_RE.match(slug):
        raise TenantError("slug", "Use 3-60 lower-case letters, digits and dashes.")
    if db.session.execute(
        select(Tenant.id).where(Tenant.slug == slug).execution_options(all_tenants=True)
    ).first():
        raise TenantError("slug", "This short name is already taken.")
    parent = db.session.execute(select(Tenant).where(Tenant.id == parent_id)).scalar_one_or_none()
    if parent is None:
        raise TenantError("parent_id", "Choose a parent you manage.")
    tenant = Tenant(name=name.strip(), slug=slug, email=email.strip().lower(),
                    currency=currency.upper(), base_extension=base_extension, path="/")
    db.session.add(tenant)
    db.session.flush()
    place_in_tree(tenant, parent)
    db.session.flush()
    # Filed under the parent: the new tenant is not in the creator's scope until next request.
    audit.record("reseller.created", tenant, tenant_id=parent.id, name=tenant.name, parent=parent.name)
    return tenant


def set_status(tenant: Tenant, status: str) -> None:
    if status not in ("active", "suspended"):
        raise TenantError("status", "Unknown status.")
    if tenant.is_root:
        raise TenantError("status", "The platform itself cannot be suspended.")
    old, tenant.status = tenant.status, status
    audit.record(f"reseller.{'suspended' if status == 'suspended' else 'activated'}", tenant,
                 old=old, new=status)


def update_tenant(tenant: Tenant, *, name: str, email: str, currency: str, base_extension: int) -> None:
    changes = {}
    for field, value in (("name", name.strip()), ("email", email.strip().lower()),
                         ("currency", currency.upper()), ("base_extension", base_extension)):
        if getattr(tenant, field) != value:
            changes[field] = [getattr(tenant, field), value]
            setattr(tenant, field, value)
    if changes:
        audit.record("reseller.updated", tenant, **changes)
