"""Tenancy: a tenant is a reseller (the platform operator is the root tenant).

Everything that belongs to a tenant carries `tenant_id` itself; one ORM hook (scope.py)
filters every query by the current scope and stamps inserts.
"""
from tenants.mixins import AccountOwned, TenantOwned
from tenants.models import Tenant
from tenants.scope import (
    Scope,
    TenantScopeError,
    account_scope,
    current_scope,
    get_or_404,
    scope_for_user,
    tenant_scope,
    unscoped,
    use_scope,
)

__all__ = [
    "AccountOwned", "TenantOwned", "Tenant", "Scope", "TenantScopeError", "account_scope",
    "current_scope", "get_or_404", "scope_for_user", "tenant_scope", "unscoped", "use_scope",
]
