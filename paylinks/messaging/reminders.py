"""Reminders, the parts that read and write: each club's cadence as stored, the due date of each
open bill, what is known of each parent (last step sent, last balance email, opt-out), the
digest emails, and the "stop reminders" tokens and opt-outs.

The decision itself (who gets a digest now) is `paylinks.messaging.cadence.plan_reminders`.
A digest is claimed in `email_log` as the blast's emails are (`claims.send_batch`), under the run
key of its newest step (`reminder:<date>`): one per parent and step, whatever run sends it.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from paylinks.club.balances import BalanceSheet, brand_of, outstanding_balances
from paylinks.club.clock import known_zone
from paylinks.club.due import BadDateError, DueState, as_date, as_moment, club_today, due_date, due_state
from paylinks.club.tenants import Tenant, tenant_by_slug
from paylinks.errors import PaylinksError
from paylinks.messaging.blasts import hold_window
from paylinks.messaging.cadence import (
    LATE_BY_AT_MOST,
    SHORTEST_HOLD,
    Cadence,
    CadenceError,
    Due,
    DueBill,
    HeldBack,
    Hold,
    ParentFacts,
    ReminderPlan,
    parse_days,
    parse_hours,
    plan_reminders,
    step_of_run_key,
)
from paylinks.messaging.prepare import PreparedEmail
from paylinks.messaging.render import ParentBalance, render_email
from paylinks.params import is_valid_address
from paylinks.settings import EmailTransportName
from paylinks.store.queries import fetch_all
from paylinks.store.tables import (
    as_utc,
    dialect_insert,
    email_log,
    parents,
    reminder_optouts,
    reminder_tokens,
    tenants,
    utcnow,
)
from paylinks.stripe_api.gateway import StripeContext
from paylinks.vocabulary import BALANCE_EMAIL_TYPES, EmailStatus, EmailType, OptOutHow, StrLabelEnum


class ReminderSettingsError(PaylinksError):
    """A club's reminder setting or a bill's date that does not parse: names the club and field."""

    exit_code = 2

    def __init__(self, tenant: str, field: str, why: str) -> None:
        super().__init__(f"tenant {tenant}: {field}: {why}")
        self.tenant = tenant
        self.field = field


# -- the club's settings ---------------------------------------------------------------------


def cadence_of(tenant: Tenant, default_zone: str) -> Cadence:
    """The club's reminder settings, parsed; ReminderSettingsError naming the club and the field."""
    try:
        zone = ZoneInfo(known_zone(tenant.timezone)) if tenant.timezone else ZoneInfo(default_zone)
    except ValueError as error:
        raise ReminderSettingsError(tenant.slug, "timezone", str(error)) from None
    try:
        return Cadence(
            enabled=bool(tenant.reminders_enabled),
            days=parse_days(tenant.reminder_days),
            hours=parse_hours(tenant.reminder_hours),
            zone=zone,
        )
    except CadenceError as error:
        raise ReminderSettingsError(tenant.slug, error.field, str(error).partition(": ")[2]) from None


def set_reminders(
    engine: Engine,
    slug: str,
    *,
    days: str | None = None,
    hours: str | None = None,
    enabled: bool | None = None,
) -> Tenant:
    """Change a club's cadence, sending hours or on/off; each value checked before anything is
    saved (ReminderSettingsError naming the club and field)."""
    with engine.connect() as connection:
        club = tenant_by_slug(connection, slug)
    values: dict[str, object] = {}
    try:
        if days is not None:
            values["reminder_days"] = ",".join(str(d) for d in parse_days(days))
        if hours is not None:
            first, last = parse_hours(hours)
            values["reminder_hours"] = f"{first}-{last}"
    except CadenceError as error:
        raise ReminderSettingsError(slug, error.field, str(error).partition(": ")[2]) from None
    if enabled is not None:
        values["reminders_enabled"] = enabled
    if values:
        with engine.begin() as connection:
            connection.execute(sa.update(tenants).where(tenants.c.id == club.id).values(**values))
    with engine.connect() as connection:
        return tenant_by_slug(connection, slug)


# -- bills and their due dates ---------------------------------------------------------------


def due_dates(
    connection: Connection, tenant: Tenant, zone: ZoneInfo, player_id: int | None = None
) -> dict[int, date | None]:
    """Each open row's due date, by payment_link_id (None: the bill has none). A stored date
    that is not one is a ReminderSettingsError naming the club and the field."""
    found: dict[int, date | None] = {}
    for row in fetch_all(connection, "query_bill_due_dates", tenant_id=tenant.id, player_id=player_id):
        is_order = row["order_id"] is not None
        try:
            found[int(row["payment_link_id"])] = due_date(
                is_order=is_order,
                order_due_on=as_date(row["order_due_on"], f"orders.due_on of order {row['order_id']}")
                if is_order
                else None,
                product_due_on=as_date(
                    row["product_due_on"], f"products.due_on of product {row['product_id']}"
                ),
                order_created_at=as_moment(
                    row["order_created_at"], f"orders.created_at of order {row['order_id']}"
                )
                if is_order
                else None,
                terms_days=int(tenant.default_terms_days),
                zone=zone,
            )
        except BadDateError as error:
            field, _, why = str(error).partition(" of ")
            raise ReminderSettingsError(tenant.slug, field, f"{why}") from None
    return found


def clubs_near_a_step(
    connection: Connection,
    clubs: Iterable[Tenant],
    as_of: datetime | None,
    default_zone: str,
    now: datetime,
) -> set[str]:
    """The slugs of `clubs` (reminders on) with an open bill whose cadence step falls today or
    yesterday in the club's zone: only they can have a parent due now (`plan_reminders` sends a
    step on its day or the next, never later). One query for every club; a club whose settings
    or dates do not parse is kept, so its own run reports it."""
    wanted = {club.id: club for club in clubs}
    near: set[str] = set()
    cadences: dict[int, Cadence] = {}
    for each in wanted.values():
        try:
            cadences[each.id] = cadence_of(each, default_zone)
        except ReminderSettingsError:
            near.add(each.slug)
    for row in fetch_all(connection, "query_open_bill_due_dates_of_every_tenant"):
        club = wanted.get(int(row["tenant_id"]))
        if club is None or club.slug in near:
            continue
        cadence = cadences[club.id]
        today = club_today(run_moment(as_of, cadence.zone, now), cadence.zone)
        is_order = row["order_id"] is not None
        try:
            due = due_date(
                is_order=is_order,
                order_due_on=as_date(row["order_due_on"], "orders.due_on") if is_order else None,
                product_due_on=as_date(row["product_due_on"], "products.due_on"),
                order_created_at=as_moment(row["order_created_at"], "orders.created_at")
                if is_order
                else None,
                terms_days=int(club.default_terms_days),
                zone=cadence.zone,
            )
        except BadDateError:
            near.add(club.slug)
            continue
        if due is not None and any(
            today - LATE_BY_AT_MOST <= due + timedelta(days=day) <= today for day in cadence.days
        ):
            near.add(club.slug)
    return near


def due_bills(sheet: BalanceSheet, dates: Mapping[int, date | None]) -> list[DueBill]:
    """Every item offered now, with the parent who owes it and its due date."""
    return [
        DueBill(item.payment_link_id, balance.parent_id, dates.get(item.payment_link_id))
        for balance in sheet.balances
        for item in balance.items
        if item.payment_link_id is not None
    ]


def due_words(balance: ParentBalance, dates: Mapping[int, date | None], today: date) -> dict[int, str]:
    """Each item's due state in words, by payment_link_id (items without a date left out)."""
    words = {}
    for item in balance.items:
        if item.payment_link_id is not None:
            state: DueState = due_state(dates.get(item.payment_link_id), today)
            if state.words:
                words[item.payment_link_id] = state.words
    return words


# -- what is known of each parent --------------------------------------------------------------


def parent_facts(
    engine: Engine,
    tenant: Tenant,
    transport: EmailTransportName,
    parent_ids: Iterable[int],
    addresses: Mapping[int, str | None],
    since: datetime,
    lease: timedelta,
) -> dict[int, ParentFacts]:
    """For each parent: an address?, opted out?, the newest step sent to them, their latest
    balance or reminder email since `since` (a live claim of another run counts as one)."""
    wanted = sorted(set(parent_ids))
    if not wanted:
        return {}
    since = as_utc(since).astimezone(UTC)  # stored times are UTC (SQLite compares them as text)
    live_since = max(since, utcnow() - lease)
    with engine.connect() as connection:
        opted = opted_out_parents(connection, tenant, wanted)
        steps = connection.execute(
            sa.select(email_log.c.parent_id, email_log.c.run_key).where(
                email_log.c.tenant_id == tenant.id,
                email_log.c.email_type == EmailType.reminder,
                email_log.c.transport == transport.value,
                email_log.c.status == EmailStatus.sent,
                email_log.c.parent_id.in_(wanted),
            )
        ).all()
        emailed = connection.execute(
            sa.select(
                email_log.c.parent_id, email_log.c.status, email_log.c.sent_at, email_log.c.claimed_at
            ).where(
                email_log.c.tenant_id == tenant.id,
                email_log.c.email_type.in_(BALANCE_EMAIL_TYPES),
                email_log.c.transport == transport.value,
                email_log.c.parent_id.in_(wanted),
                sa.or_(
                    sa.and_(email_log.c.status == EmailStatus.sent, email_log.c.sent_at >= since),
                    sa.and_(email_log.c.status == EmailStatus.sending, email_log.c.claimed_at >= live_since),
                ),
            )
        ).all()
    last_step: dict[int, date] = {}
    for parent_id, run_key in steps:
        step = step_of_run_key(run_key)
        if step is not None and (parent_id not in last_step or step > last_step[parent_id]):
            last_step[parent_id] = step
    last_emailed: dict[int, datetime] = {}
    for row in emailed:
        moment = as_utc(row.sent_at if row.status == EmailStatus.sent else row.claimed_at)
        if row.parent_id not in last_emailed or moment > last_emailed[row.parent_id]:
            last_emailed[row.parent_id] = moment
    return {
        parent_id: ParentFacts(
            has_address=bool(addresses.get(parent_id)),
            opted_out=parent_id in opted,
            last_step=last_step.get(parent_id),
            last_emailed=last_emailed.get(parent_id),
        )
        for parent_id in wanted
    }


def opted_out_parents(connection: Connection, tenant: Tenant, parent_ids: Iterable[int]) -> set[int]:
    """Which of these parents opted out of reminders (a blast still mails them; its summary says so)."""
    wanted = sorted(set(parent_ids))
    if not wanted:
        return set()
    return set(
        connection.execute(
            sa.select(reminder_optouts.c.parent_id).where(
                reminder_optouts.c.tenant_id == tenant.id, reminder_optouts.c.parent_id.in_(wanted)
            )
        ).scalars()
    )


# -- the digest --------------------------------------------------------------------------------


def stop_url(office_url: str, token: str) -> str:
    """The parent's "stop reminders" page (GET: a confirmation; POST: one click, RFC 8058)."""
    return f"{office_url.rstrip('/')}/r/{token}"


def prepare_digest(
    tenant: Tenant,
    balance: ParentBalance,
    dates: Mapping[int, date | None],
    today: date,
    unsubscribe: str | None,
    family_url: str | None = None,
) -> PreparedEmail:
    """One parent's reminder: everything they owe, each item's due state, their family page, the
    stop link; with `unsubscribe` (a url) the List-Unsubscribe headers of a one-click unsubscribe
    (RFC 8058)."""
    rendered = render_email(
        EmailType.reminder,
        brand=brand_of(tenant),
        balance=balance,
        due=due_words(balance, dates, today),
        stop_url=unsubscribe,
        family_url=family_url,
    )
    headers: tuple[tuple[str, str], ...] = ()
    if unsubscribe:
        headers = (
            ("List-Unsubscribe", f"<{unsubscribe}>"),
            ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
        )
    return PreparedEmail(
        parent_id=balance.parent_id,
        parent_name=balance.parent_name,
        address=balance.email,
        rendered=rendered,
        item_count=len(balance.items),
        total_cents=balance.total_cents,
        urls=tuple(item.url for item in balance.items),
        headers=headers,
        family_url=family_url,
    )


# -- stopping reminders --------------------------------------------------------------------------


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_stop_tokens(engine: Engine, tenant: Tenant, parent_ids: Iterable[int]) -> dict[int, str]:
    """A fresh random "stop reminders" token for each parent (one per email sent); only its
    SHA-256 is kept, so the database opens no one's link and nothing is guessable from ids."""
    made = {parent_id: secrets.token_urlsafe(24) for parent_id in parent_ids}
    if made:
        with engine.begin() as connection:
            connection.execute(
                sa.insert(reminder_tokens),
                [
                    {"token_sha256": _digest(token), "tenant_id": tenant.id, "parent_id": parent_id}
                    for parent_id, token in made.items()
                ],
            )
    return made


@dataclass(frozen=True)
class StopPage:
    """Whose "stop reminders" link a token is, and where they stand now."""

    tenant: Tenant
    parent_id: int
    parent_name: str
    opted_out_at: datetime | None


def stop_page(engine: Engine, token: str) -> StopPage | None:
    """The parent a token names (None: no such token; a malformed one is simply unknown)."""
    if not token or len(token) > 100:
        return None
    with engine.connect() as connection:
        row = connection.execute(
            sa.select(
                reminder_tokens.c.parent_id,
                tenants.c.slug,
                parents.c.first_name,
                parents.c.last_name,
                reminder_optouts.c.opted_out_at,
            )
            .join(tenants, tenants.c.id == reminder_tokens.c.tenant_id)
            .join(
                parents,
                sa.and_(parents.c.id == reminder_tokens.c.parent_id, parents.c.tenant_id == tenants.c.id),
            )
            .outerjoin(
                reminder_optouts,
                sa.and_(
                    reminder_optouts.c.tenant_id == reminder_tokens.c.tenant_id,
                    reminder_optouts.c.parent_id == reminder_tokens.c.parent_id,
                ),
            )
            .where(reminder_tokens.c.token_sha256 == _digest(token))
        ).first()
        if row is None:
            return None
        club = tenant_by_slug(connection, row.slug)
    return StopPage(
        club,
        int(row.parent_id),
        f"{row.first_name} {row.last_name}",
        as_utc(row.opted_out_at) if row.opted_out_at else None,
    )


def set_opted_out(engine: Engine, tenant: Tenant, parent_id: int, how: OptOutHow | None) -> None:
    """Record that the parent gets no reminders (`how` it was asked), or (None) undo it.
    Asking twice keeps the first time."""
    with engine.begin() as connection:
        if how is None:
            connection.execute(
                sa.delete(reminder_optouts).where(
                    reminder_optouts.c.tenant_id == tenant.id, reminder_optouts.c.parent_id == parent_id
                )
            )
            return
        connection.execute(
            dialect_insert(connection, reminder_optouts)
            .values(tenant_id=tenant.id, parent_id=parent_id, opted_out_at=utcnow(), how=how)
            .on_conflict_do_nothing()
        )


@dataclass(frozen=True)
class ParentReminders:
    """A parent's reminders as the player card shows them."""

    opted_out_at: datetime | None
    opted_out_how: OptOutHow | None
    last_sent_at: datetime | None
    last_step: date | None
    count: int


def parent_reminders(connection: Connection, tenant: Tenant, parent_id: int) -> ParentReminders:
    """Whether the parent opted out, their last reminder (when, which step) and how many so far."""
    optout = connection.execute(
        sa.select(reminder_optouts.c.opted_out_at, reminder_optouts.c.how).where(
            reminder_optouts.c.tenant_id == tenant.id, reminder_optouts.c.parent_id == parent_id
        )
    ).first()
    sent = connection.execute(
        sa.select(email_log.c.sent_at, email_log.c.run_key)
        .where(
            email_log.c.tenant_id == tenant.id,
            email_log.c.email_type == EmailType.reminder,
            email_log.c.status == EmailStatus.sent,
            email_log.c.parent_id == parent_id,
        )
        .order_by(email_log.c.sent_at.desc())
    ).all()
    return ParentReminders(
        opted_out_at=as_utc(optout.opted_out_at) if optout else None,
        opted_out_how=OptOutHow(optout.how) if optout else None,
        last_sent_at=as_utc(sent[0].sent_at) if sent else None,
        last_step=step_of_run_key(sent[0].run_key) if sent else None,
        count=len(sent),
    )


# -- one club's run: the plan, and the report ----------------------------------------------------


def run_moment(as_of: datetime | None, zone: ZoneInfo, now: datetime) -> datetime:
    """The moment a run acts at: `as_of` (without an offset, the club's local time) or `now`."""
    if as_of is None:
        return as_utc(now)
    return as_of if as_of.tzinfo is not None else as_of.replace(tzinfo=zone)


def reminder_hold(tenant: Tenant, default_hours: int) -> timedelta:
    """How long a balance or reminder email holds a parent back from a reminder: the blast's hold,
    never less than a day (at most one a day, whatever the blast's own setting)."""
    window = hold_window(tenant, default_hours) or timedelta(0)
    return max(window, SHORTEST_HOLD)


@dataclass(frozen=True)
class TenantReminders:
    """What one club's run decided, and what it decided from."""

    cadence: Cadence
    now: datetime
    sheet: BalanceSheet
    dates: Mapping[int, date | None]
    plan: ReminderPlan

    def balance(self, parent_id: int) -> ParentBalance:
        return next(b for b in self.sheet.balances if b.parent_id == parent_id)


def plan_tenant(
    engine: Engine,
    tenant: Tenant,
    context: StripeContext,
    as_of: datetime | None,
    *,
    default_zone: str,
    transport: EmailTransportName,
    hold: timedelta,
    lease: timedelta,
) -> TenantReminders:
    """Read the club's bills, due dates and parents, and decide (`plan_reminders`) who is due."""
    cadence = cadence_of(tenant, default_zone)
    now = run_moment(as_of, cadence.zone, utcnow())
    if not cadence.enabled:
        return TenantReminders(cadence, now, BalanceSheet(()), {}, plan_reminders(cadence, [], {}, now, hold))
    with engine.connect() as connection:
        sheet = outstanding_balances(connection, tenant, context)
        dates = due_dates(connection, tenant, cadence.zone)
    addresses = {
        b.parent_id: b.email if b.email and is_valid_address(b.email) else None for b in sheet.balances
    }
    facts = parent_facts(engine, tenant, transport, addresses, addresses, now - hold, lease)
    plan = plan_reminders(cadence, due_bills(sheet, dates), facts, now, hold)
    return TenantReminders(cadence, now, sheet, dates, plan)


class ReminderResult(StrLabelEnum):
    """What became of a parent with a step due."""

    sent = "sent", "sent"
    would_send = "would_send", "would be sent (dry run)"
    held_back = "held_back", "held back"
    already_sent = "already_sent", "already sent (another run)"
    claimed_elsewhere = "claimed_elsewhere", "being sent by another run"
    failed = "failed", "failed"


@dataclass(frozen=True)
class ReminderLine:
    parent_id: int
    parent_name: str
    recipient: str | None
    result: ReminderResult
    due: Due
    hold: Hold | None = None
    detail: str | None = None  # why it failed; or when the parent was last emailed


@dataclass
class ReminderReport:
    """One club's reminder run."""

    tenant: str
    send: bool
    as_of: datetime | None = None
    timezone: str = ""
    enabled: bool = True
    hours: tuple[int, int] = (8, 20)
    days: tuple[int, ...] = ()
    in_hours: bool = True
    problem: str | None = None  # a setting that does not parse, or what stopped the run
    # No open bill has a step today or yesterday: nothing was planned (an every-club run's check)
    quiet: bool = False
    stripe_news: str = ""  # what was asked of Stripe before sending
    currency: str = "usd"
    lines: list[ReminderLine] = field(default_factory=list)
    emails: list[PreparedEmail] = field(default_factory=list)  # rendered digests (a dry run shows them)

    def of(self, result: ReminderResult) -> list[ReminderLine]:
        return [line for line in self.lines if line.result is result]

    def held(self, hold: Hold) -> list[ReminderLine]:
        return [line for line in self.lines if line.hold is hold]


def plan_lines(reminders: TenantReminders, extra_held: Iterable[HeldBack] = ()) -> list[ReminderLine]:
    """Every held-back parent of the plan (and `extra_held`, paid since) as report lines."""
    names = {b.parent_id: (b.parent_name, b.email) for b in reminders.sheet.balances}
    lines = []
    for held in (*extra_held, *reminders.plan.held_back):
        name, address = names.get(held.due.parent_id, (f"parent {held.due.parent_id}", None))
        lines.append(
            ReminderLine(
                held.due.parent_id,
                name,
                address,
                ReminderResult.held_back,
                held.due,
                hold=held.reason,
                detail=held.last_emailed.isoformat() if held.last_emailed else None,
            )
        )
    return lines


def player_due_words(
    connection: Connection, tenant: Tenant, player_id: int, default_zone: str, now: datetime
) -> dict[int, str]:
    """Each open row of one player's due state in words ("overdue by 3 days"), by payment_link_id,
    as the coach's lookup and the player card show it; a date that does not parse shows none."""
    from paylinks.club.clock import club_zone

    zone = club_zone(tenant.timezone, default_zone)
    try:
        dates = due_dates(connection, tenant, zone, player_id=player_id)
    except ReminderSettingsError:
        return {}
    today = as_utc(now).astimezone(zone).date()
    return {row_id: due_state(day, today).words for row_id, day in dates.items() if day is not None}
