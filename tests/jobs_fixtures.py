"""Module-level job functions for the job tests (RQ imports jobs by dotted path)."""
from decimal import Decimal

from app.jobs import set_progress
from workers.runner import in_app_context
from app.ledger import post
from tenants.scope import tenant_scope


@in_app_context
def credit_account(tenant_id, account_id, key):
    with tenant_scope(tenant_id):
        for i in range(3):
            set_progress(i + 1, 3)
        post(account_id, Decimal("1.00"), "credit", key, description="job credit")
