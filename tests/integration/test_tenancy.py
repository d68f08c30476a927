"""The scoping mechanism itself: reads, writes and the tree."""
import pytest
from sqlalchemy import select, update

from app.accounts.models import Account
from app.extensions import db
from app.logins.models import User
from tenants import Tenant, TenantScopeError
from tenants.scope import DENY, account_scope, scope_for_user, tenant_scope, unscoped, use_scope


def _account_ids():
    return set(db.session.execute(select(Account.id)).scalars())


def test_a_reseller_sees_its_own_and_its_sub_resellers_accounts_only(world):
    with tenant_scope(world.a.id):
        assert _account_ids() == {world.account_a.id, world.account_a2.id, world.account_a_sub.id}


def test_a_sub_reseller_never_sees_its_parents_accounts(world):
    with tenant_scope(world.a_sub.id):
        assert _account_ids() == {world.account_a_sub.id}
        assert set(db.session.execute(select(Tenant.id)).scalars()) == {world.a_sub.id}


def test_a_customer_scope_sees_only_its_own_account_and_its_rows(world):
    with account_scope(world.a.id, world.account_a.id):
        assert _account_ids() == {world.account_a.id}


def test_the_default_scope_denies_everything(world):
    with use_scope(DENY):
        assert _account_ids() == set()
        assert db.session.execute(select(User)).first() is None


def test_the_platform_scope_sees_everything(world):
    with unscoped():
        assert len(_account_ids()) == 4


def test_scope_for_user_follows_the_role(world):
    assert scope_for_user(world.admin, db.session).everything
    reseller = scope_for_user(world.owner_a, db.session)
    assert set(reseller.tenant_ids) == {world.a.id, world.a_sub.id}
    customer = scope_for_user(world.customer_a, db.session)
    assert customer.account_id == world.account_a.id


def test_bulk_updates_are_scoped_too(world):
    with tenant_scope(world.b.id):
        db.session.execute(update(Account).values(notes="touched").execution_options(synchronize_session=False))
        db.session.commit()
    with unscoped():
        touched = set(db.session.execute(select(Account.id).where(Account.notes == "touched")).scalars())
    assert touched == {world.account_b.id}


def test_new_rows_are_stamped_with_the_scope_tenant(world):
    from app.audit import AuditEntry

    with tenant_scope(world.b.id):
        entry = AuditEntry(action="x", object_type="")
        db.session.add(entry)
        db.session.commit()
        assert entry.tenant_id == world.b.id


def test_writing_a_row_for_a_tenant_outside_the_scope_is_refused(world):
    from app.audit import AuditEntry

    with tenant_scope(world.a.id):
        db.session.add(AuditEntry(action="x", object_type="", tenant_id=world.b.id))
        with pytest.raises(TenantScopeError):
            db.session.flush()
        db.session.rollback()


def test_the_materialised_path_describes_the_tree(world):
    assert world.a_sub.path == f"{world.a.path}{world.a_sub.id}/"
    assert world.a.is_ancestor_of(world.a_sub)
    assert not world.b.is_ancestor_of(world.a_sub)
