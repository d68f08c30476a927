"""Who may use which page and action, by role and (customer portal) per-login permissions.

Pure data and checks: the portals' guard (portals/access.py) asks `refusal(...)` before every
request, so a new route follows these rules without code of its own.
"""
ADMIN_ROLES = ("platform_admin", "platform_subadmin")
RESELLER_ROLES = ("reseller_owner", "reseller_staff", "reseller_readonly")
CUSTOMER_ROLES = ("account_admin", "account_user")

# Admin portal pages a sub-admin may not use: who runs the platform, and its settings.
ADMIN_ONLY_ENDPOINTS = {"admins", "settings"}

# Customer portal: permission -> (label, endpoints it opens). The account administrator holds
# them all; every other portal login holds the ones ticked for it (seed 002, "Permissions").
PORTAL_PERMISSIONS = {
    "transactions": ("Transactions and balance", {"transactions", "transactions_csv"}),
    "reports": ("Call reports", {"per_minute", "per_minute_csv"}),
    "users": ("Users and service plan", {"users", "users_preview", "users_apply", "users_cancel", "plan"}),
    "numbers": ("Numbers", {"numbers"}),
    "payments": ("Top-ups and payment history", {"topup", "payments", "payment", "payment_return", "invoice_pay"}),
    "invoices": ("Bills: invoices, statements and receipts", {"invoices", "invoice", "invoice_pdf", "statement",
                                                              "statement_pdf", "receipt", "receipt_pdf"}),
}
# Open to every customer login: its own start page and password.
PORTAL_ALWAYS = {"dashboard", "account_tab", "password", "impersonation_end"}
# Only the account administrator: managing the account's other portal logins.
PORTAL_ADMIN_ONLY = {"logins", "login_permissions"}

SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


def permission_of(endpoint: str) -> str | None:
    for key, (_label, endpoints) in PORTAL_PERMISSIONS.items():
        if endpoint in endpoints:
            return key
    return None


def clean_permissions(keys) -> list[str]:
    """Known permission keys, in the table's order (unknown ones are dropped)."""
    wanted = set(keys or ())
    return [k for k in PORTAL_PERMISSIONS if k in wanted]


def refusal(role: str, permissions, portal: str, endpoint: str, method: str) -> str | None:
    """Why this login may not use this endpoint, or None when it may."""
    if portal == "admin":
        if role == "platform_subadmin" and endpoint in ADMIN_ONLY_ENDPOINTS:
            return "Only a platform admin can do this."
        return None
    if portal == "reseller":
        if role == "reseller_readonly" and method not in SAFE_METHODS:
            return "Your login is read-only."
        return None
    if portal == "customer":
        if role == "account_admin" or endpoint in PORTAL_ALWAYS:
            return None
        if endpoint in PORTAL_ADMIN_ONLY:
            return "Only the account administrator can do this."
        key = permission_of(endpoint)
        if key is None or key not in (permissions or ()):
            return "Your login has no permission for this page."
        return None
    return None
