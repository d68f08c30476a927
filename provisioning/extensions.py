"""Users = extensions ("network numbers"): numbering, SIP credentials, realtime rows.

Each extension takes the next free number at or above the tenant's base extension. Numbers
are unique within a tenant (constraint), so allocation locks the tenant row for the rest of
the transaction: two onboardings of one reseller take numbers one after the other instead
of racing for the same ones. Flush, never commit.
"""
import secrets

from sqlalchemy import select

from app.extensions import db
from provisioning import realtime
from provisioning.models import Extension
from tenants.models import Tenant


def new_sip_secret() -> str:
    """A strong SIP password: 24 characters from 18 random bytes."""
    return secrets.token_urlsafe(18)


def sip_username(tenant_id: int, number: str) -> str:
    # Unique platform-wide because the extension number is unique within the tenant.
    return f"t{tenant_id}_{number}"


def lock_tenant(tenant_id: int) -> Tenant:
    """Serialise changes that number extensions within one tenant, until the commit.

    FOR NO KEY UPDATE: it does not conflict with the KEY SHARE locks that inserting rows
    referencing the tenant take (foreign keys), so it only makes other numbering wait.
    Take it before inserting anything in the transaction (see onboarding), or two
    transactions each holding a KEY SHARE would deadlock waiting for each other.
    """
    return db.session.execute(
        select(Tenant).where(Tenant.id == tenant_id).with_for_update(key_share=True)
        .execution_options(all_tenants=True, populate_existing=True)
    ).scalar_one()


def free_numbers(tenant_id: int, count: int) -> list[str]:
    """The `count` lowest free extension numbers of a tenant (caller holds the tenant lock).

    Read across the whole tenant (not just the caller's scope: an account administrator's
    scope hides sibling accounts, whose numbers are taken all the same).
    """
    tenant = lock_tenant(tenant_id)
    used = {
        int(n) for n in db.session.execute(
            select(Extension.number).where(Extension.tenant_id == tenant_id)
            .execution_options(all_tenants=True)
        ).scalars() if n.isdigit()
    }
    found, candidate = [], tenant.base_extension
    while len(found) < count:
        if candidate not in used:
            found.append(str(candidate))
        candidate += 1
    return found


def add_extensions(account, count: int) -> list[Extension]:
    """Give the account `count` more extensions, each with SIP credentials and realtime rows."""
    if count <= 0:
        return []
    created = []
    for number in free_numbers(account.tenant_id, count):
        ext = Extension(tenant_id=account.tenant_id, account_id=account.id, number=number,
                        sip_username=sip_username(account.tenant_id, number),
                        sip_secret=new_sip_secret(),
                        caller_id=realtime.caller_id(account.display_name, number))
        db.session.add(ext)
        created.append(ext)
    db.session.flush()
    for ext in created:
        realtime.write_extension(ext, account)
    return created


def active_extensions(account_id: int) -> list[Extension]:
    return list(db.session.execute(
        select(Extension).where(Extension.account_id == account_id, Extension.active.is_(True))
        .order_by(Extension.id)
    ).scalars())


def newest_extensions(account, count: int) -> list[Extension]:
    """The `count` newest active extensions: the ones a lower user count removes."""
    exts = active_extensions(account.id)
    return exts[len(exts) - count:] if count > 0 else []


def remove_extensions(account, count: int) -> list[Extension]:
    """Remove the `count` newest extensions. The caller detaches their DIDs first
    (app.numbers): the numbers stay on the account, unattached."""
    removed = newest_extensions(account, count)
    for ext in removed:
        realtime.remove_extension(ext)
        db.session.delete(ext)
    db.session.flush()
    return removed


def deactivate_all(account) -> None:
    """Closing an account: Asterisk forgets its endpoints; the rows are kept for the records."""
    for ext in active_extensions(account.id):
        realtime.remove_extension(ext)
        ext.active = False
    from provisioning import trunks       # its IP trunks too (the rows come back on reactivation)

    for trunk in trunks.trunks_of(account.id):
        realtime.remove_trunk(trunk)


def reactivate_all(account) -> None:
    for ext in db.session.execute(select(Extension).where(Extension.account_id == account.id)).scalars():
        ext.active = True
        realtime.write_extension(ext, account)
    from provisioning import trunks

    for trunk in trunks.trunks_of(account.id):
        if trunk.enabled:
            realtime.write_trunk(trunk, account)
