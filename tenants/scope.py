"""The one tenancy mechanism: a scope per request or job, applied to every ORM statement.

* `do_orm_execute` adds `with_loader_criteria` to every ORM SELECT/UPDATE/DELETE, so rows
  of tenants outside the scope simply do not exist (another tenant's object answers 404).
* `before_flush` stamps `tenant_id` (and `account_id` in a customer scope) on new rows and
  refuses rows stamped for a tenant outside the scope.
* The default scope denies everything: forgetting to open a scope fails closed.

Known holes, kept shut by convention and tests: `session.get()` returns an already-loaded
row without a query (use `get_or_404` / filtered selects), and `text()` SQL bypasses the
hook (no raw SQL in portals).
"""
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from flask import abort
from sqlalchemy import event, select
from sqlalchemy.orm import Session, with_loader_criteria

from tenants.mixins import AccountOwned, AccountRecord, TenantOwned
from tenants.models import Tenant


class TenantScopeError(PermissionError):
    """A write aimed outside the current scope: a programming error, never user input."""


@dataclass(frozen=True)
class Scope:
    # None: every tenant (platform admin, platform-wide jobs). Otherwise the visible ids.
    tenant_ids: tuple[int, ...] | None
    # The tenant new rows are stamped with when they name none.
    home_tenant_id: int | None = None
    # Set for an account administrator (or an impersonating reseller): one account only.
    account_id: int | None = None

    @property
    def everything(self) -> bool:
        return self.tenant_ids is None

    def sees_tenant(self, tenant_id: int) -> bool:
        return self.tenant_ids is None or tenant_id in self.tenant_ids


DENY = Scope(tenant_ids=())
EVERYTHING = Scope(tenant_ids=None)

_current: ContextVar[Scope] = ContextVar("tenant_scope", default=DENY)


def current_scope() -> Scope:
    return _current.get()


@contextmanager
def use_scope(scope: Scope):
    token = _current.set(scope)
    try:
        yield scope
    finally:
        _current.reset(token)


def unscoped():
    """Every tenant: CLI commands, platform-wide cron fan-out, login lookups."""
    return use_scope(EVERYTHING)


def subtree_ids(session: Session, tenant_id: int) -> tuple[int, ...]:
    path = session.execute(
        select(Tenant.path).where(Tenant.id == tenant_id).execution_options(all_tenants=True)
    ).scalar_one()
    ids = session.execute(
        select(Tenant.id).where(Tenant.path.like(path + "%")).execution_options(all_tenants=True)
    ).scalars()
    return tuple(sorted(ids))


def tenant_scope(tenant_id: int, *, descendants: bool = True, session: Session | None = None):
    """Workers: act as one tenant (and, by default, its sub-resellers)."""
    from app.extensions import db

    session = session or db.session
    ids = subtree_ids(session, tenant_id) if descendants else (tenant_id,)
    return use_scope(Scope(tenant_ids=ids, home_tenant_id=tenant_id))


def account_scope(tenant_id: int, account_id: int):
    """One customer account: what an account administrator (or impersonator) sees."""
    return use_scope(Scope(tenant_ids=(tenant_id,), home_tenant_id=tenant_id, account_id=account_id))


def scope_for_user(user, session: Session) -> Scope:
    """The scope a logged-in user acts in; anonymous users see nothing."""
    if user is None or not getattr(user, "is_authenticated", False):
        return DENY
    if user.role in ("platform_admin", "platform_subadmin"):
        return Scope(tenant_ids=None, home_tenant_id=user.tenant_id)
    if user.role in ("account_admin", "account_user"):
        return Scope(tenant_ids=(user.tenant_id,), home_tenant_id=user.tenant_id,
                     account_id=user.account_id)
    return Scope(tenant_ids=subtree_ids(session, user.tenant_id), home_tenant_id=user.tenant_id)


def get_or_404(model, ident, *, description=None):
    """Load one row through the scoped query (never `session.get`, which skips the hook)."""
    from app.extensions import db

    try:
        ident = int(ident)
    except (TypeError, ValueError):
        abort(404)
    obj = db.session.execute(select(model).where(model.id == ident)).scalar_one_or_none()
    if obj is None:
        abort(404, description=description)
    return obj


def _criteria(scope: Scope):
    opts = []
    if scope.tenant_ids is not None:
        ids = tuple(scope.tenant_ids)
        opts.append(with_loader_criteria(TenantOwned, lambda cls: cls.tenant_id.in_(ids),
                                         include_aliases=True))
        opts.append(with_loader_criteria(Tenant, lambda cls: cls.id.in_(ids), include_aliases=True))
    if scope.account_id is not None:
        account_id = scope.account_id
        opts.append(with_loader_criteria(AccountOwned, lambda cls: cls.account_id == account_id,
                                         include_aliases=True))
        opts.append(with_loader_criteria(AccountRecord, lambda cls: cls.id == account_id,
                                         include_aliases=True))
    return opts


@event.listens_for(Session, "do_orm_execute")
def _scope_every_statement(state):
    if state.execution_options.get("all_tenants"):
        return
    if not (state.is_select or state.is_update or state.is_delete):
        return
    if state.is_select and (state.is_column_load or state.is_relationship_load):
        return  # the parent statement's criteria already propagate to these loads
    opts = _criteria(current_scope())
    if opts:
        state.statement = state.statement.options(*opts)


@event.listens_for(Session, "before_flush")
def _stamp_new_rows(session, flush_context, instances):
    scope = current_scope()
    for obj in session.new:
        if isinstance(obj, TenantOwned):
            if obj.tenant_id is None:
                if scope.home_tenant_id is None:
                    raise TenantScopeError(f"no tenant to stamp on new {type(obj).__name__}")
                obj.tenant_id = scope.home_tenant_id
            elif not scope.sees_tenant(obj.tenant_id):
                raise TenantScopeError(f"{type(obj).__name__} for tenant {obj.tenant_id} is outside the scope")
        if isinstance(obj, AccountOwned) and scope.account_id is not None:
            if obj.account_id is None:
                obj.account_id = scope.account_id
            elif obj.account_id != scope.account_id:
                raise TenantScopeError(f"{type(obj).__name__} for another account")
        if isinstance(obj, Tenant) and obj.parent_id is not None and not scope.sees_tenant(obj.parent_id):
            raise TenantScopeError("sub-reseller of a tenant outside the scope")


def activate(scope: Scope):
    """Set the scope for the rest of a request; pair with `deactivate(token)` at teardown."""
    return _current.set(scope)


def deactivate(token) -> None:
    _current.reset(token)
