"""Who gets a reminder now, and which step it covers: the one pure decision, tested by example
and with Hypothesis (random cadences, bills, histories, clocks, and hour-by-hour runs)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from paylinks.messaging.cadence import (
    DEFAULT_DAYS,
    Cadence,
    CadenceError,
    DueBill,
    Hold,
    ParentFacts,
    days_words,
    paid_since,
    parse_days,
    parse_hours,
    plan_reminders,
    step_of_run_key,
    step_run_key,
)

ZONE = ZoneInfo("America/Chicago")
DAY = timedelta(days=1)
HOLD = timedelta(hours=24)
ON = Cadence(enabled=True, days=DEFAULT_DAYS, hours=(8, 20), zone=ZONE)


def at(day: date, hour: int, minute: int = 0) -> datetime:
    """A moment in the club's zone."""
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=ZONE)


DUE = date(2026, 12, 14)
BILL = DueBill(payment_link_id=1, parent_id=10, due_on=DUE)


def test_a_step_is_sent_on_its_day_within_hours():
    plan = plan_reminders(ON, [BILL], {}, at(date(2026, 12, 7), 10), HOLD)
    (digest,) = plan.digests
    assert (digest.parent_id, digest.step.on, digest.step.offset) == (10, date(2026, 12, 7), -7)
    assert digest.step.words == "7 days before due"
    assert plan.held_back == ()


def test_outside_hours_every_parent_due_is_held_back_and_the_next_morning_sends_it():
    night = plan_reminders(ON, [BILL], {}, at(date(2026, 12, 7), 21), HOLD)
    assert night.digests == () and [h.reason for h in night.held_back] == [Hold.outside_hours]
    (morning,) = plan_reminders(ON, [BILL], {}, at(date(2026, 12, 8), 8), HOLD).digests
    assert morning.step.on == date(2026, 12, 7), "a step missed yesterday goes out the day after"


def test_a_step_missed_for_two_days_is_never_sent_late_but_folds_into_the_next():
    assert plan_reminders(ON, [BILL], {}, at(date(2026, 12, 9), 10), HOLD).digests == ()
    (digest,) = plan_reminders(ON, [BILL], {}, at(date(2026, 12, 14), 10), HOLD).digests
    assert digest.step.on == DUE and [s.on for s in digest.covers] == [date(2026, 12, 7), DUE]


def test_a_step_already_sent_is_not_sent_again_and_the_next_one_is():
    sent = ParentFacts(last_step=date(2026, 12, 7), last_emailed=at(date(2026, 12, 7), 9))
    assert plan_reminders(ON, [BILL], {10: sent}, at(date(2026, 12, 7), 15), HOLD).digests == ()
    (digest,) = plan_reminders(ON, [BILL], {10: sent}, at(date(2026, 12, 14), 9), HOLD).digests
    assert digest.covers == (digest.step,) and digest.step.on == DUE


@pytest.mark.parametrize(
    ("facts", "reason"),
    [
        (ParentFacts(opted_out=True), Hold.opted_out),
        (ParentFacts(has_address=False), Hold.no_address),
        (ParentFacts(last_emailed=at(date(2026, 12, 6), 15)), Hold.emailed_today),
    ],
)
def test_held_back_and_why(facts, reason):
    plan = plan_reminders(ON, [BILL], {10: facts}, at(date(2026, 12, 7), 10), HOLD)
    assert plan.digests == () and [h.reason for h in plan.held_back] == [reason]


def test_reminders_off_decide_nothing_and_a_bill_without_a_date_has_no_step():
    off = Cadence(enabled=False, days=DEFAULT_DAYS, hours=(8, 20), zone=ZONE)
    assert plan_reminders(off, [BILL], {}, at(date(2026, 12, 7), 10), HOLD).digests == ()
    undated = DueBill(2, 10, None)
    assert plan_reminders(ON, [undated], {}, at(date(2026, 12, 7), 10), HOLD).digests == ()


def test_siblings_bills_make_one_digest_covering_each_step_due():
    other = DueBill(payment_link_id=2, parent_id=10, due_on=date(2026, 12, 11))  # its +3 is Dec 14 too
    (digest,) = plan_reminders(ON, [BILL, other], {}, at(DUE, 10), HOLD).digests
    assert {(s.payment_link_id, s.offset) for s in digest.covers if s.on == DUE} == {(1, 0), (2, 3)}


def test_paid_since_names_parents_due_before_the_news_and_not_after():
    before = plan_reminders(ON, [BILL, DueBill(5, 11, DUE)], {}, at(DUE, 10), HOLD)
    after = plan_reminders(ON, [DueBill(5, 11, DUE)], {}, at(DUE, 10), HOLD)
    assert [(h.due.parent_id, h.reason) for h in paid_since(before, after)] == [(10, Hold.paid_since)]


def test_the_claim_names_the_step_date():
    (digest,) = plan_reminders(ON, [BILL], {}, at(DUE, 10), HOLD).digests
    assert step_run_key(digest.step) == "reminder:2026-12-14"
    assert step_of_run_key("reminder:2026-12-14") == DUE
    assert step_of_run_key("riverside-hoops-2026-12-14") is None


@pytest.mark.parametrize(
    ("text", "days"),
    [(None, DEFAULT_DAYS), ("", DEFAULT_DAYS), ("3, -7,0,3", (-7, 0, 3)), ("\u22127,+180", (-7, 180))],
)
def test_cadence_days_parse(text, days):
    assert parse_days(text) == days


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("-7,soon", "'soon' is not a whole number"),
        ("-91", "-91 is outside -90..+180"),
        ("181", "181 is outside"),
        (",".join(str(d) for d in range(13)), "13 days; at most 12"),
    ],
)
def test_cadence_days_that_do_not_parse_say_why(text, why):
    with pytest.raises(CadenceError, match="reminder_days") as error:
        parse_days(text)
    assert why in str(error.value)


@pytest.mark.parametrize("text", ["20-8", "8", "a-b", "0-25", "8-8"])
def test_sending_hours_that_do_not_parse(text):
    with pytest.raises(CadenceError, match="reminder_hours"):
        parse_hours(text)


def test_sending_hours_and_days_in_words():
    assert parse_hours("8-20") == (8, 20) and parse_hours(None) == (8, 20) and parse_hours("0-24") == (0, 24)
    assert days_words((-7, 0, 3)) == "-7,0,+3"


# -- Hypothesis: any cadence, any bills, any history, any moment ----------------------------------

START = date(2026, 11, 1)
cadences = st.builds(
    Cadence,
    enabled=st.just(True),
    days=st.lists(st.integers(-90, 180), min_size=1, max_size=12, unique=True).map(
        lambda d: tuple(sorted(d))
    ),
    hours=st.tuples(st.integers(0, 23), st.integers(1, 24)).filter(lambda h: h[0] < h[1]),
    zone=st.sampled_from(
        [ZoneInfo("America/Chicago"), ZoneInfo("Europe/London"), ZoneInfo("Pacific/Auckland")]
    ),
)
days_from_start = st.integers(0, 120).map(lambda n: START + timedelta(days=n))
bills = st.lists(
    st.builds(
        DueBill,
        payment_link_id=st.integers(1, 10_000),
        parent_id=st.integers(1, 4),
        due_on=st.one_of(st.none(), days_from_start),
    ),
    max_size=8,
)
moments = st.datetimes(
    min_value=datetime(2026, 10, 1), max_value=datetime(2027, 4, 1), timezones=st.just(UTC)
)
facts = st.dictionaries(
    st.integers(1, 4),
    st.builds(
        ParentFacts,
        has_address=st.booleans(),
        opted_out=st.booleans(),
        last_step=st.one_of(st.none(), days_from_start),
        last_emailed=st.one_of(st.none(), moments),
    ),
)


@settings(max_examples=150, deadline=None)
@given(cadence=cadences, owed=bills, known=facts, now=moments)
def test_every_decision_keeps_the_rules(cadence, owed, known, now):
    plan = plan_reminders(cadence, owed, known, now, HOLD)
    today = now.astimezone(cadence.zone).date()
    decided = [d.parent_id for d in plan.digests] + [h.due.parent_id for h in plan.held_back]
    assert len(decided) == len(set(decided)), "each parent decided once"
    if not cadence.in_hours(now):
        assert plan.digests == ()
    for digest in plan.digests:
        facts_of = known.get(digest.parent_id, ParentFacts())
        assert not facts_of.opted_out and facts_of.has_address
        assert facts_of.last_emailed is None or facts_of.last_emailed <= now - HOLD
        assert today - timedelta(days=1) <= digest.step.on <= today, "never a step sent late"
        assert digest.covers[-1] == digest.step and list(digest.covers) == sorted(digest.covers)
        assert all(facts_of.last_step is None or s.on > facts_of.last_step for s in digest.covers)
        owed_ids = {b.payment_link_id for b in owed if b.parent_id == digest.parent_id}
        assert {s.payment_link_id for s in digest.covers} <= owed_ids, "only the parent's own bills"
    # Sending every digest (the step claimed, the parent emailed now), then running again at the
    # same moment, sends nothing more.
    after = dict(known)
    for digest in plan.digests:
        old = known.get(digest.parent_id, ParentFacts())
        after[digest.parent_id] = ParentFacts(old.has_address, old.opted_out, digest.step.on, now)
    assert plan_reminders(cadence, owed, after, now, HOLD).digests == ()


@settings(max_examples=40, deadline=None)
@given(
    cadence=cadences,
    owed=bills,
    days=st.integers(1, 30),
    down=st.sets(st.integers(0, 30 * 24 - 1), max_size=200),
)
def test_hourly_runs_send_each_step_at_most_once_never_late_and_at_most_once_a_day(cadence, owed, days, down):
    """Runs every hour for `days` days, some hours lost (`down`: a crash, a stopped worker)."""
    first = datetime(2026, 12, 1, tzinfo=cadence.zone)
    known: dict[int, ParentFacts] = {}
    sent: list[tuple[int, datetime, date]] = []
    for hour in range(days * 24):
        if hour in down:
            continue
        now = (first + timedelta(hours=hour)).astimezone(UTC)
        for digest in plan_reminders(cadence, owed, known, now, HOLD).digests:
            sent.append((digest.parent_id, now, digest.step.on))
            known[digest.parent_id] = ParentFacts(last_step=digest.step.on, last_emailed=now)
    for parent in {p for p, _, _ in sent}:
        mine = [(when, step) for p, when, step in sent if p == parent]
        steps = [step for _, step in mine]
        assert len(steps) == len(set(steps)), "each step sent once"
        assert steps == sorted(steps)
        for (earlier, _), (later, _) in zip(mine, mine[1:], strict=False):
            assert later - earlier >= HOLD, "at most one a day"
        for when, step in mine:
            assert 0 <= (when.astimezone(cadence.zone).date() - step).days <= 1, "on its day or the next"


@settings(max_examples=50, deadline=None)
@given(
    cadence=cadences.map(lambda c: Cadence(True, c.days, (8, 20), c.zone)),
    owed=bills,
    days=st.integers(1, 30),
)
def test_with_a_run_every_hour_every_step_day_gets_exactly_one_digest(cadence, owed, days):
    """The oracle: with nothing lost, each parent gets one digest per distinct step date from the
    day before the first run to the last day (the first run folds yesterday's into today's)."""
    first_day = date(2026, 12, 1)
    first = datetime(2026, 12, 1, 8, tzinfo=cadence.zone)
    known: dict[int, ParentFacts] = {}
    count: dict[int, int] = {}
    for hour in range(days * 24):
        now = (first + timedelta(hours=hour)).astimezone(UTC)
        for digest in plan_reminders(cadence, owed, known, now, HOLD).digests:
            count[digest.parent_id] = count.get(digest.parent_id, 0) + 1
            known[digest.parent_id] = ParentFacts(last_step=digest.step.on, last_emailed=now)
    last_day = first_day + timedelta(days=days - 1)  # the last day with a run in hours
    for parent in {b.parent_id for b in owed}:
        dates = {
            b.due_on + timedelta(days=d)
            for b in owed
            if b.parent_id == parent and b.due_on is not None
            for d in cadence.days
        }
        window = {d for d in dates if first_day - DAY <= d <= last_day}
        expected = len(window) - (1 if {first_day - DAY, first_day} <= window else 0)
        assert count.get(parent, 0) == expected


# -- Sequences: days pass, bills are raised and paid (webhooks lost), parents opt out ------------


class RemindersOverTime(RuleBasedStateMachine):
    """A club whose clock moves on, whose families pay (paylinks hears of it only when a run
    applies Stripe's news first) and opt out, and whose hourly runs decide with `plan_reminders`.
    The model keeps what each parent was sent and checks the rules after every step."""

    CADENCE = Cadence(enabled=True, days=DEFAULT_DAYS, hours=(8, 20), zone=ZONE)

    def __init__(self) -> None:
        super().__init__()
        self.now = datetime(2026, 12, 1, 6, tzinfo=ZONE).astimezone(UTC)
        self.bills: dict[int, DueBill] = {}
        self.paid_at: dict[int, datetime] = {}  # at Stripe (paylinks learns it at the next run)
        self.opted_out: dict[int, datetime] = {}  # parent: when
        self.facts: dict[int, ParentFacts] = {}
        self.sent: list[tuple[int, datetime, date, frozenset[int]]] = []  # parent, when, step, bills

    @rule(parent=st.integers(1, 3), due_in=st.integers(-20, 40))
    def raise_a_bill(self, parent: int, due_in: int) -> None:
        today = self.now.astimezone(ZONE).date()
        row = len(self.bills) + 1
        self.bills[row] = DueBill(row, parent, today + timedelta(days=due_in))

    @precondition(lambda self: any(row not in self.paid_at for row in self.bills))
    @rule(data=st.data())
    def a_family_pays_and_the_webhook_is_lost(self, data) -> None:
        row = data.draw(st.sampled_from(sorted(r for r in self.bills if r not in self.paid_at)))
        self.paid_at[row] = self.now

    @rule(parent=st.integers(1, 3))
    def a_parent_opts_out(self, parent: int) -> None:
        self.opted_out.setdefault(parent, self.now)

    @rule(hours=st.integers(1, 30))
    def time_passes_with_a_run_every_hour(self, hours: int) -> None:
        for _ in range(hours):
            self.now += timedelta(hours=1)
            self._run()

    @rule(hours=st.integers(1, 48))
    def the_worker_is_down(self, hours: int) -> None:
        self.now += timedelta(hours=hours)

    def _run(self) -> None:
        # Stripe's news first: every payment made before the run is known to it.
        owed = [bill for row, bill in self.bills.items() if row not in self.paid_at]
        parents = {
            p: ParentFacts(
                opted_out=p in self.opted_out,
                last_step=self.facts.get(p, ParentFacts()).last_step,
                last_emailed=self.facts.get(p, ParentFacts()).last_emailed,
            )
            for p in {b.parent_id for b in owed}
        }
        for digest in plan_reminders(self.CADENCE, owed, parents, self.now, HOLD).digests:
            bills = frozenset(s.payment_link_id for s in digest.covers)
            self.sent.append((digest.parent_id, self.now, digest.step.on, bills))
            self.facts[digest.parent_id] = ParentFacts(last_step=digest.step.on, last_emailed=self.now)

    @invariant()
    def no_reminder_for_a_bill_paid_before_the_run(self) -> None:
        for _, when, _, bills in self.sent:
            # A payment at the run's own moment came after it (the model runs, then pays).
            assert all(self.paid_at.get(row, when) >= when for row in bills)

    @invariant()
    def one_balance_email_a_parent_a_day_each_step_once_none_after_opting_out(self) -> None:
        for parent in {p for p, *_ in self.sent}:
            mine = [(when, step) for p, when, step, _ in self.sent if p == parent]
            assert [s for _, s in mine] == sorted({s for _, s in mine})
            assert all(b[0] - a[0] >= HOLD for a, b in zip(mine, mine[1:], strict=False))
            if parent in self.opted_out:
                assert not [w for w, _ in mine if w > self.opted_out[parent]], "none after opting out"


RemindersOverTime.TestCase.settings = settings(max_examples=40, stateful_step_count=25, deadline=None)
test_reminders_over_time = RemindersOverTime.TestCase
