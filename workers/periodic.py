"""Periodic jobs started by the cron process. Thin: open a scope, call the domain, commit."""
import logging

from workers.runner import in_app_context
from tenants.scope import unscoped

log = logging.getLogger(__name__)


@in_app_context
def check_ledgers() -> int:
    """Report every account whose balance is not the sum of its ledger (there should be none)."""
    from app.ledger import balance_mismatches

    with unscoped():
        bad = balance_mismatches()
    for account_id, balance, total in bad:
        log.error("ledger mismatch: account %s balance %s != ledger %s", account_id, balance, total)
    return len(bad)
