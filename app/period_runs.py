"""What a charge run (app/billing/cycle.py) and a document run (app/invoicing/models.py) share:
one tenant's run for one period key, its timestamps and how many passes it took. Each model
adds its own outcome counts.

`sort_order=-1`: declarative puts a mixin's columns after the model's own; these stay first,
so the tables keep the column order their migrations (i16, i17) created."""
from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from tenants.models import utcnow


class PeriodRun:
    id: Mapped[int] = mapped_column(primary_key=True, sort_order=-1)
    period: Mapped[str] = mapped_column(String(10), sort_order=-1)
    started_at: Mapped[datetime] = mapped_column(default=utcnow, sort_order=-1)
    # Moved on by every committed batch: a run that stops beating is taken as dead (workers/period_runs.py).
    heartbeat_at: Mapped[datetime] = mapped_column(default=utcnow, sort_order=-1)
    finished_at: Mapped[datetime | None] = mapped_column(sort_order=-1)
    passes: Mapped[int] = mapped_column(default=0, sort_order=-1)
