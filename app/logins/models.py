"""Logins: platform admins, reseller staff and account administrators."""
from datetime import datetime

from flask import current_app
from flask_login import UserMixin
from sqlalchemy import JSON, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column
from werkzeug.security import check_password_hash, generate_password_hash

from app.extensions import db
from tenants.mixins import TenantOwned
from tenants.models import utcnow

ROLES = ("platform_admin", "platform_subadmin", "reseller_owner", "reseller_staff", "reseller_readonly",
         "account_admin", "account_user")
# Which portal each role works in; the portal's login is where an anonymous visitor goes.
PORTAL_OF_ROLE = {
    "platform_admin": "admin",
    "platform_subadmin": "admin",
    "reseller_readonly": "reseller",
    "account_user": "customer",
    "reseller_owner": "reseller",
    "reseller_staff": "reseller",
    "account_admin": "customer",
}


class User(UserMixin, TenantOwned, db.Model):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"), index=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)  # the login, lower-cased
    name: Mapped[str] = mapped_column(String(120), default="")
    role: Mapped[str] = mapped_column(String(20))
    password_hash: Mapped[str] = mapped_column(String(256))
    active: Mapped[bool] = mapped_column(default=True)
    failed_logins: Mapped[int] = mapped_column(default=0)
    locked_until: Mapped[datetime | None] = mapped_column()
    last_login_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Customer portal logins other than the account administrator: the permission keys of
    # app/logins/permissions.py they hold. Unused for every other role.
    permissions: Mapped[list | None] = mapped_column(JSON)

    def set_password(self, password: str) -> None:
        method = current_app.config.get("PASSWORD_HASH_METHOD", "scrypt")
        self.password_hash = generate_password_hash(password, method=method)

    def check_password(self, password: str) -> bool:
        return check_password_hash(self.password_hash, password)

    @property
    def portal(self) -> str:
        return PORTAL_OF_ROLE[self.role]

    @property
    def is_active(self) -> bool:  # Flask-Login refuses inactive users
        return self.active

    def __repr__(self):
        return f"<User {self.email} {self.role}>"
