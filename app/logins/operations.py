"""Logins: password check with throttling, and creating logins."""
from datetime import timedelta

from flask import current_app
from sqlalchemy import func, select

from app import audit
from app.extensions import db
from app.logins.models import PORTAL_OF_ROLE, ROLES, User
from tenants.models import Tenant, utcnow


class LoginRefused(Exception):
    """The message is safe to show: it never tells whether the email exists."""


def authenticate(email: str, password: str, portal: str) -> User:
    """Check a login for a portal; count failures and lock after too many. Flushes only."""
    email = (email or "").strip().lower()
    user = db.session.execute(
        select(User).where(User.email == email).execution_options(all_tenants=True)
    ).scalar_one_or_none()
    now = utcnow()
    if user is not None and user.locked_until and user.locked_until > now:
        wait = int((user.locked_until - now).total_seconds()) + 1
        raise LoginRefused(f"Too many failed attempts. Try again in {wait} seconds.")
    if user is None or not user.check_password(password or ""):
        if user is not None:
            _count_failure(user, now)
        raise LoginRefused("Email or password is not correct.")
    if PORTAL_OF_ROLE[user.role] != portal:
        raise LoginRefused("Email or password is not correct.")
    if not user.active or not tenant_chain_active(user.tenant_id):
        raise LoginRefused("This login is suspended. Contact your provider.")
    user.failed_logins = 0
    user.locked_until = None
    user.last_login_at = now
    return user


def _count_failure(user: User, now) -> None:
    cfg = current_app.config
    user.failed_logins += 1
    over = user.failed_logins - cfg["LOGIN_MAX_FAILURES"]
    if over >= 0:
        # Each further failure doubles the lock: 1 min, 2, 4... capped at a day.
        seconds = min(cfg["LOGIN_LOCK_SECONDS"] * (2 ** over), 86400)
        user.locked_until = now + timedelta(seconds=seconds)


def tenant_chain_active(tenant_id: int) -> bool:
    """A suspended reseller suspends its sub-resellers too."""
    path = db.session.execute(
        select(Tenant.path).where(Tenant.id == tenant_id).execution_options(all_tenants=True)
    ).scalar_one()
    ids = [int(p) for p in path.strip("/").split("/") if p]
    suspended = db.session.execute(
        select(func.count()).select_from(Tenant)
        .where(Tenant.id.in_(ids), Tenant.status != "active")
        .execution_options(all_tenants=True)
    ).scalar_one()
    return suspended == 0


class LoginError(ValueError):
    def __init__(self, field, message):
        super().__init__(message)
        self.field = field


def email_taken(email: str) -> bool:
    return db.session.execute(
        select(User.id).where(User.email == email.strip().lower()).execution_options(all_tenants=True)
    ).first() is not None


def create_login(*, tenant_id: int, email: str, name: str, role: str, password: str,
                 account_id: int | None = None) -> User:
    """Add a login (email unique across the platform). Flushes, never commits."""
    if role not in ROLES:
        raise LoginError("role", "Unknown role.")
    email = email.strip().lower()
    if email_taken(email):
        raise LoginError("email", "This email is already used by another login.")
    if len(password or "") < 8:
        raise LoginError("password", "Use at least 8 characters.")
    user = User(tenant_id=tenant_id, email=email, name=name.strip(), role=role, account_id=account_id)
    user.set_password(password)
    db.session.add(user)
    db.session.flush()
    audit.record("login.created", user, role=role, email=email)
    return user


def create_portal_login(*, account_id: int, tenant_id: int, email: str, name: str, password: str,
                        permissions) -> User:
    """Another customer portal login on an account, holding only the ticked permissions."""
    from app.logins.permissions import clean_permissions

    user = create_login(tenant_id=tenant_id, email=email, name=name, role="account_user",
                        password=password, account_id=account_id)
    user.permissions = clean_permissions(permissions)
    audit.record("login.permissions_set", user, permissions=user.permissions)
    return user


def set_portal_permissions(user: User, permissions, *, active: bool = True) -> User:
    """Change what a customer portal login may use (never the account administrator's)."""
    from app.logins.permissions import clean_permissions

    if user.role != "account_user":
        raise LoginError("permissions", "The account administrator always holds every permission.")
    user.permissions = clean_permissions(permissions)
    user.active = active
    audit.record("login.permissions_set", user, permissions=user.permissions, active=active)
    db.session.flush()
    return user
