"""A club that lives: random sequences of club changes, Stripe news, runs and faults, with the
invariants a club admin or a family would notice checked after every step.

The real flows run in this process against a fresh database (SQLite or PostgreSQL), the local
Stripe emulator over HTTP (in-process servers; a second one stands for another Stripe account),
and an SMTP server on loopback. The club tables are changed with plain SQL, as the club's own
application would; parents and banks act through the emulator's pages and `/_emulator` endpoints;
refunds go through `POST /v1/refunds` with the real `stripe` SDK.

What is owed is computed here from the club tables, independently of paylinks' planner.

CI runs a fixed number of steps with a fixed seed (`derandomize`); `make soak` sets
PAYLINKS_TEST_SOAK_STEPS and runs that many with a random seed, printing its figures.
"""

from __future__ import annotations

import contextlib
import contextvars
import email
import email.policy
import inspect
import os
import re
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
import sqlalchemy as sa
import stripe
from hypothesis import HealthCheck, Phase
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test

from paylinks.store.tables import (
    email_log,
    family_checkout_rows,
    family_checkouts,
    metadata,
    minted_links,
    orders,
    parents,
    payment_allocations,
    payment_links,
    payments,
    players,
    products,
    reminder_optouts,
    reminder_tokens,
    tenants,
)
from tests.conftest import FAMILY_LINK_SECRET
from tests.family_checkouts import open_family_checkout
from tests.helpers import smtp_server

# Storage semantics matter here (sequences of club changes, payments, crashes and races): PostgreSQL too.
pytestmark = [pytest.mark.slow, pytest.mark.storage]

# -- how much to run ----------------------------------------------------------------------------
SOAK_STEPS = int(os.environ.get("PAYLINKS_TEST_SOAK_STEPS") or 0)
STEPS_PER_EXAMPLE = 50
# CI: at least 300 steps on SQLite and 100 on PostgreSQL, the same sequences every time.
CI_STEPS = {"sqlite": 300, "postgresql": 100}


# -- the club ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class ClubSpec:
    slug: str
    name: str
    domain: str  # every parent's address, and the reply-to, is at this domain
    currency: str
    families: tuple[str, ...]  # last names, unique to this club (so a leak is visible in text)
    fees: tuple[tuple[str, int, bool], ...]  # (product, amount, billed to every signed player)
    timezone: str  # the club's own zone: its calendar days, its reminders' sending hours


ALPHA = ClubSpec(
    slug="alpha-fc",
    name="Alpha FC",
    domain="alpha-fc.example",
    currency="usd",
    families=("Okafor", "Lindqvist", "Moreau", "Tanaka"),
    fees=(("Season dues", 12000, True), ("Uniform", 4500, True), ("Tournament", 3000, False)),
    timezone="America/Chicago",
)
BETA = ClubSpec(
    slug="beta-united",
    name="Beta United",
    domain="beta-united.example",
    currency="jpy",
    families=("Zwicky", "Quarshie", "Vasquez"),
    fees=(("Membership", 8000, True), ("Camp", 2500, False)),
    timezone="Asia/Tokyo",
)
CLUBS = (ALPHA, BETA)


def seed_club(engine: sa.Engine, spec: ClubSpec, now: datetime) -> None:
    """A small club: a parent per family (one without an address), two players each, some orders.
    Reminders are on (the default cadence); the first fee is due today, orders 14 days after
    they were raised (`now`, the club's clock)."""
    today = now.astimezone(ZoneInfo(spec.timezone)).date()
    with engine.begin() as connection:
        tenant_id = connection.execute(
            sa.insert(tenants)
            .values(
                slug=spec.slug,
                name=spec.name,
                reply_to_email=f"office@{spec.domain}",
                currency=spec.currency,
                timezone=spec.timezone,
                reminders_enabled=True,
            )
            .returning(tenants.c.id)
        ).scalar_one()
        product_ids = [
            connection.execute(
                sa.insert(products)
                .values(
                    tenant_id=tenant_id,
                    name=name,
                    amount_cents=amount,
                    active=True,
                    bill_signed_players=billed,
                    due_on=today if number == 0 else None,
                )
                .returning(products.c.id)
            ).scalar_one()
            for number, (name, amount, billed) in enumerate(spec.fees)
        ]
        for number, family in enumerate(spec.families):
            address = None if number == len(spec.families) - 1 else f"{family.lower()}@{spec.domain}"
            parent_id = connection.execute(
                sa.insert(parents)
                .values(tenant_id=tenant_id, first_name=f"Pat{number}", last_name=family, email=address)
                .returning(parents.c.id)
            ).scalar_one()
            for child in ("Kid", "Tot"):
                player_id = connection.execute(
                    sa.insert(players)
                    .values(
                        tenant_id=tenant_id,
                        parent_id=parent_id,
                        first_name=f"{child}{number}",
                        last_name=family,
                        status="signed" if child == "Kid" or number % 2 else "registered",
                    )
                    .returning(players.c.id)
                ).scalar_one()
                if child == "Kid" and number < 2:
                    connection.execute(
                        sa.insert(orders).values(
                            tenant_id=tenant_id,
                            player_id=player_id,
                            parent_id=parent_id,
                            product_id=product_ids[-1],
                            amount_cents=spec.fees[-1][1],
                            status="pending",
                            created_at=now,
                        )
                    )


@dataclass(frozen=True)
class Owed:
    """One item the club's data bills today, by this test's own reading of the contract."""

    tenant_id: int
    player_id: int
    product_id: int
    parent_id: int
    order_id: int | None
    amount_cents: int


def owed_items(connection: sa.Connection) -> dict[tuple[int, int], Owed]:
    """(player, product) → what is owed: a default fee per signed player and billing product,
    replaced by the first pending order of a player who has not withdrawn, for a product the
    club still sells (an order for a product switched off is owed by nobody)."""
    owed: dict[tuple[int, int], Owed] = {}
    player_rows = {p.id: p for p in connection.execute(sa.select(players))}
    active = {p.id: p.active for p in connection.execute(sa.select(products))}
    for product in connection.execute(sa.select(products)):
        if not (product.active and product.bill_signed_players):
            continue
        for player in player_rows.values():
            if player.tenant_id == product.tenant_id and player.status == "signed" and player.parent_id:
                owed[(player.id, product.id)] = Owed(
                    player.tenant_id, player.id, product.id, player.parent_id, None, product.amount_cents
                )
    seen: set[tuple[int, int]] = set()
    for order in connection.execute(
        sa.select(orders).where(orders.c.status == "pending").order_by(orders.c.id)
    ):
        key = (order.player_id, order.product_id)
        player = player_rows[order.player_id]
        if player.status == "withdrawn" or not active[order.product_id] or key in seen:
            continue
        seen.add(key)
        owed[key] = Owed(
            order.tenant_id,
            order.player_id,
            order.product_id,
            order.parent_id or player.parent_id,
            order.id,
            order.amount_cents,
        )
    return owed


# -- the mail server -----------------------------------------------------------------------------
class MailDesk:
    """An aiosmtpd handler that keeps what it accepted; it can refuse an address or drop a message."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.messages: list[tuple[str, Any]] = []  # (recipient, parsed message)
        self.refuse: set[str] = set()
        self.drops_left = 0  # the next messages answered "451 try again later"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.lower() in self.refuse:
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            if self.drops_left > 0:
                self.drops_left -= 1
                return "451 4.3.0 try again later"
        parsed = email.message_from_bytes(
            envelope.original_content or envelope.content, policy=email.policy.default
        )
        with self.lock:
            for recipient in envelope.rcpt_tos:
                self.messages.append((recipient.lower(), parsed))
        return "250 OK"


PAY_URL = re.compile(r"https?://[^\s\"'<>]+/pay/(plink_[A-Za-z0-9_]+)")


def links_in(message: Any) -> list[str]:
    text = message.get_body(("plain",)).get_content()
    return PAY_URL.findall(text)


def text_of(message: Any) -> str:
    return "\n".join(
        [
            str(message["Subject"]),
            str(message["Reply-To"]),
            message.get_body(("plain",)).get_content(),
            message.get_body(("html",)).get_content(),
        ]
    )


# -- faults --------------------------------------------------------------------------------------
class InjectedCrash(Exception):
    """A crash between two steps of a run, injected by this test."""


# Library functions a task calls between two steps of a run: making one raise once is a crash
# right there; the next run must repair whatever it left.
CRASH_POINTS = (
    ("paylinks.billing.reserve", "reserve_payment_links"),  # after links were let go, before reserving
    ("paylinks.billing.mint", "load_payment_links"),  # after links were minted, before rows know them
    ("paylinks.billing.mint", "relink_rows"),  # after minting, before rows follow their bill
    ("paylinks.billing.mint", "mint_replacements"),  # after a failed slow payment was applied
    ("paylinks.payments.reconcile", "apply_stripe_news"),  # after Stripe was read, before anything applied
    ("paylinks.messaging.blasts", "finish_blast"),  # after every parent was mailed
)
FAULTS = ("stripe_500", "stripe_429", "smtp_refuse", "smtp_drop") + tuple(
    f"crash:{m}.{f}" for m, f in CRASH_POINTS
)


class Picks:
    """A rule's choices among things that exist only at run time (rows, links, sessions).

    Each rule draws the same few integers whatever the state, so a sequence replays with the
    same choices even where the database or Stripe answer a little differently (shrinking
    needs that)."""

    def __init__(self, numbers: list[int]) -> None:
        self.numbers = list(numbers)
        self.used = 0

    def choose(self, options: Any) -> Any:
        options = list(options)
        number = self.numbers[self.used % len(self.numbers)]
        self.used += 1
        return options[number % len(options)]

    def __repr__(self) -> str:
        return f"Picks({self.numbers})"


PICKS = st.builds(Picks, st.lists(st.integers(0, 999), min_size=3, max_size=3))


def stripe_key(server: int, live: bool) -> str:
    """Each emulator stands for one Stripe account; a key acts in one account and one mode."""
    return f"sk_{'live' if live else 'test'}_clublives{server}"


# -- the run -------------------------------------------------------------------------------------
@dataclass
class Figures:
    steps: int = 0
    examples: int = 0
    runs: Counter = field(default_factory=Counter)
    payments: int = 0
    pay_alls: int = 0  # "Pay all" checkouts opened
    emails: int = 0
    reminders: int = 0
    reminder_outcomes: Counter = field(default_factory=Counter)  # sent, held back: why, ...
    started: float = field(default_factory=time.monotonic)

    def line(self, backend: str) -> str:
        runs = ", ".join(f"{name} {count}" for name, count in sorted(self.runs.items()))
        return (
            f"club lives on {backend}: {self.steps} steps in {self.examples} sequences, "
            f"{sum(self.runs.values())} flow runs ({runs}), {self.payments} payments, "
            f"{self.pay_alls} 'Pay all' checkouts, "
            f"{self.emails} emails ({self.reminders} reminders; reminder outcomes: "
            f"{', '.join(f'{k} {n}' for k, n in sorted(self.reminder_outcomes.items())) or 'none'}), "
            f"{time.monotonic() - self.started:.0f} s"
        )


@dataclass
class Env:
    """What every sequence shares: the database, the mail server, the figures."""

    backend: str
    engine: sa.Engine
    database_url: str
    desk: MailDesk
    smtp_port: int
    tmp_path: Path
    figures: Figures


def wipe(engine: sa.Engine) -> None:
    """An empty database for the next sequence (cheaper than a new one)."""
    with engine.begin() as connection:
        for table in reversed(metadata.sorted_tables):
            connection.execute(sa.delete(table))


def once_then_crash(module: Any, name: str) -> Callable[[], None]:
    """Make `module.name` raise InjectedCrash on its next call (then behave); returns the undo."""
    original = getattr(module, name)

    def crash(*args: Any, **kwargs: Any) -> Any:
        setattr(module, name, original)
        raise InjectedCrash(f"crash injected before {name}")

    setattr(module, name, crash)
    return lambda: setattr(module, name, original)


def first_morning() -> float:
    """Seconds from now to 15:00 UTC the day after tomorrow (9 AM in Alpha's Chicago, midnight in
    Beta's Tokyo): every sequence starts at that hour of the day whenever CI runs it, and never
    behind the real clock, which the databases' own defaults read."""
    now = datetime.now(UTC)
    start = (now + timedelta(days=2)).replace(hour=15, minute=0, second=0, microsecond=0)
    return (start - now).total_seconds()


@contextlib.contextmanager
def paylinks_clock(offset: Callable[[], float]) -> Iterator[None]:
    """paylinks' clock (`utcnow`, `now_utc`: claims, sends, holds) moved on with the club's days, as
    the emulator's is, so every part reads one calendar."""
    import paylinks.club.clock
    import paylinks.store.tables

    class Shifted(datetime):
        @classmethod
        def now(cls, tz: Any = None) -> Any:
            return datetime.now(tz) + timedelta(seconds=offset())

    modules = (paylinks.store.tables, paylinks.club.clock)
    saved = [module.datetime for module in modules]
    for module in modules:
        module.datetime = Shifted  # type: ignore[misc]
    try:
        yield
    finally:
        for module, original in zip(modules, saved, strict=True):
            module.datetime = original  # type: ignore[misc]


def _always(machine: ClubLives) -> bool:
    return True


# action → (when it can happen, its variants); the deck repeats each action by its weight.
ACTIONS: dict[str, tuple[Callable[[ClubLives], Any], dict[str, list[Any]]]] = {
    "time_passes": (_always, {}),
    "player_moves_to_another_parent": (_always, {}),
    "order_is_created": (_always, {"amount": [1500, 3000, 4500, 12000], "own_parent": [True, False]}),
    "order_is_cancelled": (_always, {}),
    "order_is_replaced": (_always, {"new_amount": [None, 2000, 3000, 9000]}),
    "order_amount_changes": (_always, {"amount": [1000, 3500, 7000]}),
    "player_status_changes": (_always, {"status": ["withdrawn", "signed", "registered"]}),
    "product_billing_flips": (_always, {"which": ["active", "bill_signed_players"]}),
    "second_tenant_appears": (lambda m: len(m.clubs) == 1, {}),
    "parent_pays_a_link": (_always, {"bank_debit": [False, True]}),
    "parent_opens_a_checkout": (_always, {}),
    "parent_completes_an_open_checkout": (lambda m: m.open_sessions, {"method": ["card", "bank_debit"]}),
    "parent_pays_twice": (_always, {}),
    # A family's "Pay all" checkout of what a parent owes (sometimes two tabs at once), paid by
    # card or bank debit, perhaps after one of its bills was paid by its own link; or left to expire.
    "family_opens_pay_all": (_always, {"tabs": [1, 1, 2]}),
    "family_pays_pay_all": (
        lambda m: m.family_sessions,
        {"method": ["card", "card", "bank_debit"], "own_link_first": [False, False, True]},
    ),
    "pay_all_expires": (lambda m: m.family_sessions, {}),
    "club_refunds_one_item_of_pay_all": (lambda m: m.family_intents, {}),
    "bank_settles_a_debit": (lambda m: m.awaiting, {"outcome": ["succeeded", "failed"]}),
    "club_refunds_a_payment": (lambda m: m.intents, {"partial": [False, True]}),
    "cardholder_disputes": (lambda m: m.intents, {"status": ["", "won", "lost"]}),
    "stripe_key_changes": (_always, {"target_server": [0, 1], "live": [True, False]}),
    "something_will_break": (lambda m: m.fault is None, {"fault": list(FAULTS)}),
    "backfill_runs": (_always, {"commit": [True, False]}),
    "blast_runs": (_always, {"key": [None, "autumn", "spring"], "twins": [False, True]}),
    "coach_resends": (_always, {}),
    "reconcile_runs": (_always, {}),
    # Reminders: the club's calendar moves on (the hourly runs in between are `reminders_run`),
    # bills get due dates, the admin changes the cadence, parents stop (or restart) reminders.
    "days_pass": (_always, {"hours": [3, 10, 24, 24, 47]}),
    "club_sets_a_due_date": (_always, {"of": ["product", "order"], "days": [-8, -1, 0, 2, 6, 15, None]}),
    "admin_sets_reminders": (
        _always,
        {
            "days": [None, "-1,0,1", "0,1,2,3,4,5", "-7,0,3"],
            "hours": [None, "0-24", "9-17"],
            "enabled": [True, True, False],
        },
    ),
    "parent_stops_reminders": (_always, {"again": [False, False, True]}),
    "reminders_run": (_always, {"send": [True, True, True, False], "every_tenant": [False, True]}),
}
WEIGHTS = {
    "time_passes": 1,
    "second_tenant_appears": 1,
    "stripe_key_changes": 1,
    "something_will_break": 2,
    "player_moves_to_another_parent": 2,
    "parent_pays_a_link": 4,
    "parent_opens_a_checkout": 2,
    "parent_completes_an_open_checkout": 3,
    "bank_settles_a_debit": 3,
    "family_opens_pay_all": 3,
    "family_pays_pay_all": 4,
    "pay_all_expires": 1,
    "club_refunds_one_item_of_pay_all": 2,
    # A run costs a second or more of Prefect; the rest costs milliseconds.
    "backfill_runs": 2,
    "blast_runs": 2,
    "coach_resends": 1,
    "reconcile_runs": 2,
    "days_pass": 3,
    "club_sets_a_due_date": 2,
    "admin_sets_reminders": 1,
    "parent_stops_reminders": 2,
    "reminders_run": 3,
}
DECK = [action for action in ACTIONS for _ in range(WEIGHTS.get(action, 2))]


class ClubLives(RuleBasedStateMachine):
    """One club (a second may appear), its families, Stripe and the mail, over many steps."""

    def __init__(self, env: Env) -> None:
        super().__init__()
        from stripe_emulator import EmulatorServer

        self.env = env
        self.engine = env.engine
        self.figures = env.figures
        self.figures.examples += 1
        self.stack = ExitStack()
        wipe(self.engine)
        env.desk.messages.clear()
        env.desk.refuse.clear()
        env.desk.drops_left = 0
        # The club's clock, Stripe's and paylinks' alike: `time_passes` and `days_pass` move it on.
        self.clock_offset = first_morning()
        self.stack.enter_context(paylinks_clock(lambda: self.clock_offset))
        self.servers: list[Any] = []
        self._emulator_server = EmulatorServer
        self._start_server()
        self.where = (0, False)  # (emulator, live mode): where the current key acts
        self._use_settings()
        self.clubs: list[ClubSpec] = []
        self._add_club(ALPHA)
        self.backfilled: dict[str, bool] = defaultdict(bool)  # a clean backfill since the club changed
        self.unreconciled: dict[str, bool] = defaultdict(bool)  # Stripe news no clean reconcile has seen
        self.open_sessions: list[tuple[str, str]] = []  # (session id, tenant slug)
        self.awaiting: list[tuple[str, str]] = []  # bank debits not settled yet
        self.intents: list[tuple[str, str]] = []  # (payment intent, tenant slug): money that moved
        self.family_sessions: list[tuple[str, str]] = []  # open "Pay all" checkouts (session, slug)
        self.family_intents: list[tuple[str, str]] = []  # "Pay all" payments whose money moved
        self.fault: str | None = None
        self.smtp_refused: str | None = None
        self.blast_recipients: dict[str, Counter] = defaultdict(Counter)
        self.cancelled_orders: set[int] = set()
        # What each family received, as they would tell it: balance emails (blast or reminder)
        # by parent and the club's calendar day; each reminder's steps (bill, day) by parent.
        self.balance_days: dict[int, Counter] = defaultdict(Counter)
        self.steps_reminded: dict[int, list[tuple[date, frozenset[tuple[int, date]]]]] = defaultdict(list)
        self.opted_out: set[int] = set()

    # -- plumbing ----------------------------------------------------------------------------
    def _start_server(self) -> None:
        server = self._emulator_server(host="127.0.0.1", port=0)
        server.start()
        # Time moves on between steps (see `time_passes`), as Stripe's own clock would.
        server.emulator.clock = lambda: time.time() + self.clock_offset
        self.servers.append(server)

    def _use_settings(self) -> None:
        from paylinks.settings import Settings
        from tasks.run_settings import settings_for_runs

        server, live = self.where
        self.settings = Settings(
            database_url=self.env.database_url,
            stripe_api_base=self.servers[server].url,
            stripe_api_key=stripe_key(server, live),
            outbox_dir=self.env.tmp_path / "outbox",
            stripe_max_rps=100,
            stripe_max_retries=4,
            email_transport="smtp",
            smtp_host="127.0.0.1",
            smtp_port=self.env.smtp_port,
            smtp_timeout_s=5,
            allow_test_links=True,  # the emulator's links, on purpose
            # Every balance email carries the family page; with PostgreSQL the secret is required.
            family_link_secret=FAMILY_LINK_SECRET,
        )
        self.stack.enter_context(settings_for_runs(self.settings))

    def _now(self) -> datetime:
        return datetime.now(UTC) + timedelta(seconds=self.clock_offset)

    def _add_club(self, spec: ClubSpec) -> None:
        seed_club(self.engine, spec, self._now())
        self.clubs.append(spec)

    def teardown(self) -> None:
        self.stack.close()
        for server in self.servers:
            server.stop()

    def _step(self) -> None:
        self.figures.steps += 1
        self.step_started = datetime.now(UTC)  # the Prefect server's clock (artifacts)
        self.step_started_here = self._now()  # the club's (email_log)

    def _book(self, server: int | None = None, live: bool | None = None):
        """The emulator's book of the current account and mode (or the one named)."""
        current_server, current_live = self.where
        server = current_server if server is None else server
        return self.servers[server].emulator.account(None, livemode=current_live if live is None else live)

    def _holder(self, kind: str, object_id: str) -> tuple[int, Any] | None:
        from stripe_emulator import EmulatorError

        for index, server in enumerate(self.servers):
            try:
                return index, server.emulator.holder(kind, object_id)
            except EmulatorError:
                continue
        return None

    def _tenant_slug(self, connection: sa.Connection, tenant_id: int) -> str:
        return connection.execute(sa.select(tenants.c.slug).where(tenants.c.id == tenant_id)).scalar_one()

    def _slug_of_link(self, link_id: str) -> str | None:
        with self.engine.connect() as connection:
            tenant_id = connection.execute(
                sa.select(minted_links.c.tenant_id).where(minted_links.c.stripe_payment_link_id == link_id)
            ).scalar_one_or_none()
            return None if tenant_id is None else self._tenant_slug(connection, tenant_id)

    def _club_changed(self, tenant_id: int) -> None:
        with self.engine.connect() as connection:
            self.backfilled[self._tenant_slug(connection, tenant_id)] = False

    def _draw_row(self, data: Picks, table: sa.Table, *where: Any) -> Any:
        with self.engine.connect() as connection:
            found = connection.execute(sa.select(table).where(*where).order_by(table.c.id)).all()
        return data.choose(found) if found else None

    # -- club changes (the club's own application, straight into its tables) -----------------
    def player_moves_to_another_parent(self, data: Picks) -> None:
        self._step()
        player = self._draw_row(data, players)
        with self.engine.begin() as connection:
            others = (
                connection.execute(
                    sa.select(parents.c.id).where(
                        parents.c.tenant_id == player.tenant_id, parents.c.id != player.parent_id
                    )
                )
                .scalars()
                .all()
            )
            new_parent = data.choose(sorted(others))
            connection.execute(
                sa.update(players).where(players.c.id == player.id).values(parent_id=new_parent)
            )
        self._club_changed(player.tenant_id)

    def order_is_created(self, data: Picks, amount: int, own_parent: bool) -> None:
        self._step()
        player = self._draw_row(data, players, players.c.status != "withdrawn")
        if player is None:
            return
        with self.engine.begin() as connection:
            product_ids = (
                connection.execute(
                    sa.select(products.c.id)
                    .where(products.c.tenant_id == player.tenant_id)
                    .order_by(products.c.id)
                )
                .scalars()
                .all()
            )
            parent_ids = (
                connection.execute(
                    sa.select(parents.c.id)
                    .where(parents.c.tenant_id == player.tenant_id)
                    .order_by(parents.c.id)
                )
                .scalars()
                .all()
            )
            connection.execute(
                sa.insert(orders).values(
                    tenant_id=player.tenant_id,
                    player_id=player.id,
                    # An order may be owed by someone other than the player's parent.
                    parent_id=player.parent_id if own_parent else data.choose(parent_ids),
                    product_id=data.choose(product_ids),
                    amount_cents=amount,
                    status="pending",
                    created_at=self._now(),
                )
            )
        self._club_changed(player.tenant_id)

    def order_is_cancelled(self, data: Picks) -> None:
        self._step()
        order = self._draw_row(data, orders, orders.c.status == "pending")
        if order is None:
            return
        with self.engine.begin() as connection:
            connection.execute(sa.update(orders).where(orders.c.id == order.id).values(status="cancelled"))
        self.cancelled_orders.add(order.id)
        self._club_changed(order.tenant_id)

    def order_is_replaced(self, data: Picks, new_amount: int | None) -> None:
        """Cancel and order again: the same amount (None) or another."""
        self._step()
        order = self._draw_row(data, orders, orders.c.status == "pending")
        if order is None:
            return
        with self.engine.begin() as connection:
            connection.execute(sa.update(orders).where(orders.c.id == order.id).values(status="cancelled"))
            connection.execute(
                sa.insert(orders).values(
                    tenant_id=order.tenant_id,
                    player_id=order.player_id,
                    parent_id=order.parent_id,
                    product_id=order.product_id,
                    amount_cents=new_amount or order.amount_cents,
                    status="pending",
                    created_at=self._now(),
                    due_on=order.due_on,
                )
            )
        self.cancelled_orders.add(order.id)
        self._club_changed(order.tenant_id)

    def order_amount_changes(self, data: Picks, amount: int) -> None:
        self._step()
        order = self._draw_row(data, orders, orders.c.status == "pending")
        if order is None:
            return
        with self.engine.begin() as connection:
            connection.execute(sa.update(orders).where(orders.c.id == order.id).values(amount_cents=amount))
        self._club_changed(order.tenant_id)

    def player_status_changes(self, data: Picks, status: str) -> None:
        self._step()
        player = self._draw_row(data, players, players.c.status != status)
        if player is None:
            return
        with self.engine.begin() as connection:
            connection.execute(sa.update(players).where(players.c.id == player.id).values(status=status))
        self._club_changed(player.tenant_id)

    def product_billing_flips(self, data: Picks, which: str) -> None:
        """A product stops (or starts) billing: switched off, or no longer billed to signed players."""
        self._step()
        product = self._draw_row(data, products)
        with self.engine.begin() as connection:
            connection.execute(
                sa.update(products)
                .where(products.c.id == product.id)
                .values({which: not product._mapping[which]})
            )
        self._club_changed(product.tenant_id)

    def second_tenant_appears(self) -> None:
        self._step()
        self._add_club(BETA)

    # -- Stripe news (what a parent, a bank or the club's Stripe dashboard does) -----------------
    def _draw_link(self, data: Picks) -> str | None:
        """A link a parent holds: usually a bill's current link, sometimes an older one."""
        with self.engine.connect() as connection:
            current = (
                connection.execute(
                    sa.select(payment_links.c.stripe_payment_link_id)
                    .where(
                        payment_links.c.status == "pending",
                        payment_links.c.stripe_payment_link_id.is_not(None),
                    )
                    .order_by(payment_links.c.id)
                )
                .scalars()
                .all()
            )
            every = (
                connection.execute(
                    sa.select(minted_links.c.stripe_payment_link_id).order_by(
                        minted_links.c.payment_link_row_id, minted_links.c.mint_version
                    )
                )
                .scalars()
                .all()
            )
        pool = current if current and data.choose(range(4)) else every
        return data.choose(pool) if pool else None

    def _emulator_post(self, url: str, **form: str) -> dict[str, Any] | None:
        """POST as a browser or the bank would; None when the emulator refused (a dead link, say)."""
        response = httpx.post(url, data=form, headers={"Accept": "application/json"}, timeout=10)
        if response.status_code != 200:
            return None
        return response.json()

    def _news(self, slug: str | None) -> None:
        if slug is not None:
            self.unreconciled[slug] = True

    def _after_completion(self, session: dict[str, Any], slug: str | None) -> None:
        self.figures.payments += 1
        self._news(slug)
        if session["payment_status"] == "paid":
            self.intents.append((session["payment_intent"], slug))
        else:
            self.awaiting.append((session["id"], slug))

    def parent_pays_a_link(self, data: Picks, bank_debit: bool) -> None:
        self._step()
        link_id = self._draw_link(data)
        found = link_id and self._holder("payment_links", link_id)
        if not found:
            return
        form = {"payment_status": "unpaid"} if bank_debit else {}
        session = self._emulator_post(f"{self.servers[found[0]].url}/pay/{link_id}", **form)
        if session is not None:
            self._after_completion(session, self._slug_of_link(link_id))

    def parent_opens_a_checkout(self, data: Picks) -> None:
        """The link's page is opened and left open: paid later, perhaps after the bill changed."""
        self._step()
        link_id = self._draw_link(data)
        found = link_id and self._holder("payment_links", link_id)
        if not found:
            return
        session = self._emulator_post(
            f"{self.servers[found[0]].url}/_emulator/payment_links/{link_id}/open_session"
        )
        if session is not None:
            self.open_sessions.append((session["id"], self._slug_of_link(link_id)))

    def parent_completes_an_open_checkout(self, data: Picks, method: str) -> None:
        self._step()
        session_id, slug = data.choose(self.open_sessions)
        self.open_sessions.remove((session_id, slug))
        found = self._holder("checkout_sessions", session_id)
        session = self._emulator_post(
            f"{self.servers[found[0]].url}/_emulator/checkout_sessions/{session_id}/complete",
            payment_method=method,
        )
        if session is not None:
            self._after_completion(session, slug)

    def parent_pays_twice(self, data: Picks) -> None:
        """Two tabs: two checkouts opened on one link before either is paid, then both paid."""
        self._step()
        link_id = self._draw_link(data)
        found = link_id and self._holder("payment_links", link_id)
        if not found:
            return
        base = self.servers[found[0]].url
        slug = self._slug_of_link(link_id)
        opened = [
            self._emulator_post(f"{base}/_emulator/payment_links/{link_id}/open_session") for _ in range(2)
        ]
        for session in opened:
            if session is None:
                continue
            paid = self._emulator_post(f"{base}/_emulator/checkout_sessions/{session['id']}/complete")
            if paid is not None:
                self._after_completion(paid, slug)

    # -- a family's "Pay all" ------------------------------------------------------------------
    def family_opens_pay_all(self, data: Picks, tabs: int) -> None:
        """A parent presses "Pay all" on the family page: one checkout of everything they owe
        that is minted where the key acts now (two tabs: two checkouts of the same bills)."""
        self._step()
        book = self._book()
        with self.engine.connect() as connection:
            owing = connection.execute(
                sa.select(payment_links.c.parent_id, payment_links.c.id, payment_links.c.tenant_id)
                .where(
                    payment_links.c.status == "pending",
                    payment_links.c.stripe_payment_link_id.is_not(None),
                    payment_links.c.stripe_price_id.is_not(None),
                    payment_links.c.parent_id.is_not(None),
                    payment_links.c.stripe_account == book.id,
                    payment_links.c.livemode == book.livemode,
                )
                .order_by(payment_links.c.parent_id, payment_links.c.id)
            ).all()
        by_parent: dict[int, list[int]] = defaultdict(list)
        tenant_of: dict[int, int] = {}
        for parent_id, row_id, tenant_id in owing:
            by_parent[parent_id].append(row_id)
            tenant_of[parent_id] = tenant_id
        if not by_parent:
            return
        parent_id = data.choose(sorted(by_parent))
        with self.engine.connect() as connection:
            slug = self._tenant_slug(connection, tenant_of[parent_id])
        for _ in range(tabs):
            try:
                checkout = open_family_checkout(
                    self.engine,
                    str(self.settings.stripe_api_base),
                    self.settings.stripe_api_key.get_secret_value(),
                    by_parent[parent_id],
                    now=time.time() + self.clock_offset,
                )
            except stripe.StripeError:
                return  # a price the account no longer has: the page would refuse too
            self.family_sessions.append((checkout.session_id, slug))
            self.figures.pay_alls += 1

    def family_pays_pay_all(self, data: Picks, method: str, own_link_first: bool) -> None:
        """The parent pays an open "Pay all" checkout; sometimes one of its bills was just paid
        by its own link in another tab."""
        self._step()
        session_id, slug = data.choose(self.family_sessions)
        self.family_sessions.remove((session_id, slug))
        found = self._holder("checkout_sessions", session_id)
        if found is None:
            return
        if own_link_first:
            with self.engine.connect() as connection:
                links = (
                    connection.execute(
                        sa.select(payment_links.c.stripe_payment_link_url)
                        .join(
                            family_checkout_rows,
                            family_checkout_rows.c.payment_link_row_id == payment_links.c.id,
                        )
                        .join(
                            family_checkouts,
                            family_checkouts.c.id == family_checkout_rows.c.family_checkout_id,
                        )
                        .where(
                            family_checkouts.c.checkout_session_id == session_id,
                            payment_links.c.stripe_payment_link_url.is_not(None),
                        )
                        .order_by(payment_links.c.id)
                    )
                    .scalars()
                    .all()
                )
            if links:
                own = self._emulator_post(data.choose(links))
                if own is not None:
                    self._after_completion(own, slug)
        session = found[1].retrieve_checkout_session(session_id)
        if session["status"] != "open":
            return
        form = {"payment_method": "bank_debit"} if method == "bank_debit" else {}
        paid = self._emulator_post(session["url"], **form)
        if paid is not None:
            self._after_completion(paid, slug)
            if paid["payment_status"] == "paid":
                self.family_intents.append((paid["payment_intent"], slug))

    def pay_all_expires(self, data: Picks) -> None:
        """The parent walks away: Stripe expires the checkout."""
        self._step()
        session_id, slug = data.choose(self.family_sessions)
        self.family_sessions.remove((session_id, slug))
        found = self._holder("checkout_sessions", session_id)
        if found is None:
            return
        server, book = found
        client = stripe.StripeClient(
            stripe_key(server, book.livemode),
            base_addresses={"api": self.servers[server].url},
            max_network_retries=0,
        )
        try:
            client.v1.checkout.sessions.expire(session_id)
        except stripe.StripeError:
            return
        self._news(slug)

    def club_refunds_one_item_of_pay_all(self, data: Picks) -> None:
        """The treasurer refunds one item of a "Pay all" payment: its amount, from Stripe's dashboard."""
        self._step()
        intent_id, slug = data.choose(self.family_intents)
        found = self._holder("payment_intents", intent_id)
        if found is None:
            return
        server, book = found
        sessions = book.list_checkout_sessions({"payment_intent": intent_id, "limit": 1})["data"]
        if not sessions:
            return
        with self.engine.connect() as connection:
            amounts = (
                connection.execute(
                    sa.select(family_checkout_rows.c.amount_cents)
                    .join(
                        family_checkouts, family_checkouts.c.id == family_checkout_rows.c.family_checkout_id
                    )
                    .where(family_checkouts.c.checkout_session_id == sessions[0]["id"])
                    .order_by(family_checkout_rows.c.payment_link_row_id)
                )
                .scalars()
                .all()
            )
        if not amounts:
            return
        client = stripe.StripeClient(
            stripe_key(server, book.livemode),
            base_addresses={"api": self.servers[server].url},
            max_network_retries=0,
        )
        try:
            client.v1.refunds.create(params={"payment_intent": intent_id, "amount": data.choose(amounts)})
        except stripe.StripeError:
            return  # refunded already, disputed, or less left than that
        self._news(slug)

    def bank_settles_a_debit(self, data: Picks, outcome: str) -> None:
        self._step()
        session_id, slug = data.choose(self.awaiting)
        self.awaiting.remove((session_id, slug))
        found = self._holder("checkout_sessions", session_id)
        session = self._emulator_post(
            f"{self.servers[found[0]].url}/_emulator/checkout_sessions/{session_id}/settle", outcome=outcome
        )
        if session is not None:
            self._news(slug)
            if outcome == "succeeded":
                self.intents.append((session["payment_intent"], slug))
                if not session.get("payment_link"):
                    self.family_intents.append((session["payment_intent"], slug))

    def club_refunds_a_payment(self, data: Picks, partial: bool) -> None:
        """The club refunds from its Stripe dashboard: `POST /v1/refunds`, in full or in part."""
        self._step()
        intent_id, slug = data.choose(self.intents)
        server, book = self._holder("payment_intents", intent_id)
        client = stripe.StripeClient(
            stripe_key(server, book.livemode),
            base_addresses={"api": self.servers[server].url},
            max_network_retries=0,
        )
        params: dict[str, Any] = {"payment_intent": intent_id}
        if partial:
            params["amount"] = 500
        try:
            client.v1.refunds.create(params=params)
        except stripe.StripeError:
            return  # refunded already, disputed, or less left than that
        self._news(slug)

    def cardholder_disputes(self, data: Picks, status: str) -> None:
        self._step()
        intent_id, slug = data.choose(self.intents)
        server, _book = self._holder("payment_intents", intent_id)
        form = {"status": status} if status else {}
        if self._emulator_post(
            f"{self.servers[server].url}/_emulator/payment_intents/{intent_id}/dispute", **form
        ):
            self._news(slug)

    def stripe_key_changes(self, target_server: int, live: bool) -> None:
        """Test mode to live, or another Stripe account altogether (the second emulator)."""
        self._step()
        if (target_server, live) == self.where:
            return
        while len(self.servers) <= target_server:
            self._start_server()
        self.where = (target_server, live)
        self._use_settings()
        for spec in self.clubs:
            self.backfilled[spec.slug] = False
            # The account returned to may hold payments made on its links while the key was
            # elsewhere: no reconcile in it has seen them yet (reconcile reads the key's account).
            self.unreconciled[spec.slug] = True

    def time_passes(self) -> None:
        """Stripe's clock moves on by a minute and a half, past reconcile's overlap (events,
        sessions and links are stamped with it). Hypothesis's simplest sequence repeats this
        cheapest step."""
        self._step()
        self.clock_offset += 90

    def days_pass(self, hours: int) -> None:
        """The club's calendar moves on by hours or days. The hourly runs in between are the
        `reminders_run` steps; the hours without one are a worker that was down."""
        self._step()
        self.clock_offset += hours * 3600

    # -- reminders: due dates, the admin's cadence, parents who stop them -----------------------------
    def _zone(self, tenant_id: int) -> ZoneInfo:
        with self.engine.connect() as connection:
            slug = self._tenant_slug(connection, tenant_id)
        return ZoneInfo(next(spec.timezone for spec in CLUBS if spec.slug == slug))

    def club_sets_a_due_date(self, data: Picks, of: str, days: int | None) -> None:
        """The club's application dates a fee or a pending order `days` from the club's today,
        or takes its date away (an order then falls back to its fee's, or raised + 14 days)."""
        self._step()
        table = products if of == "product" else orders
        row = self._draw_row(data, table, *([orders.c.status == "pending"] if of == "order" else []))
        if row is None:
            return
        today = self._now().astimezone(self._zone(row.tenant_id)).date()
        with self.engine.begin() as connection:
            connection.execute(
                sa.update(table)
                .where(table.c.id == row.id)
                .values(due_on=None if days is None else today + timedelta(days=days))
            )

    def admin_sets_reminders(self, data: Picks, days: str | None, hours: str | None, enabled: bool) -> None:
        """The admin's Reminders page: the cadence (None: the default), the hours, on or off."""
        from paylinks.messaging.cadence import DEFAULT_DAYS
        from paylinks.messaging.reminders import set_reminders

        self._step()
        slug = data.choose([spec.slug for spec in self.clubs])
        set_reminders(
            self.engine,
            slug,
            days=days or ",".join(str(day) for day in DEFAULT_DAYS),
            hours=hours or "8-20",
            enabled=enabled,
        )

    def parent_stops_reminders(self, data: Picks, again: bool) -> None:
        """A parent clicks "stop reminders" (or, `again`, turns them back on from the family page)."""
        from paylinks.club.tenants import tenant_by_slug
        from paylinks.messaging.reminders import set_opted_out
        from paylinks.vocabulary import OptOutHow

        self._step()
        parent = self._draw_row(data, parents)
        with self.engine.connect() as connection:
            club = tenant_by_slug(connection, self._tenant_slug(connection, parent.tenant_id))
        if again and parent.id in self.opted_out:
            set_opted_out(self.engine, club, parent.id, None)
            self.opted_out.discard(parent.id)
        else:
            set_opted_out(self.engine, club, parent.id, OptOutHow.one_click)
            self.opted_out.add(parent.id)

    def reminders_run(self, data: Picks, send: bool, every_tenant: bool) -> None:
        """The hourly reminder run at the club's clock (in process, as the deployment's parent
        run does without fan-out), or its dry run."""
        from flows.remind_outstanding_balances import remind_outstanding_balances

        self._step()
        slug = None if every_tenant else data.choose([spec.slug for spec in self.clubs])
        now = self._now()
        paid = self._paid_at_stripe()
        opted = set(self.opted_out)
        written = self._reminder_writes()
        seen = len(self.env.desk.messages)
        state = self._run("remind", remind_outstanding_balances, tenant=slug, send=send, as_of=now)
        result = state.result(raise_on_failure=False)
        reports = result if isinstance(result, list) else getattr(result, "reports", [])
        messages = self.env.desk.messages[seen:]
        for report in reports:
            for line in report.lines:
                self.figures.reminder_outcomes[line.hold.value if line.hold else line.result.value] += 1
        if not send:
            assert not messages, "a dry run of the reminders sent mail"
            assert self._reminder_writes() == written, "a dry run of the reminders wrote to the database"
            return
        self._check_reminders(messages, reports, now, paid, opted)
        self._check_artifacts()

    def _reminder_writes(self) -> tuple[int, ...]:
        with self.engine.connect() as connection:
            return tuple(
                connection.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
                for table in (email_log, reminder_tokens, reminder_optouts, payments)
            )

    def _paid_at_stripe(self) -> tuple[set[str], set[tuple[int, int]]]:
        """What the account the key acts in holds as paid (or paid by a debit not settled yet)
        now: the links whose checkout completed, and each (bill, mint version) a completed "Pay
        all" took. A reminder run started after these could have known of every one."""
        book = self._book()
        links: set[str] = set()
        family_ids: list[int] = []
        page: dict[str, Any] = {"has_more": True, "data": []}
        while page["has_more"]:
            params: dict[str, Any] = {"limit": 100}
            if page["data"]:
                params["starting_after"] = page["data"][-1]["id"]
            page = book.list_checkout_sessions(params)
            for session in page["data"]:
                if session["status"] != "complete" or not session["payment_intent"]:
                    continue
                intent = book.retrieve_payment_intent(session["payment_intent"])
                if intent["status"] not in ("succeeded", "processing"):
                    continue
                family = (session.get("metadata") or {}).get("paylinks_family_checkout")
                if family:
                    family_ids.append(int(family))
                elif session.get("payment_link"):
                    links.add(session["payment_link"])
        with self.engine.connect() as connection:
            bills = {
                (row_id, version)
                for row_id, version in connection.execute(
                    sa.select(
                        family_checkout_rows.c.payment_link_row_id, family_checkout_rows.c.mint_version
                    ).where(family_checkout_rows.c.family_checkout_id.in_(family_ids))
                )
            }
        return links, bills

    def _balance_email(self, parent: Any, now: datetime, what: str) -> None:
        """At most one balance email (blast or reminder) a parent a day, by the club's calendar."""
        day = now.astimezone(self._zone(parent.tenant_id)).date()
        self.balance_days[parent.id][day] += 1
        assert self.balance_days[parent.id][day] == 1, (
            f"parent {parent.id} got {self.balance_days[parent.id][day]} balance emails on {day} (the last a {what})"
        )

    def _check_reminders(
        self,
        messages: list[tuple[str, Any]],
        reports: list[Any],
        now: datetime,
        paid: tuple[set[str], set[tuple[int, int]]],
        opted: set[int],
    ) -> None:
        """What a family would say of the reminders just delivered: none for a bill they paid
        before the run (in the account it reads), none after they stopped them, one balance
        email a day at most, and each step of each bill once."""
        links_paid, bills_paid = paid
        with self.engine.connect() as connection:
            by_address = {
                p.email.lower(): p
                for p in connection.execute(sa.select(parents).where(parents.c.email.is_not(None)))
            }
            versions = {
                link: (row_id, version)
                for link, row_id, version in connection.execute(
                    sa.select(
                        minted_links.c.stripe_payment_link_id,
                        minted_links.c.payment_link_row_id,
                        minted_links.c.mint_version,
                    )
                )
            }
        sent = {
            (line.recipient or "").lower(): line
            for report in reports
            for line in report.lines
            if line.result.value == "sent"
        }
        reminders = [(r, m) for r, m in messages if m["List-Unsubscribe"] is not None]  # not receipts
        self.figures.emails += len(reminders)
        self.figures.reminders += len(reminders)
        for recipient, message in reminders:
            parent = by_address.get(recipient)
            assert parent is not None, f"a reminder went to {recipient}, who is no parent"
            assert parent.id not in opted, f"parent {parent.id} stopped reminders and got one"
            for link_id in links_in(message):
                assert link_id not in links_paid, (
                    f"reminder to {recipient} asks to pay {link_id}, paid at Stripe before the run"
                )
                bill = versions.get(link_id)
                assert bill not in bills_paid, (
                    f"reminder to {recipient} asks to pay bill {bill}, which a 'Pay all' paid before the run"
                )
            self._balance_email(parent, now, "reminder")
            line = sent.get(recipient)
            assert line is not None, f"{recipient} got a reminder the run's summary does not list as sent"
            steps = frozenset((step.payment_link_id, step.on) for step in line.due.covers)
            for earlier, covered in self.steps_reminded[parent.id]:
                assert line.due.step.on > earlier, (
                    f"parent {parent.id} reminded of step {line.due.step.on} after step {earlier}"
                )
                assert not steps & covered, f"parent {parent.id} reminded twice of {sorted(steps & covered)}"
            self.steps_reminded[parent.id].append((line.due.step.on, steps))

    # -- faults, armed for the next run ------------------------------------------------------------
    def something_will_break(self, fault: str, data: Picks) -> None:
        self._step()
        self.fault = fault
        if fault == "smtp_refuse":
            with self.engine.connect() as connection:
                addresses = (
                    connection.execute(
                        sa.select(parents.c.email).where(parents.c.email.is_not(None)).order_by(parents.c.id)
                    )
                    .scalars()
                    .all()
                )
            self.smtp_refused = data.choose(addresses)

    def _run(self, name: str, flow: Callable[..., Any], **parameters: Any) -> Any:
        """Run a flow with whatever fault is armed; returns its final state."""
        self.figures.runs[name] += 1
        undo = self._arm()
        try:
            return flow(**parameters, return_state=True)
        finally:
            undo()

    def _arm(self) -> Callable[[], None]:
        fault, self.fault = self.fault, None
        faults = self.servers[self.where[0]].emulator.faults
        desk = self.env.desk
        if fault == "stripe_500":
            faults.fail_rate, faults.seed = 0.2, self.figures.steps
        elif fault == "stripe_429":
            faults.rate_limit_rps = 5
        elif fault == "smtp_refuse":
            desk.refuse.add(self.smtp_refused)
        elif fault == "smtp_drop":
            desk.drops_left = 2
        elif fault and fault.startswith("crash:"):
            import importlib

            module_name, function = fault.removeprefix("crash:").rsplit(".", 1)
            return once_then_crash(importlib.import_module(module_name), function)

        def undo() -> None:
            faults.fail_rate, faults.seed, faults.rate_limit_rps = 0.0, None, None
            desk.refuse.clear()
            desk.drops_left = 0

        return undo

    # -- runs --------------------------------------------------------------------------------------
    def _slug_choices(self) -> list[str | None]:
        return [None] + [spec.slug for spec in self.clubs]

    def backfill_runs(self, data: Picks, commit: bool) -> None:
        from flows.backfill_payment_links import backfill_payment_links

        self._step()
        slug = data.choose(self._slug_choices())
        before = self._snapshot() if not commit else None
        state = self._run("backfill", backfill_payment_links, tenant=slug, commit=commit)
        if not commit:
            assert self._snapshot() == before, "a dry-run backfill changed the database or Stripe"
            return
        done = state.is_completed()
        for spec in self.clubs:
            if slug in (None, spec.slug):
                self.backfilled[spec.slug] = done
        self._check_artifacts()
        self._check_minted_once()

    def blast_runs(self, data: Picks, key: str | None, twins: bool) -> None:
        """The outstanding-balance blast, sent; sometimes twice at the same moment with one key."""
        from flows.outstanding_balance_email import outstanding_balance_email

        self._step()
        slug = data.choose([spec.slug for spec in self.clubs])
        seen = len(self.env.desk.messages)
        if twins:
            # Two at once with one key. (Keyless sends share an unfinished blast; one started
            # after the other finished is a new blast by design, so twins always name theirs.)
            key = key or "autumn"
            self.figures.runs["blast"] += 2
            undo = self._arm()
            states: list[Any] = [None, None]

            def blast(index: int, context: contextvars.Context) -> None:
                states[index] = context.run(
                    outstanding_balance_email, tenant=slug, send=True, blast_key=key, return_state=True
                )

            threads = [
                threading.Thread(target=blast, args=(index, contextvars.copy_context())) for index in range(2)
            ]
            try:
                for thread in threads:
                    thread.start()
                for thread in threads:
                    thread.join(timeout=300)
            finally:
                undo()
        else:
            self._run("blast", outstanding_balance_email, tenant=slug, send=True, blast_key=key)
        delivered = self.env.desk.messages[seen:]
        self._check_emails(delivered, blast=True)
        with self.engine.connect() as connection:
            by_address = {
                p.email.lower(): p
                for p in connection.execute(sa.select(parents).where(parents.c.email.is_not(None)))
            }
        for recipient, _ in delivered:
            self._balance_email(by_address[recipient], self._now(), "blast")
        self._check_artifacts()

    def coach_resends(self, data: Picks) -> None:
        from flows.resend_payment_link import resend_payment_link

        self._step()
        player = self._draw_row(data, players)
        with self.engine.connect() as connection:
            slug = self._tenant_slug(connection, player.tenant_id)
        seen = len(self.env.desk.messages)
        self._run("resend", resend_payment_link, tenant=slug, player=str(player.id))
        self._check_emails(self.env.desk.messages[seen:], blast=False)
        self._check_artifacts()

    def reconcile_runs(self, data: Picks) -> None:
        from flows.reconcile_payments import reconcile_payments

        self._step()
        slug = data.choose(self._slug_choices())
        state = self._run("reconcile", reconcile_payments, tenant=slug)
        clean = state.is_completed() and not any(
            r.replacement_errors or r.close_errors for r in state.result()
        )
        for spec in self.clubs:
            if slug in (None, spec.slug):
                if clean:
                    self.unreconciled[spec.slug] = False
                else:  # a fresh link may be missing until the next backfill mints it
                    self.backfilled[spec.slug] = False
        self._check_artifacts()
        self._check_minted_once()

    @initialize()
    def the_club_starts_with_its_links(self) -> None:
        """The club as paylinks finds it on a morning: last night's backfill minted its links
        (so the reminders of the first days have something to send)."""
        from flows.backfill_payment_links import backfill_payment_links

        self._step()
        state = self._run("backfill", backfill_payment_links, tenant=ALPHA.slug, commit=True)
        self.backfilled[ALPHA.slug] = state.is_completed()

    # -- one step: what happens next, chosen from the deck ----------------------------------------
    @rule(action=st.sampled_from(DECK), data=PICKS, variant=PICKS)
    def step(self, action: str, data: Picks, variant: Picks) -> None:
        """Club changes and Stripe news are cheap and common; runs (a flow each) rarer."""
        available, variants = ACTIONS[action]
        if not available(self):
            return  # nothing to act on yet: not a step
        method = getattr(self, action)
        arguments = {name: variant.choose(options) for name, options in variants.items()}
        if "data" in inspect.signature(method).parameters:
            arguments["data"] = data
        method(**arguments)

    # -- what a user would notice ------------------------------------------------------------------
    def _snapshot(self) -> Any:
        with self.engine.connect() as connection:
            tables = {
                table.name: sorted(tuple(map(str, row)) for row in connection.execute(sa.select(table)))
                for table in (payment_links, minted_links, orders, payments, metadata.tables["price_tiers"])
            }
        counts = [
            server.emulator.counts(None, livemode=live) for server in self.servers for live in (False, True)
        ]
        return tables, counts

    @invariant()
    def every_bill_has_one_payable_link(self) -> None:
        """1. After a clean backfill, every item owed has one row; an open row has one active,
        payable link in the current account and mode, at the item's amount, for the parent who
        owes it; no row is still open for a bill that went away."""
        with self.engine.connect() as connection:
            owed = owed_items(connection)
            rows = connection.execute(sa.select(payment_links)).mappings().all()
            tenant_ids = {
                spec.slug: connection.execute(
                    sa.select(tenants.c.id).where(tenants.c.slug == spec.slug)
                ).scalar_one()
                for spec in self.clubs
            }
        book = self._book()
        for spec in self.clubs:
            if not self.backfilled[spec.slug] or self.unreconciled[spec.slug]:
                continue
            tenant_id = tenant_ids[spec.slug]
            mine = {(r["player_id"], r["product_id"]): r for r in rows if r["tenant_id"] == tenant_id}
            for key, item in owed.items():
                if item.tenant_id != tenant_id:
                    continue
                row = mine.get(key)
                assert row is not None, f"{spec.slug}: player {key[0]} owes product {key[1]} but has no row"
                status = row["status"].value
                assert status != "cancelled", (
                    f"{spec.slug}: row {row['id']} is cancelled but its bill is owed"
                )
                if status != "pending":
                    continue
                where = f"{spec.slug}: row {row['id']}"
                assert (row["parent_id"], row["order_id"], row["amount_cents"]) == (
                    item.parent_id,
                    item.order_id,
                    item.amount_cents,
                ), f"{where} does not follow its bill: {dict(row)} vs {item}"
                assert row["stripe_payment_link_id"], f"{where} is owed but has no link"
                assert (row["stripe_account"], row["livemode"]) == (book.id, book.livemode), (
                    f"{where} was minted in {row['stripe_account']} live={row['livemode']}, not the current account"
                )
                link = book.retrieve_payment_link(row["stripe_payment_link_id"])
                spent = link["restrictions"]["completed_sessions"]["count"]
                assert link["active"] and spent == 0, (
                    f"{where}: its link cannot take payment ({link['active']=}, {spent=})"
                )
                (line,) = book.list_payment_link_line_items(link["id"], {"limit": 10})["data"]
                assert line["amount_total"] == item.amount_cents, (
                    f"{where}: link charges {line['amount_total']}"
                )
                assert link["metadata"].get("payment_link_row_id") == str(row["id"])
                assert link["metadata"].get("mint_version") == str(row["mint_version"])
            for key, row in mine.items():
                if row["status"].value == "pending":
                    assert key in owed, (
                        f"{spec.slug}: row {row['id']} is still open but nothing is owed for it"
                    )

    @invariant()
    def every_payment_is_accounted_for(self) -> None:
        """3. After a clean reconcile, every payment on our links in the current account is on
        its row, or owed back, or refunded."""
        with self.engine.connect() as connection:
            ours = dict(
                connection.execute(
                    sa.select(minted_links.c.stripe_payment_link_id, minted_links.c.tenant_id)
                ).all()
            )
            slugs = dict(connection.execute(sa.select(tenants.c.id, tenants.c.slug)).all())
            family_tenants = dict(
                connection.execute(sa.select(family_checkouts.c.id, family_checkouts.c.tenant_id)).all()
            )
            records = {
                r["checkout_session_id"]: r for r in connection.execute(sa.select(payments)).mappings()
            }
            rows = {r["id"]: r for r in connection.execute(sa.select(payment_links)).mappings()}
        book = self._book()
        sessions: list[dict[str, Any]] = []
        page: dict[str, Any] = {"has_more": True, "data": []}
        while page["has_more"]:
            params: dict[str, Any] = {"limit": 100}
            if page["data"]:
                params["starting_after"] = page["data"][-1]["id"]
            page = book.list_checkout_sessions(params)
            sessions += page["data"]
        for session in sessions:
            family = (session.get("metadata") or {}).get("paylinks_family_checkout")
            tenant_id = family_tenants.get(int(family)) if family else ours.get(session["payment_link"])
            if session["status"] != "complete" or tenant_id is None or self.unreconciled[slugs[tenant_id]]:
                continue
            record = records.get(session["id"])
            assert record is not None, f"payment {session['id']} on {session['payment_link']} is in no ledger"
            intent = book.retrieve_payment_intent(session["payment_intent"])
            charge = book.retrieve_charge(intent["latest_charge"])
            expected = {"succeeded": "succeeded", "processing": "processing"}.get(intent["status"], "failed")
            assert record["status"].value == expected, (
                f"payment {session['id']}: ledger {record['status']}, Stripe {intent['status']}"
            )
            if expected != "succeeded":
                continue
            # How it was paid, as Stripe's PaymentIntent names it.
            method = {"card": "card", "us_bank_account": "bank_debit"}[intent["payment_method_types"][0]]
            assert record["paid_method"] is not None and record["paid_method"].value == method, (
                f"payment {session['id']}: ledger says paid by {record['paid_method']}, Stripe by {method}"
            )
            assert record["refunded_cents"] == charge["amount_refunded"], (
                f"payment {session['id']}: refunds not recorded"
            )
            if family:
                continue  # a family's "Pay all": its bills are checked by `the_family_pays_once`
            row = rows[record["payment_link_row_id"]]
            disputes = book.list_disputes({"payment_intent": intent["id"]})["data"]
            lost = any(d["status"] == "lost" for d in disputes)
            kept = charge["amount_refunded"] < charge["amount"] and not lost
            owed_back = record["refund_due"] and record["resolved_at"] is None
            if kept and not owed_back:
                # The row it paid: `paid`, or `refund_due` while a second payment is owed back.
                assert (
                    row["status"].value in ("paid", "refund_due")
                    and row["stripe_checkout_session_id"] == session["id"]
                ), (
                    f"payment {session['id']} kept but row {row['id']} is {row['status']} "
                    f"(session {row['stripe_checkout_session_id']})"
                )
            if owed_back:
                assert row["status"].value == "refund_due", (
                    f"row {row['id']} owes money back but is {row['status']}"
                )
        for row in rows.values():
            if row["status"].value != "paid" or self.unreconciled[slugs[row["tenant_id"]]]:
                continue
            record = records.get(row["stripe_checkout_session_id"])
            assert record is not None and record["status"].value == "succeeded", (
                f"row {row['id']} paid by nothing"
            )
            assert record["refunded_cents"] < record["amount_cents"] and record["dispute_status"] != "lost", (
                f"row {row['id']} is paid but its money went back"
            )

    @invariant()
    def the_family_pays_once(self) -> None:
        """What a family would state, "Pay all" and each bill's own link together: nobody pays a
        bill twice without it being owed back; every cent received is on a bill or listed for
        the admin; and, once reconcile has seen it, no bill a "Pay all" took can still be paid
        through its own link."""
        with self.engine.connect() as connection:
            records = connection.execute(sa.select(payments)).mappings().all()
            allocations = connection.execute(sa.select(payment_allocations)).mappings().all()
            rows = {r["id"]: r for r in connection.execute(sa.select(payment_links)).mappings()}
            slugs = dict(connection.execute(sa.select(tenants.c.id, tenants.c.slug)).all())
        paying: Counter = Counter(
            a["payment_link_row_id"] for a in allocations if a["status"].value == "paid"
        )
        twice = {row_id: n for row_id, n in paying.items() if n > 1}
        assert not twice, f"bills paid more than once, none of it owed back: {twice}"
        method_of_payment = {r["id"]: r["paid_method"] for r in records}
        for row_id, row in rows.items():
            if row["status"].value == "paid":
                assert paying[row_id] == 1, f"row {row_id} is paid but no payment's money pays it"
        for allocation in allocations:
            row = rows[allocation["payment_link_row_id"]]
            if allocation["status"].value == "paid" and row["status"].value == "paid":
                assert row["paid_method"] == method_of_payment[allocation["payment_id"]], (
                    f"row {row['id']} reads paid by {row['paid_method']}, its payment was "
                    f"{method_of_payment[allocation['payment_id']]}"
                )
        by_payment: dict[int, list[Any]] = defaultdict(list)
        for allocation in allocations:
            by_payment[allocation["payment_id"]].append(allocation)
        for record in records:
            mine = by_payment[record["id"]]
            where = f"payment {record['checkout_session_id']}"
            if record["status"].value == "succeeded":
                assert sum(a["amount_cents"] for a in mine) == record["amount_cents"], (
                    f"{where}: {record['amount_cents']} received, "
                    f"{sum(a['amount_cents'] for a in mine)} on its bills"
                )
            on_items = sum(a["refunded_cents"] for a in mine)
            assert record["refunded_cents"] == on_items + record["unallocated_refund_cents"], (
                f"{where}: {record['refunded_cents']} refunded, {on_items} on its bills, "
                f"{record['unallocated_refund_cents']} listed"
            )
            listed = record["refund_due"] and record["resolved_at"] is None
            owed = [a["payment_link_row_id"] for a in mine if a["status"].value == "refund_due"]
            if owed or record["unallocated_refund_cents"]:
                assert listed, (
                    f"{where} owes back {owed} / {record['unallocated_refund_cents']} but is not listed"
                )
        for allocation in allocations:
            link_id = allocation["stripe_payment_link_id"]
            slug = slugs[allocation["tenant_id"]]
            if link_id is None or self.unreconciled[slug]:
                continue
            assert allocation["link_closed_at"] is not None, (
                f"row {allocation['payment_link_row_id']}: a clean reconcile left {link_id} open"
            )
            found = self._holder("payment_links", link_id)
            if found is None:
                continue
            link = found[1].retrieve_payment_link(link_id)
            assert not link["active"], (
                f"row {allocation['payment_link_row_id']}: {link_id} still takes payment"
            )

    @invariant()
    def the_family_page_offers_what_is_owed(self) -> None:
        """What a family reads on its page: for every parent, "total owed now" is the sum of the
        items the blast would offer them (the same items), and no bill that is paid, processing
        or owed back, nor one some payment's money pays, is offered."""
        from paylinks.club.balances import outstanding_balances
        from paylinks.club.tenants import tenant_by_slug
        from paylinks.family.page import family_page
        from paylinks.stripe_api.gateway import StripeContext

        book = self._book()
        context = StripeContext(book.id, book.livemode)
        with self.engine.connect() as connection:
            status_of = dict(connection.execute(sa.select(payment_links.c.id, payment_links.c.status)).all())
            paid_by_money = set(
                connection.execute(
                    sa.select(payment_allocations.c.payment_link_row_id).where(
                        payment_allocations.c.status == "paid"
                    )
                ).scalars()
            )
            for spec in self.clubs:
                tenant = tenant_by_slug(connection, spec.slug)
                offered = {
                    balance.parent_id: balance.items
                    for balance in outstanding_balances(connection, tenant, context).balances
                }
                parent_ids = connection.execute(
                    sa.select(parents.c.id).where(parents.c.tenant_id == tenant.id)
                ).scalars()
                for parent_id in parent_ids:
                    page = family_page(connection, tenant, parent_id, context)
                    assert page is not None, f"{spec.slug}: parent {parent_id} has no family page"
                    blast = offered.get(parent_id, ())
                    where = f"{spec.slug}: parent {parent_id}'s family page"
                    assert page.owed_cents == sum(item.amount_cents for item in blast), (
                        f"{where} says {page.owed_cents} owed now; the blast offers "
                        f"{sum(item.amount_cents for item in blast)}"
                    )
                    assert {item.row_id for item in page.owed} == {i.payment_link_id for i in blast}, (
                        f"{where} offers {sorted(i.row_id for i in page.owed)}, the blast "
                        f"{sorted(i.payment_link_id for i in blast)}"
                    )
                    for item in page.owed:
                        status = status_of[item.row_id].value
                        assert status == "pending" and item.row_id not in paid_by_money, (
                            f"{where} offers row {item.row_id}, which is {status}"
                            + (" and paid by a payment" if item.row_id in paid_by_money else "")
                        )

    @invariant()
    def orders_follow_their_rows(self) -> None:
        with self.engine.connect() as connection:
            order_status = dict(connection.execute(sa.select(orders.c.id, orders.c.status)).all())
            paid_rows = set(
                connection.execute(
                    sa.select(payment_links.c.order_id).where(
                        payment_links.c.status.in_(["paid", "refunded", "refund_due"])
                    )
                ).scalars()
            )
        for order_id in self.cancelled_orders:
            assert order_status[order_id] == "cancelled", (
                f"cancelled order {order_id} became {order_status[order_id]}"
            )
        for order_id, status in order_status.items():
            if status == "paid":
                assert order_id in paid_rows, f"order {order_id} is paid but no row of it ever was"

    @invariant()
    def nothing_crosses_tenants(self) -> None:
        """5. Every row, payment and email log entry names things of one tenant only."""
        with self.engine.connect() as connection:
            crossed = (
                connection.execute(
                    sa.select(payment_links.c.id)
                    .join(players, players.c.id == payment_links.c.player_id)
                    .join(products, products.c.id == payment_links.c.product_id)
                    .outerjoin(parents, parents.c.id == payment_links.c.parent_id)
                    .outerjoin(orders, orders.c.id == payment_links.c.order_id)
                    .where(
                        sa.or_(
                            players.c.tenant_id != payment_links.c.tenant_id,
                            products.c.tenant_id != payment_links.c.tenant_id,
                            parents.c.tenant_id != payment_links.c.tenant_id,
                            orders.c.tenant_id != payment_links.c.tenant_id,
                        )
                    )
                )
                .scalars()
                .all()
            )
            assert not crossed, f"rows {crossed} name another tenant's player, product, parent or order"
            crossed = (
                connection.execute(
                    sa.select(payments.c.id)
                    .join(payment_links, payment_links.c.id == payments.c.payment_link_row_id)
                    .where(payments.c.tenant_id != payment_links.c.tenant_id)
                )
                .scalars()
                .all()
            )
            assert not crossed, f"payments {crossed} are filed under another tenant"
            crossed = (
                connection.execute(
                    sa.select(payment_allocations.c.id)
                    .join(payment_links, payment_links.c.id == payment_allocations.c.payment_link_row_id)
                    .join(payments, payments.c.id == payment_allocations.c.payment_id)
                    .where(
                        sa.or_(
                            payment_allocations.c.tenant_id != payment_links.c.tenant_id,
                            payment_allocations.c.tenant_id != payments.c.tenant_id,
                        )
                    )
                )
                .scalars()
                .all()
            )
            assert not crossed, f"allocations {crossed} give one tenant's money to another's bill"
            crossed = (
                connection.execute(
                    sa.select(email_log.c.id)
                    .join(parents, parents.c.id == email_log.c.parent_id)
                    .where(email_log.c.tenant_id != parents.c.tenant_id)
                )
                .scalars()
                .all()
            )
            assert not crossed, f"email log entries {crossed} name another tenant's parent"

    def _check_minted_once(self) -> None:
        """4. No (row, mint version) was ever minted twice, in any account or mode."""
        minted: Counter = Counter()
        for server in self.servers:
            for live in (False, True):
                book = server.emulator.account(None, livemode=live)
                page: dict[str, Any] = {"has_more": True, "data": []}
                while page["has_more"]:
                    params: dict[str, Any] = {"limit": 100}
                    if page["data"]:
                        params["starting_after"] = page["data"][-1]["id"]
                    page = book.list_payment_links(params)
                    for link in page["data"]:
                        meta = link["metadata"]
                        minted[
                            (meta.get("tenant_id"), meta.get("payment_link_row_id"), meta.get("mint_version"))
                        ] += 1
        twice = {key: count for key, count in minted.items() if count > 1}
        assert not twice, f"(tenant, row, mint version) minted more than once: {twice}"

    def _check_emails(self, messages: list[tuple[str, Any]], blast: bool) -> None:
        """2, 4 and 5 for what was just delivered: each email goes to the parent who owes every
        item in it, each item still owed with a link that takes payment, one email per parent per
        blast, and nothing of another tenant."""
        self.figures.emails += len(messages)
        if not messages:
            return
        with self.engine.connect() as connection:
            owed = owed_items(connection)
            by_address = {
                p.email.lower(): p
                for p in connection.execute(sa.select(parents).where(parents.c.email.is_not(None)))
            }
            rows = {
                r["stripe_payment_link_id"]: r
                for r in connection.execute(
                    sa.select(payment_links).where(payment_links.c.stripe_payment_link_id.is_not(None))
                ).mappings()
            }
            slugs = dict(connection.execute(sa.select(tenants.c.id, tenants.c.slug)).all())
            run_keys = set(
                connection.execute(
                    sa.select(email_log.c.run_key).where(
                        email_log.c.claimed_at >= self.step_started_here.replace(tzinfo=None)
                        if self.env.backend == "sqlite"
                        else email_log.c.claimed_at >= self.step_started_here,
                        email_log.c.email_type == "outstanding_balance",
                    )
                ).scalars()
            )
        per_recipient = Counter(recipient for recipient, _ in messages)
        for recipient, message in messages:
            parent = by_address.get(recipient)
            assert parent is not None, f"an email went to {recipient}, who is no parent"
            slug = slugs[parent.tenant_id]
            spec = next(s for s in CLUBS if s.slug == slug)
            text = text_of(message)
            for other in CLUBS:
                if other is not spec:
                    leaked = [w for w in (other.name, other.domain, *other.families) if w in text]
                    assert not leaked, f"{slug}'s email to {recipient} mentions {leaked}"
            assert f"office@{spec.domain}" in str(message["Reply-To"])
            for link_id in links_in(message):
                row = rows.get(link_id)
                assert row is not None, f"email to {recipient} carries {link_id}, no bill's current link"
                where = f"email to {recipient}: row {row['id']}"
                assert row["tenant_id"] == parent.tenant_id, f"{where} is another tenant's"
                assert row["status"].value == "pending", f"{where} is {row['status'].value}"
                item = owed.get((row["player_id"], row["product_id"]))
                assert item is not None, f"{where}: nothing is owed for it any more"
                assert item.parent_id == parent.id, f"{where} is owed by parent {item.parent_id}"
                assert item.amount_cents == row["amount_cents"], (
                    f"{where} asks {row['amount_cents']}, owed {item.amount_cents}"
                )
                found = self._holder("payment_links", link_id)
                assert found is not None, f"{where}: Stripe has no link {link_id}"
                link = found[1].retrieve_payment_link(link_id)
                spent = link["restrictions"]["completed_sessions"]["count"]
                # A payment no reconcile (or webhook) has applied yet is not known to paylinks.
                if not (spent and self.unreconciled[slug]):
                    assert link["active"] and not spent, f"{where}: its link cannot take payment"
        if blast:
            assert len(run_keys) <= 1, f"one blast step sent under several keys: {run_keys}"
            for run_key in run_keys:
                self.blast_recipients[run_key].update(per_recipient)
                twice = [r for r, n in self.blast_recipients[run_key].items() if n > 1]
                assert not twice, f"blast {run_key} mailed {twice} more than once"
        else:
            twice = [r for r, n in per_recipient.items() if n > 1]
            assert not twice, f"one resend mailed {twice} more than once"

    def _check_artifacts(self) -> None:
        """5. A run's artifacts name nothing of another tenant."""
        from prefect.client.orchestration import get_client
        from prefect.client.schemas.sorting import ArtifactSort

        with get_client(sync_client=True) as client:
            artifacts = client.read_artifacts(sort=ArtifactSort.CREATED_DESC, limit=40)
        for artifact in artifacts:
            if artifact.created is None or artifact.created < self.step_started or not artifact.key:
                continue
            owner = next((s for s in CLUBS if s.slug in artifact.key), None)
            if owner is None:
                continue
            text = f"{artifact.description}\n{artifact.data}"
            for other in CLUBS:
                if other is not owner:
                    leaked = [w for w in (other.name, other.domain, *other.families) if w in text]
                    assert not leaked, f"artifact {artifact.key} mentions {leaked}"


# -- the tests -----------------------------------------------------------------------------------
@pytest.fixture
def mail_desk() -> Iterator[tuple[MailDesk, int]]:
    desk = MailDesk()
    with smtp_server(desk) as port:
        yield desk, port


@pytest.fixture
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Task retries without their production pauses (seconds to minutes), so a fault costs little."""
    from prefect.tasks import Task

    import tasks.backfill
    import tasks.email
    import tasks.reconcile
    import tasks.reminders

    for module in (tasks.backfill, tasks.email, tasks.reconcile, tasks.reminders):
        for value in vars(module).values():
            if isinstance(value, Task) and value.retries:
                monkeypatch.setattr(value, "retry_delay_seconds", [0] * value.retries)


def run_club(env: Env, steps: int, soak: bool) -> None:
    per_example = STEPS_PER_EXAMPLE
    run_state_machine_as_test(
        lambda: ClubLives(env),
        settings=hypothesis_settings(
            # Some drawn actions find nothing to act on and are not steps (a "Pay all" to pay, a
            # family payment to refund), and Hypothesis ends some sequences early: a few spare.
            max_examples=max(1, -(-steps * 3 // (per_example * 2))) + 1,
            stateful_step_count=per_example,
            deadline=None,
            derandomize=not soak,
            database=None,
            phases=(Phase.explicit, Phase.generate) if soak else tuple(Phase),
            suppress_health_check=list(HealthCheck),
            report_multiple_bugs=False,
        ),
    )


def test_a_club_that_lives(
    capsys: pytest.CaptureFixture,
    database_url: str,
    engine: sa.Engine,
    mail_desk,
    quick_retries,
    tmp_path: Path,
) -> None:
    backend = sa.make_url(database_url).get_backend_name()
    desk, port = mail_desk
    figures = Figures()
    env = Env(backend, engine, database_url, desk, port, tmp_path, figures)
    wanted = SOAK_STEPS or CI_STEPS[backend]
    try:
        run_club(env, wanted, soak=bool(SOAK_STEPS))
    finally:
        print(figures.line(backend))  # in the report's captured output (-rA), under xdist too
        with capsys.disabled():  # and straight to the terminal, past output capture
            print("\n" + figures.line(backend))
    assert figures.steps >= wanted
