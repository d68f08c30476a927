"""Call figures for dashboards: attempts, answered, ASR and ACD over a time window, within the
caller's scope (answered: billsec > 0, as the calls browser counts)."""
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import case, func, select

from app.calls.models import Call
from app.extensions import db


@dataclass
class CallFigures:
    attempts: int
    answered: int
    billsec: int

    @property
    def asr(self) -> float | None:
        """Answer-seizure ratio, percent (None without attempts)."""
        return None if not self.attempts else 100.0 * self.answered / self.attempts

    @property
    def acd(self) -> float | None:
        """Average call duration of answered calls, seconds."""
        return None if not self.answered else self.billsec / self.answered


def call_figures(since: datetime, until: datetime) -> CallFigures:
    attempts, answered, billsec = db.session.execute(
        select(func.count(), func.coalesce(func.sum(case((Call.billsec > 0, 1), else_=0)), 0),
               func.coalesce(func.sum(Call.billsec), 0))
        .where(Call.started_at >= since, Call.started_at < until)).one()
    return CallFigures(int(attempts), int(answered), int(billsec))
