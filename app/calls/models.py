"""Call detail records: written once per finished call by the AMI watcher, rated by a job."""
from datetime import datetime
from decimal import Decimal

from sqlalchemy import Index, Numeric, String, UniqueConstraint, false, text
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from app.money import MONEY_SCALE
from tenants.mixins import HighVolumeAccountOwned
from tenants.models import utcnow


class Call(HighVolumeAccountOwned, db.Model):
    __tablename__ = "calls"
    __table_args__ = (
        # Asterisk uniqueids are unique per switch only.
        UniqueConstraint("server", "uniqueid"),
        # An account's calls by date. Reports by reseller (margin) reach the calls through the
        # reseller's accounts and this index too: a (tenant_id, started_at) index would cost every
        # one of a million inserts a day and serve no query better (EXPLAIN: nested loop over the
        # reseller's accounts, 0.4 ms for a small reseller beside a million other calls).
        Index("ix_calls_account_started", "account_id", "started_at"),
        # The calls browser (app/calls/browser.py): a tenant's calls newest first, by keyset
        # pages on (started_at, id), one range scan per tenant of the scope merged by the query.
        # Without it a reseller's first page sorted every call of its scope; with it a page reads
        # about its own rows (bench/calls_browser.py). It costs each insert one more b-tree entry.
        Index("ix_calls_tenant_started", "tenant_id", "started_at", "id"),
        # The browser's "rating error" filter: calls rated with an error are few (the AMI watcher
        # refuses calls it cannot rate), so this partial index is small and costs the other calls
        # nothing; unrated calls have ix_calls_unrated below.
        Index("ix_calls_rating_error", "started_at", "id", postgresql_where=text("rating_error <> ''"),
              sqlite_where=text("rating_error <> ''")),
        # Only the calls still to rate: a rated call leaves this index (and costs it nothing).
        Index("ix_calls_unrated", "id", postgresql_where=text("rated_at IS NULL"),
              sqlite_where=text("rated_at IS NULL")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    server: Mapped[str] = mapped_column(String(64), default="")  # AsteriskServer name
    uniqueid: Mapped[str] = mapped_column(String(64))
    linkedid: Mapped[str] = mapped_column(String(64), default="")
    extension: Mapped[str] = mapped_column(String(40), default="")
    destination: Mapped[str] = mapped_column(String(40), default="")
    started_at: Mapped[datetime] = mapped_column()
    answered_at: Mapped[datetime | None] = mapped_column()
    ended_at: Mapped[datetime | None] = mapped_column()
    billsec: Mapped[int] = mapped_column(default=0)
    disposition: Mapped[str] = mapped_column(String(20), default="")  # ANSWERED, NO ANSWER, BUSY, FAILED
    # Rating results
    rated_at: Mapped[datetime | None] = mapped_column()
    country: Mapped[str] = mapped_column(String(2), default="")
    # The rate row that priced the call, kept as history: not a foreign key, so editing or
    # deleting rate rows never touches (or waits on) millions of calls.
    rate_id: Mapped[int | None] = mapped_column()
    cost: Mapped[Decimal | None] = mapped_column(Numeric(18, MONEY_SCALE))
    bundle_seconds: Mapped[int] = mapped_column(default=0)
    charged_seconds: Mapped[int] = mapped_column(default=0)
    buy_cost: Mapped[Decimal | None] = mapped_column(Numeric(18, MONEY_SCALE))  # reseller's own price
    # The platform's carrier that carried the call (the dialplan's CDR(carrier), a carriers.id kept
    # as history: no foreign key) and what the platform pays it, at the carrier's buy sheet.
    carrier_id: Mapped[int | None] = mapped_column()
    carrier_cost: Mapped[Decimal | None] = mapped_column(Numeric(18, MONEY_SCALE))
    rating_error: Mapped[str] = mapped_column(String(120), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The watcher's own measure, kept only when the switch's billsec (which wins) differs.
    measured_billsec: Mapped[int | None] = mapped_column()
    # Found in the switch's own CDRs (the watcher was away when it ended): billed then, once.
    recovered: Mapped[bool] = mapped_column(default=False, server_default=false())
