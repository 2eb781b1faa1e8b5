"""Which parents get a reminder now, and which cadence step each one covers: one pure decision.

A club's cadence is a list of days relative to each bill's due date (default -7, 0, +3, +7, +14,
+30, +45, +60). A bill due Dec 14 has a step on each of Dec 7, 14, 17, 21, ...; a parent's steps
are those of every bill they owe. A run at `now` (in the club's time zone, within its sending
hours) sends a parent one **digest** when one of their steps fell today or yesterday and is
newer than the newest step already sent to them: a step missed while no run could send (outside
hours, a crash) goes out at the next run in hours, that day or the next; older missed steps are
folded into that digest (listed as covered), never sent late one by one. A step is claimed by its
date, so everything up to the newest step sent counts as done.

Held back, with the reason: outside the sending hours, opted out of reminders, no email address,
and emailed an outstanding-balance or reminder email within the hold (one a day at most).
Everything here is a value: no database, no clock, no mail.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from paylinks.club.due import club_today
from paylinks.store.tables import as_utc
from paylinks.vocabulary import StrLabelEnum

DEFAULT_DAYS: tuple[int, ...] = (-7, 0, 3, 7, 14, 30, 45, 60)
DEFAULT_HOURS: tuple[int, int] = (8, 20)
EARLIEST_DAY, LATEST_DAY = -90, 180
MOST_STEPS = 12
# A step is sent on its day or, when no run could send then, the day after; never later.
LATE_BY_AT_MOST = timedelta(days=1)
# At most one balance email (blast or reminder) a parent a day, whatever the blast's own hold.
SHORTEST_HOLD = timedelta(hours=24)


class CadenceError(ValueError):
    """A cadence setting that does not parse; names the field and what is wrong."""

    def __init__(self, field: str, value: str, why: str) -> None:
        super().__init__(f"{field} {value!r}: {why}")
        self.field = field


def parse_days(text: str | None) -> tuple[int, ...]:
    """ "-7,0,3" -> (-7, 0, 3), sorted, each once; None or empty: the default cadence.
    CadenceError for anything else (not whole numbers, outside -90..+180, more than 12)."""
    if text is None or not text.strip():
        return DEFAULT_DAYS
    days: set[int] = set()
    for part in text.replace("\u2212", "-").split(","):
        word = part.strip()
        try:
            day = int(word)
        except ValueError:
            raise CadenceError(
                "reminder_days", text, f"{word!r} is not a whole number of days (e.g. -7,0,3,7)"
            ) from None
        if not EARLIEST_DAY <= day <= LATEST_DAY:
            raise CadenceError(
                "reminder_days", text, f"{day} is outside {EARLIEST_DAY}..+{LATEST_DAY} days of the due date"
            )
        days.add(day)
    if len(days) > MOST_STEPS:
        raise CadenceError("reminder_days", text, f"{len(days)} days; at most {MOST_STEPS}")
    return tuple(sorted(days))


def parse_hours(text: str | None) -> tuple[int, int]:
    """ "8-20" -> (8, 20): reminders go out from 08:00 until 20:00 local; None: the default."""
    if text is None or not text.strip():
        return DEFAULT_HOURS
    start, dash, end = text.strip().partition("-")
    try:
        if not dash:
            raise ValueError
        first, last = int(start), int(end)
    except ValueError:
        raise CadenceError(
            "reminder_hours", text, "not two hours of the day like 8-20 (from 08:00 until 20:00)"
        ) from None
    if not 0 <= first < last <= 24:
        raise CadenceError("reminder_hours", text, "the first hour must come before the second, within 0-24")
    return first, last


def days_words(days: Iterable[int]) -> str:
    """(-7, 0, 3) -> "-7,0,+3": as the command and the admin page show a cadence."""
    return ",".join(f"+{day}" if day > 0 else str(day) for day in days)


@dataclass(frozen=True)
class Cadence:
    """A club's reminder settings, parsed."""

    enabled: bool
    days: tuple[int, ...]
    hours: tuple[int, int]  # [start, end) local hours
    zone: ZoneInfo

    def in_hours(self, now: datetime) -> bool:
        local = as_utc(now).astimezone(self.zone)
        return self.hours[0] <= local.hour < self.hours[1]


@dataclass(frozen=True)
class DueBill:
    """One bill a parent owes now, with its due date (None: no date, so no steps)."""

    payment_link_id: int
    parent_id: int
    due_on: date | None


@dataclass(frozen=True)
class ParentFacts:
    """What the decision needs of a parent besides their bills."""

    has_address: bool = True
    opted_out: bool = False
    last_step: date | None = None  # the newest step date already sent to them
    last_emailed: datetime | None = None  # their latest balance or reminder email (UTC)


@dataclass(frozen=True, order=True)
class Step:
    """One cadence step of one bill: `offset` days from its due date, falling on `on`."""

    on: date
    due_on: date
    offset: int
    payment_link_id: int

    @property
    def words(self) -> str:
        """ "7 days before due", "on the due date", "3 days overdue"."""
        if self.offset == 0:
            return "on the due date"
        days = f"{abs(self.offset)} day{'s' if abs(self.offset) != 1 else ''}"
        return f"{days} before due" if self.offset < 0 else f"{days} overdue"


class Hold(StrLabelEnum):
    """Why a parent with a step due gets no reminder from this run."""

    paid_since = "paid_since", "paid since (Stripe's news before the send)"
    opted_out = "opted_out", "opted out of reminders"
    emailed_today = "emailed_today", "emailed a balance or reminder within the last day"
    outside_hours = "outside_hours", "outside the club's sending hours"
    no_address = "no_address", "no email address on file"


@dataclass(frozen=True)
class Due:
    """A parent with a step due now: the step the digest is claimed by and every step it covers."""

    parent_id: int
    step: Step  # the newest step due: the digest's claim
    covers: tuple[Step, ...]  # every unsent step up to now, oldest first (older ones folded in)


@dataclass(frozen=True)
class HeldBack:
    due: Due
    reason: Hold
    last_emailed: datetime | None = None


@dataclass(frozen=True)
class ReminderPlan:
    today: date  # the club's calendar day at the run
    digests: tuple[Due, ...]
    held_back: tuple[HeldBack, ...]

    @property
    def due_parents(self) -> set[int]:
        return {d.parent_id for d in self.digests} | {h.due.parent_id for h in self.held_back}


def steps_of(bill: DueBill, days: Iterable[int]) -> list[Step]:
    if bill.due_on is None:
        return []
    return [Step(bill.due_on + timedelta(days=d), bill.due_on, d, bill.payment_link_id) for d in days]


def due_steps(
    bills: Iterable[DueBill], days: Iterable[int], today: date, last_step: date | None
) -> tuple[Step, ...]:
    """The steps a parent's digest due today covers, oldest first (the last is its claim); empty
    when none is due: no unsent step fell today or yesterday."""
    days = tuple(days)
    unsent = sorted(
        step
        for bill in bills
        for step in steps_of(bill, days)
        if step.on <= today and (last_step is None or step.on > last_step)
    )
    if not unsent or unsent[-1].on < today - LATE_BY_AT_MOST:
        return ()
    return tuple(unsent)


def plan_reminders(
    cadence: Cadence,
    bills: Iterable[DueBill],
    parents: Mapping[int, ParentFacts],
    now: datetime,
    hold: timedelta,
) -> ReminderPlan:
    """Who gets a digest now (and which step each covers), and who is held back and why.

    `bills` are every bill owed now; `parents` what is known of each parent who owes them (a
    parent missing from it has an address, has not opted out, has never been reminded);
    `hold`: a parent emailed a balance or reminder this recently is held back (never less than
    a day)."""
    today = club_today(now, cadence.zone)
    if not cadence.enabled:
        return ReminderPlan(today, (), ())
    by_parent: dict[int, list[DueBill]] = {}
    for bill in bills:
        by_parent.setdefault(bill.parent_id, []).append(bill)
    in_hours = cadence.in_hours(now)
    hold_since = as_utc(now) - max(hold, SHORTEST_HOLD)
    digests: list[Due] = []
    held: list[HeldBack] = []
    for parent_id in sorted(by_parent):
        facts = parents.get(parent_id, ParentFacts())
        covers = due_steps(by_parent[parent_id], cadence.days, today, facts.last_step)
        if not covers:
            continue
        due = Due(parent_id, covers[-1], covers)
        recent = facts.last_emailed is not None and as_utc(facts.last_emailed) > hold_since
        if not in_hours:
            held.append(HeldBack(due, Hold.outside_hours))
        elif facts.opted_out:
            held.append(HeldBack(due, Hold.opted_out))
        elif not facts.has_address:
            held.append(HeldBack(due, Hold.no_address))
        elif recent:
            held.append(HeldBack(due, Hold.emailed_today, facts.last_emailed))
        else:
            digests.append(due)
    return ReminderPlan(today, tuple(digests), tuple(held))


def paid_since(before: ReminderPlan, after: ReminderPlan) -> tuple[HeldBack, ...]:
    """Parents due before Stripe's news was applied and no longer due after it: their bills (the
    ones with a step due) were paid meanwhile."""
    still = after.due_parents
    was = {d.parent_id: d for d in before.digests} | {h.due.parent_id: h.due for h in before.held_back}
    return tuple(
        HeldBack(due, Hold.paid_since) for parent_id, due in sorted(was.items()) if parent_id not in still
    )


def step_run_key(step: Step) -> str:
    """The claim of a digest in email_log: one per parent and step date, whatever run sends it."""
    return f"reminder:{step.on.isoformat()}"


def step_of_run_key(run_key: str) -> date | None:
    """The step date a reminder's claim names (None for any other run key)."""
    prefix, _, day = run_key.partition(":")
    if prefix != "reminder":
        return None
    try:
        return date.fromisoformat(day)
    except ValueError:
        return None
