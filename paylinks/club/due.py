"""When a bill is due, and how a person reads where it stands: "due Dec 14", "due today",
"overdue by 3 days", always by the club's own calendar (its time zone).

A bill's due date is its order's own (`orders.due_on`), else its product's (`products.due_on`),
else, for an order, the day it was raised (in the club's zone) plus the club's terms
(`tenants.default_terms_days`, 14 by default). A product's default fee is due on the product's
date, and has none when the product names none. Pure: no database, no clock of its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from paylinks.store.tables import as_utc


class BadDateError(ValueError):
    """A stored date or time that is not one (a hand-edited row)."""


def as_date(value: object, what: str) -> date | None:
    """A stored date (SQLite hands dates back as text); BadDateError naming `what` if it is none."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value).strip()[:10])
    except ValueError:
        raise BadDateError(f"{what} {str(value)[:40]!r} is not a date (YYYY-MM-DD)") from None


def as_moment(value: object, what: str) -> datetime | None:
    """A stored UTC moment (SQLite hands them back as text, naive)."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return as_utc(value)
    try:
        return as_utc(datetime.fromisoformat(str(value).strip()))
    except ValueError:
        raise BadDateError(f"{what} {str(value)[:40]!r} is not a time") from None


def due_date(
    *,
    is_order: bool,
    order_due_on: date | None,
    product_due_on: date | None,
    order_created_at: datetime | None,
    terms_days: int,
    zone: ZoneInfo,
) -> date | None:
    """The bill's due date: the order's, else the product's, else (an order) raised + terms."""
    if is_order and order_due_on is not None:
        return order_due_on
    if product_due_on is not None:
        return product_due_on
    if is_order and order_created_at is not None:
        return as_utc(order_created_at).astimezone(zone).date() + timedelta(days=terms_days)
    return None


@dataclass(frozen=True)
class DueState:
    """Where a bill stands against its due date on a given day."""

    due_on: date | None
    days_overdue: int  # negative: days left; 0: due today

    @property
    def overdue(self) -> bool:
        return self.due_on is not None and self.days_overdue > 0

    @property
    def words(self) -> str:
        """ "due Dec 14", "due today", "overdue by 1 day", "overdue by 3 days"; "" without a date."""
        if self.due_on is None:
            return ""
        if self.days_overdue > 0:
            return f"overdue by {self.days_overdue} day{'s' if self.days_overdue != 1 else ''}"
        if self.days_overdue == 0:
            return "due today"
        return f"due {day_words(self.due_on, self.due_on + timedelta(days=self.days_overdue))}"


def due_state(due_on: date | None, today: date) -> DueState:
    return DueState(due_on, (today - due_on).days if due_on is not None else 0)


def day_words(day: date, today: date) -> str:
    """ "Dec 14" in this year (or within the next months), "Jan 3, 2028" otherwise."""
    if day.year == today.year or 0 <= (day - today).days < 180:
        return f"{day.strftime('%b')} {day.day}"
    return f"{day.strftime('%b')} {day.day}, {day.year}"


def club_today(now: datetime, zone: ZoneInfo) -> date:
    """The club's calendar day at `now`."""
    return as_utc(now).astimezone(zone).date()
