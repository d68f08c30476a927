"""After-commit notices to the AMI watchers: "this account changed, look again now".

A status change or balance adjustment takes effect at once: the watcher admits new calls by
the account's status, and on a notice it recomputes the deadlines of the account's live
calls. The notice is published after the commit (a rolled-back change announces nothing);
losing one only delays the effect until the account's next call event.
"""
import logging

from sqlalchemy import event
from sqlalchemy.orm import Session

from app.extensions import db

log = logging.getLogger(__name__)
# The channel the watchers listen on (workers/ami/balance.py BALANCE_CHANNEL; domain code
# does not import workers, so the name is repeated here).
CHANNEL = "ringledger:balance"
# Published instead of an account number: every watcher recounts live calls from its switches
# (workers/ami/balance.py RECOUNT).
RECOUNT = "recount"


def announce(account_number: str) -> None:
    db.session.info.setdefault("announce_accounts", set()).add(account_number)


def request_recount() -> None:
    """After the commit, ask the watchers to count live calls again from the switches (the
    in-use reset): the counts then come from Asterisk's own channel list."""
    announce(RECOUNT)


@event.listens_for(Session, "after_commit")
def _publish(session):
    numbers = session.info.pop("announce_accounts", None)
    if not numbers:
        return
    try:
        from app.jobs import redis_connection

        conn = redis_connection()
        if conn is None:
            return
        # One round trip for all of them: a billing run or a rating batch moves thousands.
        pipe = conn.pipeline(transaction=False)
        for n in sorted(numbers):
            pipe.publish(CHANNEL, n)
        pipe.execute()
    except Exception as e:  # never fail a committed request over a notice
        log.warning("account change notices not published: %s", e)


@event.listens_for(Session, "after_rollback")
def _drop(session):
    session.info.pop("announce_accounts", None)
