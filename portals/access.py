"""Access checks in one place: every route of a portal is guarded by its blueprint."""
from flask import abort, request
from flask_login import current_user

from app.extensions import login_manager

PUBLIC_ENDPOINTS = {"login", "logout"}


def guard_portal(bp, roles: set[str]) -> None:
    """Anonymous → that portal's login; logged in with another role → 403."""

    @bp.before_request
    def require_role():
        if request.endpoint and request.endpoint.split(".")[-1] in PUBLIC_ENDPOINTS:
            return None
        if not current_user.is_authenticated:
            return login_manager.unauthorized()
        if current_user.role not in roles:
            abort(403, description="Your login does not open this portal.")
        return None


def owner_only():
    if current_user.role not in ("reseller_owner", "platform_admin"):
        abort(403, description="Only the reseller's owner can do this.")
