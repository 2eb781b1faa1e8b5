"""The club's clock: every time a coach, treasurer or parent reads is in the club's own zone.

A tenant names its zone (`tenants.timezone`, an IANA name such as America/Chicago); one that names
none uses the settings' `club_timezone`. Times are stored in UTC; they become local only here,
at the edge, as words ("Dec 3, 2026, 12:14 PM EST").
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from paylinks.store.tables import as_utc


def known_zone(name: str) -> str:
    """`name` if it is an IANA time zone this machine knows, else ValueError naming it."""
    cleaned = name.strip()
    try:
        ZoneInfo(cleaned)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"{name!r} is not a time zone name (they look like America/Chicago or Europe/London)"
        ) from None
    return cleaned


def club_zone(tenant_zone: str | None, default_zone: str) -> ZoneInfo:
    """The zone a club's times are shown in: its own, else the default; a name this machine does
    not know (a hand-edited row) falls back to the default rather than failing a page."""
    for name in (tenant_zone, default_zone):
        if name:
            try:
                return ZoneInfo(name)
            except (ZoneInfoNotFoundError, ValueError):
                continue
    return ZoneInfo("UTC")


def local_time(moment: datetime, zone: ZoneInfo) -> datetime:
    return as_utc(moment).astimezone(zone)


def when_words(moment: datetime | None, zone: ZoneInfo, *, never: str = "never") -> str:
    """A moment as a person reads it in the club: "Dec 3, 2026, 12:14 PM EST"."""
    if moment is None:
        return never
    local = local_time(moment, zone)
    hour = local.strftime("%I").lstrip("0") or "12"
    return (
        f"{local.strftime('%b')} {local.day}, {local.year}, {hour}:{local.strftime('%M %p')} {local.tzname()}"
    )


def now_utc() -> datetime:
    return datetime.now(UTC)
