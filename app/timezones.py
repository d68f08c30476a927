"""An account's time zone: its name to a ZoneInfo (UTC when unknown), and the conversions the
reports and pages need. Stored times are naive UTC (as every DateTime column here)."""
from datetime import date, datetime, time, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

UTC = ZoneInfo("UTC")


def zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return UTC


def to_local(moment: datetime | None, tz_name: str | None) -> datetime | None:
    """A naive UTC moment as the wall-clock time of the zone (naive, for display)."""
    if moment is None:
        return None
    aware = moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
    return aware.astimezone(zone(tz_name)).replace(tzinfo=None)


def local_midnight_utc(day: date, tz_name: str | None) -> datetime:
    """Naive UTC of the moment `day` starts in the zone (DST-aware)."""
    return datetime.combine(day, time.min, tzinfo=zone(tz_name)).astimezone(timezone.utc).replace(tzinfo=None)


def today_in(tz_name: str | None) -> date:
    return datetime.now(zone(tz_name)).date()
