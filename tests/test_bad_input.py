"""The catalogue of bad input: each row is refused with one line naming what to fix, and nothing is
written (no row, no email in the outbox, no object at Stripe).

Rows drive the `paylinks` command as an operator would (in-process through Typer's runner, a few
as real processes), or a flow through Prefect's parameter validation. Rows about the club's own
data follow the rule for data instead: the run carries on, the output names the row at fault and
why, and nothing unsafe happens.
"""

from __future__ import annotations

import email
import email.policy
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from cli.main import app
from flows.backfill_payment_links import backfill_payment_links
from flows.outstanding_balance_email import outstanding_balance_email
from flows.reconcile_payments import reconcile_payments
from flows.resend_payment_link import resend_payment_link
from paylinks.club.tenants import tenant_by_slug
from paylinks.demo.data import seed_demo
from paylinks.settings import Settings
from paylinks.store.tables import orders, parents, players, products
from tests.helpers import cli_env, run_cli, settings_env

TENANT = "riverside-hoops"
REAL_STRIPE_KEY_LOOKALIKE = "sk_test_51NotARealKeyButLooksLikeOne00"
DB_PASSWORD = "db-pass-never-shown"


@pytest.fixture
def club(settings: Settings, engine: sa.Engine) -> int:
    """The demo club in the test's database; returns TENANT's id."""
    seed_demo(engine, settings.club_timezone)
    with engine.connect() as connection:
        return tenant_by_slug(connection, TENANT).id


def everything_written(settings: Settings, engine: sa.Engine, emulator) -> dict[str, Any]:
    """Every row of every table, every file in the outbox, every object at the emulator."""
    with engine.connect() as connection:
        metadata = sa.MetaData()
        metadata.reflect(connection)
        tables = {
            name: sorted(repr(tuple(row)) for row in connection.execute(sa.select(table)))
            for name, table in metadata.tables.items()
        }
    outbox = Path(settings.outbox_dir)
    files = sorted(str(p.relative_to(outbox)) for p in outbox.rglob("*")) if outbox.exists() else []
    return {"tables": tables, "outbox": files, "stripe": emulator.emulator.counts()}


@dataclass(frozen=True)
class Result:
    exit_code: int
    stdout: str
    stderr: str
    traceback: bool


def invoke(settings: Settings, args: list[str], env: dict[str, str | None] | None = None) -> Result:
    """`paylinks ARGS` in-process, with the test's settings as its environment plus `env`."""
    environment: dict[str, str | None] = dict(settings_env(settings))
    environment.update(env or {})
    result = CliRunner().invoke(app, args, env=environment)
    escaped = result.exception is not None and not isinstance(result.exception, SystemExit)
    return Result(result.exit_code, result.stdout, result.stderr, escaped or "Traceback" in result.output)


def assert_one_clear_line(result: Result, *expected: str, exit_code: int = 2) -> str:
    assert not result.traceback, result.stderr
    assert result.exit_code == exit_code, (result.exit_code, result.stdout, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    line = lines[0]
    assert line.startswith("error: "), line
    for words in expected:
        assert words in line, line
    return line


# -- rows that drive the command -------------------------------------------------------------
@dataclass(frozen=True)
class Row:
    args: list[str]
    expected: tuple[str, ...]
    env: dict[str, str | None] = field(default_factory=dict)
    never_shown: tuple[str, ...] = ()


UNREACHABLE_POSTGRES = f"postgresql+psycopg://paylinks:{DB_PASSWORD}@127.0.0.1:1/club"
LOOKUP = ["lookup", "--tenant", TENANT]

CLI_ROWS: dict[str, Row] = {
    # The player search (the known tracebacks first).
    "lookup-superscript-two": Row([*LOOKUP, "²"], ("no player matches '²' in riverside-hoops",)),
    "lookup-20-digit-id": Row(
        [*LOOKUP, "12345678901234567890"], ("no player matches '12345678901234567890'",)
    ),
    "lookup-empty": Row([*LOOKUP, "  "], ("give a player id or part of the player's name",)),
    "lookup-sql-quote": Row([*LOOKUP, "' OR '1'='1"], ("no player matches", "OR '1'='1")),
    "lookup-sql-drop-table": Row(
        [*LOOKUP, "x'; DROP TABLE players; --"], ("no player matches", "DROP TABLE players")
    ),
    "lookup-like-wildcard": Row([*LOOKUP, "%"], ("no player matches '%'",)),
    "resend-sql-shaped": Row(["resend", "--tenant", TENANT, "1 OR 1=1"], ("no player matches '1 OR 1=1'",)),
    "unknown-tenant": Row(
        ["backfill", "--tenant", "no-such-club", "--commit"],
        ("unknown tenant 'no-such-club'", "known tenants: northside-eagles, riverside-hoops"),
    ),
    "unknown-tenant-with-markup": Row(
        ["lookup", "--tenant", "[/bold]", "Ava"], ("unknown tenant '[/bold]'",)
    ),
    "invalid-test-email": Row(
        ["blast", "--tenant", TENANT, "--test-email", "treasurer-at-club"],
        ("--test-email 'treasurer-at-club' is not a valid email address", "@-sign"),
    ),
    "test-email-with-header": Row(
        ["blast", "--tenant", TENANT, "--test-email", "me@club.example\r\nBcc: all@x.example"],
        ("--test-email", "is not a valid email address"),
    ),
    "test-email-and-send": Row(
        ["blast", "--tenant", TENANT, "--test-email", "me@club.example", "--send"],
        ("choose --test-email", "or --send", "not both"),
    ),
    "invalid-resend-to": Row(
        ["resend", "--tenant", TENANT, "--to", "nobody@", "Ava"],
        ("--to 'nobody@' is not a valid email address",),
    ),
    # A club's reminders: the cadence and hours are checked before anything is saved.
    "reminders-days-out-of-range": Row(
        ["reminders", "set", "--tenant", TENANT, "--days", "-7,0,200"],
        (f"tenant {TENANT}: reminder_days: 200 is outside -90..+180 days of the due date",),
    ),
    "reminders-days-words": Row(
        ["reminders", "set", "--tenant", TENANT, "--days", "-7,weekly"],
        (f"tenant {TENANT}: reminder_days: 'weekly' is not a whole number of days",),
    ),
    "reminders-hours-backwards": Row(
        ["reminders", "set", "--tenant", TENANT, "--hours", "20-8", "--on"],
        (f"tenant {TENANT}: reminder_hours", "the first hour must come before the second"),
    ),
    "reminders-set-nothing": Row(["reminders", "set", "--tenant", TENANT], ("say what to set",)),
    "remind-as-of-nonsense": Row(
        ["remind", "--tenant", TENANT, "--as-of", "tomorrowish"],
        ("--as-of 'tomorrowish' is not a date and time",),
    ),
    "remind-unknown-tenant": Row(["remind", "--tenant", "no-such-club"], ("unknown tenant 'no-such-club'",)),
    # Settings that are malformed.
    "database-url-nonsense": Row(
        [*LOOKUP, "Ava"],
        ("PAYLINKS_DATABASE_URL is not a database URL",),
        {"PAYLINKS_DATABASE_URL": "nonsense"},
    ),
    "database-url-mysql": Row(
        [*LOOKUP, "Ava"],
        ("PAYLINKS_DATABASE_URL names a mysql database",),
        {"PAYLINKS_DATABASE_URL": f"mysql://club:{DB_PASSWORD}@db.example/club"},
        never_shown=(DB_PASSWORD,),
    ),
    "database-unreachable": Row(
        [*LOOKUP, "Ava"],
        (
            "cannot reach the database at postgresql+psycopg://paylinks:***@127.0.0.1:1/club",
            "PAYLINKS_DATABASE_URL",
        ),
        {"PAYLINKS_DATABASE_URL": UNREACHABLE_POSTGRES},
        never_shown=(DB_PASSWORD,),
    ),
    "stripe-max-rps-negative": Row(
        [*LOOKUP, "Ava"], ("PAYLINKS_STRIPE_MAX_RPS", "greater than 0"), {"PAYLINKS_STRIPE_MAX_RPS": "-1"}
    ),
    "stripe-max-rps-zero": Row(
        [*LOOKUP, "Ava"], ("PAYLINKS_STRIPE_MAX_RPS", "greater than 0"), {"PAYLINKS_STRIPE_MAX_RPS": "0"}
    ),
    "stripe-max-rps-words": Row(
        [*LOOKUP, "Ava"], ("PAYLINKS_STRIPE_MAX_RPS", "valid number"), {"PAYLINKS_STRIPE_MAX_RPS": "fast"}
    ),
    "mint-batch-size-zero": Row(
        ["backfill"], ("PAYLINKS_STRIPE_MINT_BATCH_SIZE",), {"PAYLINKS_STRIPE_MINT_BATCH_SIZE": "0"}
    ),
    "email-transport-unknown": Row(
        [*LOOKUP, "Ava"],
        ("PAYLINKS_EMAIL_TRANSPORT", "'outbox' or 'smtp'"),
        {"PAYLINKS_EMAIL_TRANSPORT": "pigeon"},
    ),
    "smtp-port-out-of-range": Row(
        [*LOOKUP, "Ava"], ("PAYLINKS_SMTP_PORT", "65535"), {"PAYLINKS_SMTP_PORT": "70000"}
    ),
    "stripe-api-base-not-a-url": Row(
        [*LOOKUP, "Ava"],
        ("PAYLINKS_STRIPE_API_BASE must be an http(s) URL",),
        {"PAYLINKS_STRIPE_API_BASE": "stripe"},
    ),
    "stripe-key-publishable": Row(
        ["backfill", "--commit"],
        ("PAYLINKS_STRIPE_API_KEY is not a Stripe secret key",),
        {"PAYLINKS_STRIPE_API_KEY": "pk_test_51Publishable0000"},
        never_shown=("pk_test_51Publishable0000",),
    ),
    "stripe-key-with-line-break": Row(
        ["backfill", "--commit"],
        ("PAYLINKS_STRIPE_API_KEY is not a Stripe secret key",),
        {"PAYLINKS_STRIPE_API_KEY": REAL_STRIPE_KEY_LOOKALIKE + "\n"},
        never_shown=(REAL_STRIPE_KEY_LOOKALIKE,),
    ),
    # Settings that are dangerous rather than malformed.
    "stripe-api-base-plain-http-elsewhere": Row(
        ["backfill", "--commit"],
        ("PAYLINKS_STRIPE_API_BASE is plain http to another machine", "Stripe key in clear"),
        {"PAYLINKS_STRIPE_API_BASE": "http://stripe.example.com"},
        never_shown=("sk_test_paylinks_tests",),
    ),
    "live-key-to-a-host-that-is-not-stripe": Row(
        ["backfill", "--commit"],
        ("live Stripe key to stripe-proxy.example.com, which is not Stripe",),
        {
            "PAYLINKS_STRIPE_API_BASE": "https://stripe-proxy.example.com",
            "PAYLINKS_STRIPE_API_KEY": "sk_live_abc123",
        },
        never_shown=("sk_live_abc123",),
    ),
    "email-from-not-an-address": Row(
        ["blast", "--tenant", TENANT],
        ("PAYLINKS_EMAIL_FROM is not a valid From address",),
        {"PAYLINKS_EMAIL_FROM": "Club billing"},
    ),
    "email-from-with-header": Row(
        ["blast", "--tenant", TENANT],
        ("PAYLINKS_EMAIL_FROM must be one line",),
        {"PAYLINKS_EMAIL_FROM": "billing@club.example\r\nBcc: everyone@x.example"},
    ),
    "smtp-password-in-clear": Row(
        ["blast", "--tenant", TENANT, "--send"],
        (
            "PAYLINKS_SMTP_SECURITY is none while a username or password is set for mail.example.com",
            "set PAYLINKS_SMTP_SECURITY=starttls or ssl",
        ),
        {
            "PAYLINKS_EMAIL_TRANSPORT": "smtp",
            "PAYLINKS_SMTP_HOST": "mail.example.com",
            "PAYLINKS_SMTP_USERNAME": "billing",
            "PAYLINKS_SMTP_PASSWORD": "smtp-pass-never-shown",
            "PAYLINKS_SMTP_SECURITY": "none",
        },
        never_shown=("smtp-pass-never-shown",),
    ),
    "stripe-key-missing": Row(
        ["backfill", "--commit"],
        ("PAYLINKS_STRIPE_API_KEY is not set",),
        {"PAYLINKS_STRIPE_API_KEY": None, "PAYLINKS_STRIPE_API_BASE": None},
    ),
}


@pytest.mark.parametrize("row", CLI_ROWS.values(), ids=CLI_ROWS.keys())
def test_bad_input_to_the_command(settings, engine, emulator, club, row: Row):
    before = everything_written(settings, engine, emulator)
    result = invoke(settings, row.args, row.env)
    assert_one_clear_line(result, *row.expected)
    for secret in row.never_shown:
        assert secret not in result.stdout + result.stderr
    assert everything_written(settings, engine, emulator) == before


def test_sqlite_file_that_does_not_exist_is_named_and_not_created(settings, engine, emulator, club, tmp_path):
    missing = tmp_path / "typo" / "paylinks.db"
    result = invoke(settings, [*LOOKUP, "Ava"], {"PAYLINKS_DATABASE_URL": f"sqlite:///{missing}"})
    assert_one_clear_line(result, f"there is no SQLite database at {missing}", "PAYLINKS_DATABASE_URL")
    assert not missing.parent.exists()


def test_rejected_stripe_key_stops_before_anything_is_written(settings, engine, emulator, club):
    from stripe_emulator import EmulatorServer

    with EmulatorServer(host="127.0.0.1", port=0, api_key="sk_test_the_right_one") as strict:
        before = everything_written(settings, engine, strict)
        result = invoke(
            settings,
            ["backfill", "--tenant", TENANT, "--commit"],
            {"PAYLINKS_STRIPE_API_BASE": strict.url, "PAYLINKS_STRIPE_API_KEY": REAL_STRIPE_KEY_LOOKALIKE},
        )
        assert_one_clear_line(result, "Stripe rejected the API key", "PAYLINKS_STRIPE_API_KEY")
        assert REAL_STRIPE_KEY_LOOKALIKE not in result.stdout + result.stderr
        assert everything_written(settings, engine, strict) == before


# -- a few rows as real processes, as an operator meets them ----------------------------------
PROCESS_ROWS = {
    "lookup-20-digit-id": (
        [*LOOKUP, "98765432109876543210"],
        {},
        "no player matches '98765432109876543210' in riverside-hoops",
    ),
    "database-url-nonsense": (
        [*LOOKUP, "Ava"],
        {"PAYLINKS_DATABASE_URL": "nonsense"},
        "is not a database URL",
    ),
    "stripe-max-rps-negative": (["backfill"], {"PAYLINKS_STRIPE_MAX_RPS": "-1"}, "PAYLINKS_STRIPE_MAX_RPS"),
}


@pytest.mark.slow
@pytest.mark.parametrize("row", PROCESS_ROWS.values(), ids=PROCESS_ROWS.keys())
def test_bad_input_to_a_real_process(settings, engine, emulator, club, tmp_path, row):
    args, env, expected = row
    before = everything_written(settings, engine, emulator)
    result = run_cli(args, cli_env(tmp_path, **env))
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines == [lines[0]] and lines[0].startswith("error: ") and expected in lines[0], result.stderr
    assert everything_written(settings, engine, emulator) == before


# -- rows that drive a flow through Prefect's parameter validation -----------------------------
def _flow_calls() -> dict[str, tuple[Callable[[], Any], tuple[str, ...]]]:
    return {
        "blast-invalid-test-email": (
            lambda: outstanding_balance_email(tenant=TENANT, test_email="treasurer-at-club"),
            ("test_email", "'treasurer-at-club' is not a valid email address"),
        ),
        "backfill-tenant-not-a-slug": (
            lambda: backfill_payment_links(tenant="Riverside Hoops!", commit=True),
            ("tenant", "'Riverside Hoops!' is not a tenant slug"),
        ),
        "reconcile-tenant-sql-shaped": (
            lambda: reconcile_payments(tenant="x' OR '1'='1"),
            ("tenant", "is not a tenant slug"),
        ),
        "resend-empty-player": (
            lambda: resend_payment_link(tenant=TENANT, player=""),
            ("player", "at least 1 character"),
        ),
        "resend-invalid-to": (
            lambda: resend_payment_link(tenant=TENANT, player="Ava", to="parent@@example.com"),
            ("to", "is not a valid email address"),
        ),
    }


FLOW_ROWS = [
    "blast-invalid-test-email",
    "backfill-tenant-not-a-slug",
    "reconcile-tenant-sql-shaped",
    "resend-empty-player",
    "resend-invalid-to",
]


@pytest.mark.parametrize("name", FLOW_ROWS)
def test_bad_parameter_refuses_the_flow_run_before_it_starts(settings, engine, emulator, club, name):
    from prefect.exceptions import ParameterTypeError

    call, expected = _flow_calls()[name]
    before = everything_written(settings, engine, emulator)
    with pytest.raises(ParameterTypeError) as refused:
        call()
    for words in expected:
        assert words in str(refused.value)
    assert everything_written(settings, engine, emulator) == before


def test_a_deployment_run_with_a_bad_test_email_is_refused_when_created(settings, engine, emulator, club):
    """The server's own check (enforce_parameter_schema): no flow run exists afterwards."""
    import asyncio

    from prefect.client.orchestration import get_client
    from prefect.exceptions import PrefectHTTPStatusError

    deployment_id = outstanding_balance_email.to_deployment(
        name="bad-input-catalogue", enforce_parameter_schema=True
    ).apply()

    async def create_run() -> int:
        async with get_client() as client:
            with pytest.raises(PrefectHTTPStatusError) as refused:
                await client.create_flow_run_from_deployment(
                    deployment_id, parameters={"tenant": TENANT, "test_email": "treasurer-at-club"}
                )
            assert refused.value.response.status_code == 409
            assert "test_email" in refused.value.response.text
            from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId

            runs = await client.read_flow_runs(
                deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id]))
            )
            return len(runs)

    before = everything_written(settings, engine, emulator)
    assert asyncio.run(create_run()) == 0
    assert everything_written(settings, engine, emulator) == before


# -- the club's own data: the run carries on, and names the row at fault ------------------------
def _first_signed_player(connection: sa.Connection, tenant_id: int) -> sa.RowMapping:
    return (
        connection.execute(
            sa.select(players)
            .where(
                players.c.tenant_id == tenant_id,
                players.c.status == "signed",
                players.c.parent_id.is_not(None),
            )
            .order_by(players.c.id)
        )
        .mappings()
        .first()
    )


def _add_order(connection: sa.Connection, tenant_id: int, amount_cents: int) -> int:
    player = _first_signed_player(connection, tenant_id)
    product_id = connection.execute(
        sa.insert(products).values(
            tenant_id=tenant_id, name="Tournament fee", amount_cents=5000, bill_signed_players=False
        )
    ).inserted_primary_key[0]
    return connection.execute(
        sa.insert(orders).values(
            tenant_id=tenant_id,
            player_id=player["id"],
            parent_id=player["parent_id"],
            product_id=product_id,
            amount_cents=amount_cents,
        )
    ).inserted_primary_key[0]


def skipped_reason(stdout: str, order_id: int) -> str:
    """The reason the "Rows skipped" table gives for this order."""
    for _player, _product, order, reason in table_rows(stdout, "Rows skipped"):
        if order == str(order_id):
            return reason
    raise AssertionError(f"order {order_id} is not among the rows skipped:\n{stdout}")


AMOUNT_ROWS = {"zero": 0, "negative": -2500, "above-stripe-maximum": 100_000_000}


@pytest.mark.storage  # amounts near the column's range
@pytest.mark.parametrize("amount_cents", AMOUNT_ROWS.values(), ids=AMOUNT_ROWS.keys())
def test_an_order_with_an_impossible_amount_is_named_and_the_rest_are_billed(
    settings, engine, emulator, club, amount_cents
):
    with engine.begin() as connection:
        order_id = _add_order(connection, club, amount_cents)
    result = invoke(settings, ["backfill", "--tenant", TENANT, "--commit"])
    assert not result.traceback, result.stderr
    assert result.exit_code == 0, result.stdout + result.stderr
    reason = skipped_reason(result.stdout, order_id)
    assert ("order has a non-positive amount" if amount_cents <= 0 else "above Stripe's maximum") in reason
    with engine.connect() as connection:
        billed = connection.execute(
            sa.text("SELECT COUNT(*) FROM payment_links WHERE order_id = :o"), {"o": order_id}
        ).scalar_one()
        others = connection.execute(
            sa.text("SELECT COUNT(*) FROM payment_links WHERE stripe_payment_link_id IS NOT NULL")
        ).scalar_one()
    assert billed == 0
    assert others > 0 and emulator.emulator.counts()["payment_links"] == others


def _outbox_messages(settings: Settings) -> list[email.message.EmailMessage]:
    return [
        email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        for path in sorted(Path(settings.outbox_dir).rglob("*.eml"))
    ]


def _rename_first_family(engine: sa.Engine, tenant_id: int, player_first: str, parent_first: str) -> int:
    with engine.begin() as connection:
        player = _first_signed_player(connection, tenant_id)
        connection.execute(
            sa.update(players).where(players.c.id == player["id"]).values(first_name=player_first)
        )
        connection.execute(
            sa.update(parents).where(parents.c.id == player["parent_id"]).values(first_name=parent_first)
        )
        return int(player["parent_id"])


def _blast(settings: Settings, engine: sa.Engine, emulator) -> Result:
    assert invoke(settings, ["backfill", "--tenant", TENANT, "--commit"]).exit_code == 0
    return invoke(settings, ["blast", "--tenant", TENANT, "--send", "--blast-key", "catalogue"])


def _message_to(settings: Settings, address: str) -> email.message.EmailMessage:
    (message,) = [m for m in _outbox_messages(settings) if address in str(m["To"])]
    return message


def _parent_email(engine: sa.Engine, parent_id: int) -> str:
    with engine.connect() as connection:
        return connection.execute(sa.select(parents.c.email).where(parents.c.id == parent_id)).scalar_one()


def test_names_with_line_breaks_cannot_add_a_mail_header(settings, engine, emulator, club):
    parent_id = _rename_first_family(
        engine, club, "Eve\r\nBcc: thief@evil.example", "Mallory\nX-Injected: yes"
    )
    result = _blast(settings, engine, emulator)
    assert not result.traceback, result.stderr
    message = _message_to(settings, _parent_email(engine, parent_id))
    assert message["Bcc"] is None and message["X-Injected"] is None
    assert all("thief@evil.example" not in str(value) for _, value in message.items())
    assert sum(1 for _ in _outbox_messages(settings)) > 1  # everyone else was mailed too


def test_a_script_tag_in_a_name_is_shown_as_text_never_run(settings, engine, emulator, club):
    parent_id = _rename_first_family(engine, club, "<script>alert(1)</script>", "<b>Bold</b>")
    result = _blast(settings, engine, emulator)
    assert not result.traceback, result.stderr
    message = _message_to(settings, _parent_email(engine, parent_id))
    html_part = message.get_body(("html",)).get_content()
    text_part = message.get_body(("plain",)).get_content()
    assert "<script>" not in html_part and "&lt;script&gt;alert(1)&lt;/script&gt;" in html_part
    assert "<script>alert(1)</script>" in text_part  # plain text shows it as typed
    index = Path(settings.outbox_dir) / "index.html"
    if index.exists():
        assert "<script>" not in index.read_text()


@pytest.mark.storage  # text in other scripts stored and read back
def test_names_in_other_scripts_arrive_intact(settings, engine, emulator, club):
    parent_id = _rename_first_family(engine, club, "李小龙", "Zoë Ångström-محمد")
    result = _blast(settings, engine, emulator)
    assert not result.traceback, result.stderr
    assert result.exit_code == 0, result.stdout + result.stderr
    message = _message_to(settings, _parent_email(engine, parent_id))
    assert "Zoë Ångström-محمد" in str(message["To"])
    assert "李小龙" in message.get_body(("plain",)).get_content()


def _set_parent_email(engine: sa.Engine, tenant_id: int, value: str | None, how_many: int = 1) -> list[int]:
    """Give the first `how_many` parents with a balance this email; returns their ids."""
    with engine.begin() as connection:
        ids = [
            int(r["parent_id"])
            for r in connection.execute(
                sa.select(players.c.parent_id)
                .where(
                    players.c.tenant_id == tenant_id,
                    players.c.status == "signed",
                    players.c.parent_id.is_not(None),
                )
                .distinct()
                .order_by(players.c.parent_id)
                .limit(how_many)
            ).mappings()
        ]
        connection.execute(sa.update(parents).where(parents.c.id.in_(ids)).values(email=value))
    return ids


def table_rows(stdout: str, title: str) -> list[list[str]]:
    """The rows of the table printed under `title`, each cell's wrapped lines joined by spaces."""
    rows: list[list[str]] = []
    for line in stdout[stdout.index(title) :].splitlines()[1:]:
        if not line.startswith("│"):
            if rows and line.startswith("└"):
                break
            continue
        cells = [cell.strip() for cell in line.split("│")[1:-1]]
        if rows and not cells[0]:
            rows[-1] = [f"{a} {b}".strip() for a, b in zip(rows[-1], cells, strict=True)]
        else:
            rows.append(cells)
    return rows


INVALID_PARENT_EMAILS = {"invalid": "not-an-address", "header-injection": "a@x.example\r\nBcc: b@y.example"}


@pytest.mark.parametrize("address", INVALID_PARENT_EMAILS.values(), ids=INVALID_PARENT_EMAILS.keys())
def test_a_parent_email_that_is_not_an_address_is_named_and_the_rest_are_mailed(
    settings, engine, emulator, club, address
):
    (parent_id,) = _set_parent_email(engine, club, address)
    result = _blast(settings, engine, emulator)
    assert not result.traceback, result.stderr
    assert result.exit_code == 0, result.stdout + result.stderr
    with engine.connect() as connection:
        name = connection.execute(
            sa.select(parents.c.first_name + " " + parents.c.last_name).where(parents.c.id == parent_id)
        ).scalar_one()
        logged = (
            connection.execute(sa.text("SELECT parent_id FROM email_log WHERE run_key = 'catalogue'"))
            .scalars()
            .all()
        )
    (row,) = [row for row in table_rows(result.stdout, "┃ parent") if row[0] == name]
    assert "the email address on file is not a valid address" in " ".join(row)
    assert parent_id not in logged and len(logged) >= 5  # nothing written for that parent; the rest mailed
    assert all("b@y.example" not in str(m["Bcc"] or "") + str(m["To"]) for m in _outbox_messages(settings))


def test_an_empty_parent_email_is_unreachable_and_named(settings, engine, emulator, club):
    (parent_id,) = _set_parent_email(engine, club, "")
    result = _blast(settings, engine, emulator)
    assert not result.traceback and result.exit_code == 0, result.stdout + result.stderr
    with engine.connect() as connection:
        name = connection.execute(
            sa.select(parents.c.first_name + " " + parents.c.last_name).where(parents.c.id == parent_id)
        ).scalar_one()
        logged = connection.execute(sa.text("SELECT parent_id FROM email_log")).scalars().all()
    (row,) = [row for row in table_rows(result.stdout, "┃ parent") if row[0] == name]
    assert "no email address on file" in " ".join(row)
    assert parent_id not in logged


@pytest.mark.storage  # grouping parents by address
def test_two_parents_sharing_an_address_each_get_their_own_balance_once(settings, engine, emulator, club):
    first, second = _set_parent_email(engine, club, "shared@families.example", how_many=2)
    result = _blast(settings, engine, emulator)
    assert not result.traceback and result.exit_code == 0, result.stdout + result.stderr
    shared = [m for m in _outbox_messages(settings) if "shared@families.example" in str(m["To"])]
    assert len(shared) == 2
    with engine.connect() as connection:
        names = {
            connection.execute(
                sa.select(parents.c.first_name + " " + parents.c.last_name).where(parents.c.id == parent)
            ).scalar_one()
            for parent in (first, second)
        }
    assert {m["To"].addresses[0].display_name for m in shared} == names
    rerun = invoke(settings, ["blast", "--tenant", TENANT, "--send", "--blast-key", "catalogue"])
    assert rerun.exit_code == 0 and len(_outbox_messages(settings)) == len(list(_outbox_messages(settings)))
    assert len([m for m in _outbox_messages(settings) if "shared@" in str(m["To"])]) == 2  # nobody twice
