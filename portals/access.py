"""Access checks in one place: every route of a portal is guarded by its blueprint."""
from flask import abort, request
from flask_login import current_user

from app.extensions import login_manager

PUBLIC_ENDPOINTS = {"login", "logout"}


def guard_portal(bp, roles: set[str], portal: str | None = None) -> None:
    """Anonymous → that portal's login; logged in with another role → 403; a role or a
    customer login's permissions that do not cover this page or action → 403."""
    from app.logins.permissions import refusal

    @bp.before_request
    def require_role():
        if request.endpoint and request.endpoint.split(".")[-1] in PUBLIC_ENDPOINTS:
            return None
        if not current_user.is_authenticated:
            return login_manager.unauthorized()
        if current_user.role not in roles:
            abort(403, description="Your login does not open this portal.")
        if portal and request.endpoint:
            why = refusal(current_user.role, current_user.permissions, portal,
                          request.endpoint.split(".")[-1], request.method)
            if why:
                abort(403, description=why)
        return None


def owner_only():
    if current_user.role not in ("reseller_owner", "platform_admin"):
        abort(403, description="Only the reseller's owner can do this.")


def may(endpoint: str, method: str = "GET") -> bool:
    """For templates: whether the current login may open `endpoint` (hides links it may not)."""
    from app.logins.permissions import refusal

    if not current_user.is_authenticated or "." not in endpoint:
        return False
    portal, name = endpoint.split(".", 1)
    return refusal(current_user.role, current_user.permissions, portal, name, method) is None
