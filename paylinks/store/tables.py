"""Engine creation and the tables paylinks reads and writes.

The club tables (tenants, parents, players, products, orders) are the contract with the club
application; `price_tiers`, `payment_links`, `email_log` and `reconcile_cursors` are paylinks'
own. The alembic migrations under `sql/migrations` create the same tables; a test keeps the two
in step.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from paylinks.errors import ConfigurationError
from paylinks.vocabulary import (
    AllocationStatus,
    AuditAction,
    BlastStatus,
    EmailStatus,
    EmailType,
    FamilyCheckoutStatus,
    OptOutHow,
    PaidMethod,
    PaymentLinkStatus,
    PaymentStatus,
    RefundResolution,
    Role,
)


def utcnow() -> datetime:
    return datetime.now(UTC)


def dialect_insert(connection: Connection, table: sa.Table) -> Any:
    """An insert with `on_conflict_do_*` and `returning` for the engine's dialect (PostgreSQL or
    SQLite): both are called the same way, so the result is typed Any."""
    if connection.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def as_utc(moment: datetime) -> datetime:
    """A stored moment, aware: SQLite hands back naive UTC, PostgreSQL aware times."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _enum(enum_cls: type[enum.Enum], name: str) -> sa.Enum:
    # Store the enum's values (not member names) so SQL and Python agree on 'pending' etc.
    return sa.Enum(enum_cls, name=name, values_callable=lambda members: [m.value for m in members])


metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

Timestamp = sa.DateTime(timezone=True)

tenants = sa.Table(
    "tenants",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("slug", sa.String(64), nullable=False, unique=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("reply_to_email", sa.String(320), nullable=False),
    sa.Column("brand_color", sa.String(16), nullable=False, server_default="#1f4e8c"),
    sa.Column("logo_url", sa.String(1000), nullable=True),
    sa.Column("currency", sa.String(3), nullable=False, server_default="usd"),
    # The club's own Stripe (Connect) account, `acct_…`; NULL: the platform's account.
    sa.Column("stripe_account", sa.String(255), nullable=True),
    # The club's time zone (IANA name, e.g. America/Chicago); NULL: settings' club_timezone.
    sa.Column("timezone", sa.String(64), nullable=True),
    # A parent emailed an outstanding balance this many hours ago or less is held back from a
    # new blast (unless asked); NULL: settings' recent_email_hold_hours.
    sa.Column("recent_email_hold_hours", sa.Integer, nullable=True),
    # Reminders (paylinks' additions): a bill without a due date of its own is due this many days
    # after its order was raised; reminders go out only once the admin turns them on; the
    # cadence (days relative to the due date, "-7,0,3") and the sending hours ("8-20", local)
    # are kept as the admin typed them, NULL meaning the defaults.
    sa.Column("default_terms_days", sa.Integer, nullable=False, server_default="14"),
    sa.Column("reminders_enabled", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("reminder_days", sa.String(200), nullable=True),
    sa.Column("reminder_hours", sa.String(20), nullable=True),
)

parents = sa.Table(
    "parents",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("tenant_id", sa.Integer, sa.ForeignKey("tenants.id"), nullable=False, index=True),
    sa.Column("first_name", sa.String(100), nullable=False),
    sa.Column("last_name", sa.String(100), nullable=False),
    sa.Column("email", sa.String(320), nullable=True),
)

players = sa.Table(
    "players",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("tenant_id", sa.Integer, sa.ForeignKey("tenants.id"), nullable=False, index=True),
    sa.Column("parent_id", sa.Integer, sa.ForeignKey("parents.id"), nullable=True),
    sa.Column("first_name", sa.String(100), nullable=False),
    sa.Column("last_name", sa.String(100), nullable=False),
    sa.Column("team", sa.String(100), nullable=True),
    sa.Column("status", sa.String(20), nullable=False, server_default="registered"),
    sa.CheckConstraint("status IN ('signed', 'registered', 'withdrawn')", name="status"),
)

products = sa.Table(
    "products",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("tenant_id", sa.Integer, sa.ForeignKey("tenants.id"), nullable=False, index=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("description", sa.String(1000), nullable=False, server_default=""),
    sa.Column("amount_cents", sa.Integer, nullable=False),
    sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("bill_signed_players", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("stripe_product_id", sa.String(255), nullable=True),
    # The season's due date of this product's default fee (paylinks' addition; NULL: none).
    sa.Column("due_on", sa.Date, nullable=True),
)

orders = sa.Table(
    "orders",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("tenant_id", sa.Integer, sa.ForeignKey("tenants.id"), nullable=False, index=True),
    sa.Column("player_id", sa.Integer, sa.ForeignKey("players.id"), nullable=False),
    sa.Column("parent_id", sa.Integer, sa.ForeignKey("parents.id"), nullable=True),
    sa.Column("product_id", sa.Integer, sa.ForeignKey("products.id"), nullable=False),
    sa.Column("amount_cents", sa.Integer, nullable=False),
    sa.Column("status", sa.String(20), nullable=False, server_default="pending"),
    sa.Column("created_at", Timestamp, nullable=False, server_default=sa.func.now()),
    sa.Column("paid_at", Timestamp, nullable=True),
    # The order's own due date (paylinks' addition); NULL: its product's, else created + terms.
    sa.Column("due_on", sa.Date, nullable=True),
    sa.CheckConstraint("status IN ('pending', 'paid', 'cancelled')", name="status"),
)

price_tiers = sa.Table(
    "price_tiers",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("tenant_id", sa.Integer, sa.ForeignKey("tenants.id"), nullable=False, index=True),
    sa.Column("product_id", sa.Integer, sa.ForeignKey("products.id"), nullable=False),
    sa.Column("amount_cents", sa.Integer, nullable=False),
    sa.Column("stripe_price_id", sa.String(255), nullable=False),
    sa.Column("created_at", Timestamp, nullable=False, server_default=sa.func.now()),
    # A Stripe Price belongs to one account, in one mode, in one currency.
    sa.Column("currency", sa.String(3), nullable=False, server_default="usd"),
    sa.Column("stripe_account", sa.String(255), nullable=False, server_default=""),
    sa.Column("livemode", sa.Boolean, nullable=False, server_default=sa.false()),
    # The Stripe Product the price belongs to, in that account and mode.
    sa.Column("stripe_product_id", sa.String(255), nullable=True),
    sa.UniqueConstraint(
        "product_id",
        "amount_cents",
        "currency",
        "stripe_account",
        "livemode",
        name="uq_price_tiers_product_amount_account",
    ),
)

payment_links = sa.Table(
    "payment_links",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    # Indexed with status and parent_id below: ix_payment_links_tenant_status_parent.
    sa.Column("tenant_id", sa.Integer, sa.ForeignKey("tenants.id"), nullable=False),
    sa.Column("player_id", sa.Integer, sa.ForeignKey("players.id"), nullable=False),
    sa.Column("parent_id", sa.Integer, sa.ForeignKey("parents.id"), nullable=True),
    sa.Column("product_id", sa.Integer, sa.ForeignKey("products.id"), nullable=False),
    sa.Column("order_id", sa.Integer, sa.ForeignKey("orders.id"), nullable=True),
    sa.Column("description", sa.String(1000), nullable=False),
    sa.Column("amount_cents", sa.Integer, nullable=False),
    sa.Column("stripe_price_id", sa.String(255), nullable=True),
    sa.Column("stripe_payment_link_id", sa.String(255), nullable=True, unique=True),
    sa.Column("stripe_payment_link_url", sa.String(1000), nullable=True),
    sa.Column(
        "status",
        _enum(PaymentLinkStatus, "payment_link_status"),
        nullable=False,
        server_default=PaymentLinkStatus.pending.value,
    ),
    # Bumped each time the row's link is replaced (amount changed), so the new mint gets a
    # fresh idempotency key while a crashed mint of the same version still replays.
    sa.Column("mint_version", sa.Integer, nullable=False, server_default="1"),
    sa.Column("paid_at", Timestamp, nullable=True),
    sa.Column("stripe_checkout_session_id", sa.String(255), nullable=True),
    sa.Column("paid_amount_cents", sa.Integer, nullable=True),
    sa.Column("created_at", Timestamp, nullable=False, server_default=sa.func.now()),
    sa.Column("updated_at", Timestamp, nullable=False, server_default=sa.func.now()),
    # Where the link was minted: the Stripe account and mode. A row minted elsewhere (the key
    # moved from test to live, or to another account) is re-minted, never mailed.
    sa.Column("stripe_account", sa.String(255), nullable=True),
    sa.Column("livemode", sa.Boolean, nullable=True),
    # When the current mint_version was reserved: Stripe forgets idempotency keys after about
    # a day, so an older reservation first looks for a link Stripe already holds for it.
    sa.Column("reserved_at", Timestamp, nullable=True),
    # What the link's checkout page and receipt say the payment is for (the bill, the player, the
    # club), as minted or last updated at Stripe; NULL: minted before paylinks named the player.
    sa.Column("checkout_text", sa.String(1000), nullable=True),
    # How a paid bill was paid: at Stripe (card, bank debit; `stripe`: before paylinks recorded
    # which), or offline (cash, cheque) by whom, with a note.
    sa.Column("paid_method", _enum(PaidMethod, "paid_method"), nullable=True),
    sa.Column("paid_by", sa.String(320), nullable=True),
    sa.Column("paid_note", sa.Text, nullable=True),
    sa.UniqueConstraint(
        "player_id", "product_id", "tenant_id", name="uq_payment_links_player_product_tenant"
    ),
    # A tenant's rows by status, then by parent (migration 0014): the blast reads only a tenant's
    # open rows, a family page only one parent's, and every query by tenant alone uses its prefix.
    sa.Index("ix_payment_links_tenant_status_parent", "tenant_id", "status", "parent_id"),
)

payments = sa.Table(
    "payments",
    metadata,
    # The ledger: every payment Stripe reported (a completed checkout session on one of our
    # links), whatever became of it. A row's status is read from its bill and these.
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("tenant_id", sa.Integer, sa.ForeignKey("tenants.id"), nullable=False, index=True),
    sa.Column(
        "payment_link_row_id", sa.Integer, sa.ForeignKey("payment_links.id"), nullable=True, index=True
    ),
    sa.Column("stripe_account", sa.String(255), nullable=True),
    # The link it was paid through; NULL for a family checkout (`family_checkout_id`).
    sa.Column("stripe_payment_link_id", sa.String(255), nullable=True),
    sa.Column("checkout_session_id", sa.String(255), nullable=False, unique=True),
    sa.Column("payment_intent_id", sa.String(255), nullable=True, index=True),
    sa.Column("amount_cents", sa.Integer, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("status", _enum(PaymentStatus, "payment_status"), nullable=False),
    sa.Column("refunded_cents", sa.Integer, nullable=False, server_default="0"),
    sa.Column("dispute_status", sa.String(40), nullable=True),  # Stripe's: needs_response, won, lost...
    sa.Column("disputed_cents", sa.Integer, nullable=False, server_default="0"),
    # Money that arrived for a bill that was cancelled or already paid: the club owes it back.
    sa.Column("refund_due", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("refund_due_reason", sa.String(200), nullable=True),
    sa.Column("resolved_at", Timestamp, nullable=True),
    sa.Column("resolved_by", sa.String(320), nullable=True),
    # How it ended (at Stripe, by hand, as credit) and, apart, what the person who settled it wrote.
    sa.Column("resolution", _enum(RefundResolution, "refund_resolution"), nullable=True),
    sa.Column("resolution_note", sa.Text, nullable=True),
    sa.Column("paid_at", Timestamp, nullable=True),  # Stripe's time of completion
    sa.Column("created_at", Timestamp, nullable=False, server_default=sa.func.now()),
    sa.Column("updated_at", Timestamp, nullable=False, server_default=sa.func.now()),
    # A family's "Pay all" checkout: the payment is allocated to each bill it covered.
    sa.Column("family_checkout_id", sa.Integer, sa.ForeignKey("family_checkouts.id"), nullable=True),
    # Refunded at Stripe but not (yet) matched to whole bills: listed for the admin to pick.
    sa.Column("unallocated_refund_cents", sa.Integer, nullable=False, server_default="0"),
    # Its money paid a bill and the parent has not been sent the receipt yet (reconcile retries).
    sa.Column("receipt_due", sa.Boolean, nullable=False, server_default=sa.false()),
    # How it was paid: card (paid when the checkout completed) or bank debit (settled later);
    # NULL: recorded before paylinks kept it (migration 0018).
    sa.Column("paid_method", _enum(PaidMethod, "paid_method"), nullable=True),
)

payment_allocations = sa.Table(
    "payment_allocations",
    metadata,
    # What one payment's money does for each bill it covered: a link's payment has one, a family
    # checkout one per bill. A bill's status is decided from these (see payments/transitions.py).
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("tenant_id", sa.Integer, sa.ForeignKey("tenants.id"), nullable=False),
    sa.Column("payment_id", sa.Integer, sa.ForeignKey("payments.id"), nullable=False),
    sa.Column(
        "payment_link_row_id", sa.Integer, sa.ForeignKey("payment_links.id"), nullable=False, index=True
    ),
    sa.Column("amount_cents", sa.Integer, nullable=False),
    sa.Column("status", _enum(AllocationStatus, "allocation_status"), nullable=False),
    sa.Column("refund_due_reason", sa.String(200), nullable=True),
    sa.Column("refunded_cents", sa.Integer, nullable=False, server_default="0"),
    # The bill's own link when a family checkout took its money: deactivated at Stripe at once
    # (`link_closed_at`), so the bill cannot be paid twice through it.
    sa.Column("stripe_payment_link_id", sa.String(255), nullable=True),
    sa.Column("link_closed_at", Timestamp, nullable=True),
    sa.Column("created_at", Timestamp, nullable=False, server_default=sa.func.now()),
    sa.Column("updated_at", Timestamp, nullable=False, server_default=sa.func.now()),
    sa.UniqueConstraint("payment_id", "payment_link_row_id", name="uq_payment_allocations_payment_row"),
)

minted_links = sa.Table(
    "minted_links",
    metadata,
    # Every link ever minted for a row, so a payment on a link the row has since replaced (a
    # session opened before the re-mint) still finds its bill.
    sa.Column("stripe_payment_link_id", sa.String(255), primary_key=True),
    sa.Column("tenant_id", sa.Integer, sa.ForeignKey("tenants.id"), nullable=False),
    sa.Column(
        "payment_link_row_id", sa.Integer, sa.ForeignKey("payment_links.id"), nullable=False, index=True
    ),
    sa.Column("mint_version", sa.Integer, nullable=False),
    sa.Column("created_at", Timestamp, nullable=False, server_default=sa.func.now()),
)

stripe_key_accounts = sa.Table(
    "stripe_key_accounts",
    metadata,
    # Which account and mode an API key acts in, remembered by the key's SHA-256 (never the key),
    # so a run with nothing to do makes no Stripe request to find out.
    sa.Column("key_sha256", sa.String(64), primary_key=True),
    sa.Column("stripe_account", sa.String(255), nullable=False),
    sa.Column("livemode", sa.Boolean, nullable=False),
    sa.Column("seen_at", Timestamp, nullable=False, server_default=sa.func.now()),
)

stripe_events = sa.Table(
    "stripe_events",
    metadata,
    # Every Stripe event applied, by id: a webhook and reconcile, or a retried delivery, apply
    # each event once.
    sa.Column("event_id", sa.String(255), primary_key=True),
    sa.Column("stripe_account", sa.String(255), nullable=True),
    sa.Column("event_type", sa.String(100), nullable=False),
    sa.Column("stripe_created", sa.BigInteger, nullable=False),
    sa.Column("source", sa.String(20), nullable=False),  # "webhook" or "reconcile"
    sa.Column("applied_at", Timestamp, nullable=False, server_default=sa.func.now()),
)

blasts = sa.Table(
    "blasts",
    metadata,
    # One outstanding-balance blast: a run without a key resumes the tenant's unfinished one.
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("tenant_id", sa.Integer, sa.ForeignKey("tenants.id"), nullable=False, index=True),
    sa.Column("run_key", sa.String(200), nullable=False),
    sa.Column("transport", sa.String(20), nullable=False),  # outbox or smtp: each its own blast
    sa.Column("status", _enum(BlastStatus, "blast_status"), nullable=False),
    sa.Column("started_at", Timestamp, nullable=False, server_default=sa.func.now()),
    sa.Column("finished_at", Timestamp, nullable=True),
    sa.UniqueConstraint("tenant_id", "run_key", "transport", name="uq_blasts_tenant_run_key"),
)

email_log = sa.Table(
    "email_log",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("tenant_id", sa.Integer, sa.ForeignKey("tenants.id"), nullable=False),
    sa.Column("email_type", _enum(EmailType, "email_type"), nullable=False),
    sa.Column("parent_id", sa.Integer, sa.ForeignKey("parents.id"), nullable=True),
    sa.Column("recipient", sa.String(320), nullable=False),
    sa.Column("subject", sa.String(500), nullable=False),
    sa.Column("status", _enum(EmailStatus, "email_status"), nullable=False),
    sa.Column("run_key", sa.String(200), nullable=False),
    sa.Column("item_count", sa.Integer, nullable=False, server_default="0"),
    sa.Column("total_cents", sa.Integer, nullable=False, server_default="0"),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("created_at", Timestamp, nullable=False, server_default=sa.func.now()),
    sa.Column("sent_at", Timestamp, nullable=True),
    # The transport that carried it: an outbox "send" never counts as delivered for an SMTP
    # blast of the same key, so the transport is part of the claim.
    sa.Column("transport", sa.String(20), nullable=False, server_default="smtp"),
    # When a run took the claim; a claim older than the lease may be taken over (and is reported).
    sa.Column("claimed_at", Timestamp, nullable=True),
    # One row per parent per blast: the claim that keeps a rerun from mailing anyone twice.
    sa.UniqueConstraint(
        "tenant_id", "email_type", "run_key", "transport", "parent_id", name="uq_email_log_once_per_run"
    ),
    # A parent's emails (migration 0019): the check before each send reads only that parent's
    # rows, not every email the tenant ever had; a query by tenant alone uses its prefix.
    sa.Index("ix_email_log_tenant_parent", "tenant_id", "parent_id"),
)

reconcile_cursors = sa.Table(
    "reconcile_cursors",
    metadata,
    # One per Stripe account and mode: reconcile reads each account's events once, for every
    # tenant on it (the platform's own account is named by its id, like a Connect account).
    sa.Column("stripe_account", sa.String(255), primary_key=True),
    sa.Column("livemode", sa.Boolean, primary_key=True),
    # Stripe `created` (unix seconds) of the newest event already applied.
    sa.Column("last_event_created", sa.BigInteger, nullable=False),
    sa.Column("last_event_id", sa.String(255), nullable=True),
    sa.Column("updated_at", Timestamp, nullable=False, server_default=sa.func.now()),
)


# -- the family's side: a page per parent without a password, and "Pay all" in one checkout -------

family_tokens = sa.Table(
    "family_tokens",
    metadata,
    # The parent's page `/f/<token>`: the token is derived from a random salt and a secret the
    # database never holds (so a copy of the database opens no page); only its hash is stored,
    # which is what a request is looked up by. Rotating replaces the salt: the old url dies at once.
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("tenant_id", sa.Integer, sa.ForeignKey("tenants.id"), nullable=False),
    sa.Column("parent_id", sa.Integer, sa.ForeignKey("parents.id"), nullable=False),
    sa.Column("salt", sa.String(64), nullable=False),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("created_at", Timestamp, nullable=False, server_default=sa.func.now()),
    sa.Column("created_by", sa.String(320), nullable=True),  # who rotated it (NULL: made on first use)
    sa.UniqueConstraint("tenant_id", "parent_id", name="uq_family_tokens_tenant_parent"),
)

family_checkouts = sa.Table(
    "family_checkouts",
    metadata,
    # One "Pay all" Checkout Session, reserved here before it is created at Stripe: its
    # idempotency key is derived from the set of rows and their mint_versions, so a double click
    # opens the same session. Reconcile and the webhook find it by its session id or by the
    # session's metadata (`paylinks_family_checkout`).
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("tenant_id", sa.Integer, sa.ForeignKey("tenants.id"), nullable=False, index=True),
    sa.Column("parent_id", sa.Integer, sa.ForeignKey("parents.id"), nullable=False),
    sa.Column("idempotency_key", sa.String(200), nullable=False, unique=True),
    sa.Column("status", _enum(FamilyCheckoutStatus, "family_checkout_status"), nullable=False),
    sa.Column("stripe_account", sa.String(255), nullable=True),
    sa.Column("livemode", sa.Boolean, nullable=True),
    sa.Column("checkout_session_id", sa.String(255), nullable=True, unique=True),
    sa.Column("url", sa.String(1000), nullable=True),
    sa.Column("amount_total_cents", sa.Integer, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("expires_at", Timestamp, nullable=True),
    sa.Column("created_at", Timestamp, nullable=False, server_default=sa.func.now()),
    sa.Column("updated_at", Timestamp, nullable=False, server_default=sa.func.now()),
)

family_checkout_rows = sa.Table(
    "family_checkout_rows",
    metadata,
    # Each bill a family checkout covers, at the terms it was offered (amount, mint_version): a
    # bill that changed since is never paid at the old terms.
    sa.Column("family_checkout_id", sa.Integer, sa.ForeignKey("family_checkouts.id"), primary_key=True),
    sa.Column("payment_link_row_id", sa.Integer, sa.ForeignKey("payment_links.id"), primary_key=True),
    sa.Column("mint_version", sa.Integer, nullable=False),
    sa.Column("amount_cents", sa.Integer, nullable=False),
    sa.Column("stripe_price_id", sa.String(255), nullable=False),
)


# -- reminders: who asked to get none, and the one-click links that ask it -----------------------

reminder_optouts = sa.Table(
    "reminder_optouts",
    metadata,
    # A parent who gets no reminders (still blasts, resends and receipts): when, and how it was
    # asked. Undoing it deletes the row.
    sa.Column("tenant_id", sa.Integer, sa.ForeignKey("tenants.id"), primary_key=True),
    sa.Column("parent_id", sa.Integer, sa.ForeignKey("parents.id"), primary_key=True),
    sa.Column("opted_out_at", Timestamp, nullable=False),
    sa.Column("how", _enum(OptOutHow, "reminder_optout_how"), nullable=False),
)

reminder_tokens = sa.Table(
    "reminder_tokens",
    metadata,
    # The "stop reminders" link of each reminder sent: a random token per email, only its SHA-256
    # kept, so neither the database nor a parent's id opens anyone's link.
    sa.Column("token_sha256", sa.String(64), primary_key=True),
    sa.Column("tenant_id", sa.Integer, sa.ForeignKey("tenants.id"), nullable=False),
    sa.Column("parent_id", sa.Integer, sa.ForeignKey("parents.id"), nullable=False),
    sa.Column("created_at", Timestamp, nullable=False, server_default=sa.func.now()),
)


def create_db_engine(database_url: str) -> Engine:
    """An engine for `database_url`; SQLite gets foreign keys on, a busy timeout, and WAL with
    `synchronous=NORMAL`: a commit is kept when the process dies, and costs no fsync (0.23 →
    0.02 ms; a blast commits twice a parent). Only a power cut can lose the last commits, never
    half of one. PostgreSQL keeps its own (every commit flushed)."""
    url = sa.make_url(database_url)
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            from pathlib import Path

            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, connect_args={"timeout": 30})

        @sa.event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record):  # pragma: no cover - trivial
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        return engine
    return sa.create_engine(url, pool_pre_ping=True)


def check_database(engine: Engine) -> None:
    """Fail early, with one clear message, when the database cannot be reached or is not migrated."""
    try:
        with engine.connect() as connection:
            inspector = sa.inspect(connection)
            missing = [t for t in ("tenants", "payment_links") if not inspector.has_table(t)]
    except sa.exc.OperationalError as error:
        raise ConfigurationError(
            f"cannot reach the database at {engine.url.render_as_string(hide_password=True)}: "
            f"{_first_line(error.orig)}. Check PAYLINKS_DATABASE_URL."
        ) from None
    if missing:
        raise ConfigurationError(
            f"the database at {engine.url.render_as_string(hide_password=True)} has no "
            f"{', '.join(missing)} table; run `paylinks db upgrade` first."
        )


def _first_line(error: object) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


# -- the club office: people, their roles per tenant, API tokens, the audit log ----------------


users = sa.Table(
    "users",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("email", sa.String(320), nullable=False, unique=True),  # normalized, lower case
    sa.Column("password_hash", sa.String(255), nullable=False),  # argon2id, never the password
    # Set for the one-time password `paylinks user add` prints: the first login must replace it.
    sa.Column("password_is_temporary", sa.Boolean, nullable=False, server_default=sa.true()),
    # Bumped on logout and password change: every session cookie signed before it stops working.
    sa.Column("session_epoch", sa.Integer, nullable=False, server_default="1"),
    sa.Column("created_at", Timestamp, nullable=False, server_default=sa.func.now()),
    sa.Column("disabled_at", Timestamp, nullable=True),
)

user_roles = sa.Table(
    "user_roles",
    metadata,
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), primary_key=True),
    sa.Column("tenant_id", sa.Integer, sa.ForeignKey("tenants.id"), primary_key=True),
    sa.Column("role", _enum(Role, "office_role"), nullable=False),
)

api_tokens = sa.Table(
    "api_tokens",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False, index=True),
    # SHA-256 of the token (hex): the token itself is shown once and never stored.
    sa.Column("token_sha256", sa.String(64), nullable=False, unique=True),
    sa.Column("created_at", Timestamp, nullable=False, server_default=sa.func.now()),
    sa.Column("last_used_at", Timestamp, nullable=True),
    sa.Column("revoked_at", Timestamp, nullable=True),
)

api_token_tenants = sa.Table(
    "api_token_tenants",
    metadata,
    # The tenants a token acts in; the holder's role there is read at each request.
    sa.Column("token_id", sa.Integer, sa.ForeignKey("api_tokens.id"), primary_key=True),
    sa.Column("tenant_id", sa.Integer, sa.ForeignKey("tenants.id"), primary_key=True),
)

audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("at", Timestamp, nullable=False, server_default=sa.func.now()),
    sa.Column("tenant_id", sa.Integer, sa.ForeignKey("tenants.id"), nullable=True, index=True),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), nullable=True),
    sa.Column("actor", sa.String(320), nullable=False),  # the person's email, or "cli" / "api token N"
    sa.Column("action", _enum(AuditAction, "audit_action"), nullable=False),
    sa.Column("detail", sa.Text, nullable=False, server_default=""),  # what, in words; never a secret
    sa.Column("client_address", sa.String(100), nullable=True),  # from where
)

login_attempts = sa.Table(
    "login_attempts",
    metadata,
    # Attempts of one account from one address in the current window, counted before the
    # password is checked (one atomic upsert), so parallel guesses cannot pass the limit.
    sa.Column("account", sa.String(320), primary_key=True),
    sa.Column("client_address", sa.String(100), primary_key=True),
    sa.Column("window_started_at", Timestamp, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
)

api_test_sends = sa.Table(
    "api_test_sends",
    metadata,
    # Test emails an API token has asked for in its current hour, counted atomically before the
    # run starts (one upsert), so every office process shares the limit.
    sa.Column("token_id", sa.Integer, sa.ForeignKey("api_tokens.id"), primary_key=True),
    sa.Column("window_started_at", Timestamp, nullable=False),
    sa.Column("sends", sa.Integer, nullable=False),
)

blast_claims = sa.Table(
    "blast_claims",
    metadata,
    # The one send to every parent a tenant may have running: claimed (insert or take-over) before
    # the run starts; the run's id is filled in once it has one.
    sa.Column("tenant_id", sa.Integer, sa.ForeignKey("tenants.id"), primary_key=True),
    sa.Column("flow_run_id", sa.String(36), nullable=True),
    sa.Column("claimed_at", Timestamp, nullable=False),
    sa.Column("claimed_by", sa.String(320), nullable=False),
)

login_failures = sa.Table(
    "login_failures",
    metadata,
    # One row per failed login, kept for the throttle's window: per account and per address.
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("account", sa.String(320), nullable=False, index=True),
    sa.Column("client_address", sa.String(100), nullable=False, index=True),
    sa.Column("failed_at", Timestamp, nullable=False, index=True),
)
