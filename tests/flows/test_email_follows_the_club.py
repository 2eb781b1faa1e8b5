"""Emails right about money while the club changes: each parent their own items, nothing gone
is chased, blasts that race or resume mail nobody twice, test emails that cannot pay, and money
in the tenant's currency. Real SMTP on loopback, the emulator over HTTP, SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import email
import email.policy
import subprocess
import threading
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from flows.backfill_payment_links import backfill_payment_links
from flows.outstanding_balance_email import outstanding_balance_email
from flows.resend_payment_link import resend_payment_link
from paylinks.club.balances import Withheld
from paylinks.club.clock import when_words
from paylinks.club.tenants import tenant_by_slug
from paylinks.messaging.claims import ClaimKind, claim_send
from paylinks.messaging.prepare import PreparedEmail, SkipReason
from paylinks.messaging.render import RenderedEmail
from paylinks.messaging.reports import BlastReport, ResendOutcome
from paylinks.money import format_money
from paylinks.present.blast import blast_tables
from paylinks.settings import PROJECT_ROOT, EmailTransportName
from paylinks.store.tables import (
    blasts,
    email_log,
    orders,
    parents,
    payment_links,
    players,
    products,
    tenants,
)
from paylinks.vocabulary import EmailType
from tests.helpers import PAYLINKS, TENANT, cli_env, run_cli, smtp_server

# The tests marked `storage` run on PostgreSQL too (the balance query's parents and held-back
# bills, claims raced by concurrent blasts, the claim's unique key, stored times); the rest on SQLite.


# -- reading the club and the mail -------------------------------------------------------------
def open_rows(engine: sa.Engine) -> list[sa.RowMapping]:
    """TENANT's pending, minted rows with their player and the parent on the row."""
    with engine.connect() as connection:
        return (
            connection.execute(
                sa.select(
                    payment_links.c.id,
                    payment_links.c.player_id,
                    payment_links.c.product_id,
                    payment_links.c.order_id,
                    payment_links.c.stripe_payment_link_url.label("url"),
                    payment_links.c.amount_cents,
                    payment_links.c.description,
                    players.c.parent_id.label("player_parent_id"),
                )
                .join(players, players.c.id == payment_links.c.player_id)
                .join(tenants, tenants.c.id == payment_links.c.tenant_id)
                .where(
                    tenants.c.slug == TENANT,
                    payment_links.c.status == "pending",
                    payment_links.c.stripe_payment_link_url.is_not(None),
                )
                .order_by(payment_links.c.id)
            )
            .mappings()
            .all()
        )


def parent(engine: sa.Engine, parent_id: int) -> sa.RowMapping:
    with engine.connect() as connection:
        return connection.execute(sa.select(parents).where(parents.c.id == parent_id)).mappings().one()


def full_name(row: sa.RowMapping) -> str:
    return f"{row['first_name']} {row['last_name']}"


def reachable_parents(engine: sa.Engine) -> list[sa.RowMapping]:
    with engine.connect() as connection:
        return (
            connection.execute(
                sa.select(parents)
                .join(tenants, tenants.c.id == parents.c.tenant_id)
                .where(tenants.c.slug == TENANT, parents.c.email.is_not(None))
                .order_by(parents.c.id)
            )
            .mappings()
            .all()
        )


def bodies(message) -> str:
    """What the reader sees: subject, text and HTML, decoded."""
    return (
        str(message["Subject"])
        + message.get_body(("plain",)).get_content()
        + message.get_body(("html",)).get_content()
    )


def messages_to(mailroom, address: str) -> list:
    return [message for rcpt_tos, message in mailroom.messages if address in rcpt_tos]


def default_fee_player(engine: sa.Engine) -> tuple[int, list[sa.RowMapping]]:
    """A player whose open items are all default fees, billed to a parent with an email."""
    by_player: dict[int, list[sa.RowMapping]] = {}
    for row in open_rows(engine):
        by_player.setdefault(row["player_id"], []).append(row)
    for player_id, items in by_player.items():
        if (
            all(i["order_id"] is None for i in items)
            and parent(engine, items[0]["player_parent_id"])["email"]
        ):
            return player_id, items
    raise AssertionError("the demo club has no such player")


# -- rule 2: each parent gets their own items --------------------------------------------------
@pytest.mark.storage  # the balance query: the parent who owes a bill today
def test_a_player_who_moved_to_another_parent_is_billed_to_the_new_parent_only(
    settings, engine, minted_club, mailroom
):
    player_id, items = default_fee_player(engine)
    old = parent(engine, items[0]["player_parent_id"])
    new = next(p for p in reachable_parents(engine) if p["id"] != old["id"])
    with engine.begin() as connection:  # the club moves the player; no backfill runs
        connection.execute(sa.update(players).where(players.c.id == player_id).values(parent_id=new["id"]))

    outstanding_balance_email(tenant=TENANT, send=True)

    (to_new,) = messages_to(mailroom, new["email"])
    seen_by_new = bodies(to_new)
    assert all(item["url"] in seen_by_new for item in items)
    assert f"Hi {full_name(new)}" in seen_by_new
    assert all(
        item["url"] not in bodies(message)
        for message in messages_to(mailroom, old["email"])
        for item in items
    )


@pytest.fixture
def owed_by_two_parents(settings, engine, minted_club):
    """A player whose default fees their own parent owes, and whose new order another parent owes
    (e.g. the other household pays the tournament), minted by a backfill."""
    player_id, fees = default_fee_player(engine)
    own = parent(engine, fees[0]["player_parent_id"])
    other = next(p for p in reachable_parents(engine) if p["id"] != own["id"])
    with engine.begin() as connection:
        billed = {row["product_id"] for row in fees}
        product_id = (
            connection.execute(
                sa.select(products.c.id)
                .where(
                    products.c.tenant_id == own["tenant_id"], products.c.active, products.c.id.not_in(billed)
                )
                .order_by(products.c.id)
            )
            .scalars()
            .first()
        )
        connection.execute(
            sa.insert(orders).values(
                tenant_id=own["tenant_id"],
                player_id=player_id,
                parent_id=other["id"],
                product_id=product_id,
                amount_cents=3100,
                status="pending",
            )
        )
    backfill_payment_links(tenant=TENANT, commit=True)
    order_item = next(
        r for r in open_rows(engine) if r["player_id"] == player_id and r["order_id"] is not None
    )
    return player_id, own, fees, other, order_item


@pytest.mark.storage  # the balance query, narrowed to one player: each item's parent
def test_resend_for_a_player_owed_by_two_parents_sends_each_their_own_items(
    settings, engine, owed_by_two_parents, mailroom
):
    player_id, own, fees, other, order_item = owed_by_two_parents

    report = resend_payment_link(tenant=TENANT, player=str(player_id))

    assert sorted((p.parent_name, p.recipient, p.outcome) for p in report.parents) == sorted(
        [
            (full_name(own), own["email"], ResendOutcome.sent),
            (full_name(other), other["email"], ResendOutcome.sent),
        ]
    )
    (to_own,) = messages_to(mailroom, own["email"])
    (to_other,) = messages_to(mailroom, other["email"])
    assert f"Hi {full_name(own)}" in bodies(to_own) and f"Hi {full_name(other)}" in bodies(to_other)
    assert all(fee["url"] in bodies(to_own) and fee["url"] not in bodies(to_other) for fee in fees)
    assert order_item["url"] in bodies(to_other) and order_item["url"] not in bodies(to_own)
    assert format_money(3100) in bodies(to_other)


def test_resend_to_another_address_sends_each_parents_email_labelled_with_that_parent(
    settings, engine, owed_by_two_parents, mailroom
):
    player_id, own, fees, other, order_item = owed_by_two_parents

    resend_payment_link(tenant=TENANT, player=str(player_id), to="front-desk@club.example")

    assert mailroom.recipients() == ["front-desk@club.example"] * 2
    by_parent = {
        name: message
        for _, message in mailroom.messages
        for name in (full_name(own), full_name(other))
        if f"(for {name})" in str(message["Subject"])
    }
    assert set(by_parent) == {full_name(own), full_name(other)}
    assert f"these are the items {full_name(other)} owes" in bodies(by_parent[full_name(other)])
    assert order_item["url"] in bodies(by_parent[full_name(other)])
    assert all(fee["url"] in bodies(by_parent[full_name(own)]) for fee in fees)


# -- rule 3: nothing gone is chased ------------------------------------------------------------
@pytest.mark.storage  # the balance query against the changed club, every status for lookup
def test_a_cancelled_bill_is_not_mailed_resent_or_offered_before_the_next_backfill(
    settings, engine, minted_club, mailroom, tmp_path
):
    rows = open_rows(engine)
    cancelled = next(r for r in rows if r["order_id"] is not None)
    withdrawn_id, withdrawn_fees = default_fee_player(engine)
    with engine.begin() as connection:  # the club changes; the backfill has not run since
        connection.execute(
            sa.update(orders).where(orders.c.id == cancelled["order_id"]).values(status="cancelled")
        )
        connection.execute(sa.update(players).where(players.c.id == withdrawn_id).values(status="withdrawn"))
    gone = {cancelled["url"]: Withheld.order_not_pending} | {
        fee["url"]: Withheld.player_not_signed for fee in withdrawn_fees
    }

    report = outstanding_balance_email(tenant=TENANT, send=True)

    mailed = "".join(bodies(message) for _, message in mailroom.messages)
    assert mailroom.messages and not any(url in mailed for url in gone)
    held = {item.payment_link_id: item.reason for item in report.held_back}
    assert {r["url"]: held[r["id"]] for r in [cancelled, *withdrawn_fees]} == gone
    assert all(reason.no_longer_owed for reason in gone.values())

    resent = resend_payment_link(tenant=TENANT, player=str(withdrawn_id))
    assert resent.nothing_owed and len(mailroom.messages) == len(report.sent)

    looked_up = run_cli(["lookup", "--tenant", TENANT, str(withdrawn_id)], cli_env(tmp_path, COLUMNS="250"))
    assert looked_up.returncode == 0, looked_up.stderr
    assert not any(fee["url"] in looked_up.stdout for fee in withdrawn_fees)
    assert "the player is no longer signed" in looked_up.stdout


def test_a_product_that_stopped_billing_is_not_mailed(settings, engine, minted_club, mailroom):
    rows = open_rows(engine)
    stopped = next(r for r in rows if r["order_id"] is None)["product_id"]
    with engine.begin() as connection:
        connection.execute(
            sa.update(products).where(products.c.id == stopped).values(bill_signed_players=False)
        )

    report = outstanding_balance_email(tenant=TENANT, send=True)

    fees = [r for r in rows if r["product_id"] == stopped and r["order_id"] is None]
    mailed = "".join(bodies(message) for _, message in mailroom.messages)
    assert fees and not any(fee["url"] in mailed for fee in fees)
    assert {item.reason for item in report.held_back if item.payment_link_id in {f["id"] for f in fees}} == {
        Withheld.product_stopped
    }


# -- rule 9: a link from another Stripe account or mode is never mailed ------------------------
def test_links_minted_in_another_stripe_account_or_not_yet_verified_are_not_mailed(
    settings, engine, minted_club, mailroom
):
    rows = open_rows(engine)
    elsewhere, unverified = rows[0], rows[1]
    with engine.begin() as connection:
        connection.execute(
            sa.update(payment_links)
            .where(payment_links.c.id == elsewhere["id"])
            .values(stripe_account="acct_elsewhere")
        )
        connection.execute(
            sa.update(payment_links)
            .where(payment_links.c.id == unverified["id"])
            .values(stripe_account=None, livemode=None)
        )

    report = outstanding_balance_email(tenant=TENANT, send=True)

    mailed = "".join(bodies(message) for _, message in mailroom.messages)
    assert mailroom.messages and elsewhere["url"] not in mailed and unverified["url"] not in mailed
    held = {item.payment_link_id: item.reason for item in report.held_back}
    assert held == {elsewhere["id"]: Withheld.other_stripe_account, unverified["id"]: Withheld.not_verified}
    summary = blast_tables(report)[0].records()
    assert {
        "figure": "items not offered: link minted in another Stripe account/mode: run the backfill (commit) to mint it here",
        "value": "1",
    } in summary


# -- rule 7: one blast, one email per parent, even when blasts race ----------------------------
@pytest.mark.storage  # claims racing across transactions (ON CONFLICT, conditional takeover)
def test_a_live_claim_is_never_taken_over_and_a_stale_one_is_by_exactly_one_claimant(
    settings, engine, minted_club
):
    with engine.connect() as connection:
        club = tenant_by_slug(connection, TENANT)
    someone = reachable_parents(engine)[0]
    prepared = PreparedEmail(
        someone["id"], full_name(someone), someone["email"], RenderedEmail("s", "t", "h"), 1, 100, ()
    )
    lease = timedelta(minutes=15)

    def claim_together(count: int) -> list:
        start = threading.Barrier(count)
        claims: list = []

        def claim() -> None:
            start.wait()
            claims.append(
                claim_send(
                    engine,
                    club,
                    EmailType.outstanding_balance,
                    "race",
                    EmailTransportName.smtp,
                    prepared,
                    someone["email"],
                    someone["id"],
                    lease,
                )
            )

        threads = [threading.Thread(target=claim) for _ in range(count)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return claims

    first = claim_together(6)
    assert sorted(c.kind.value for c in first) == ["claimed elsewhere"] * 5 + ["new"]

    # The holder is still within its lease: nobody may take the claim over.
    assert {c.kind for c in claim_together(4)} == {ClaimKind.claimed_elsewhere}

    stale_since = datetime.now(UTC) - timedelta(minutes=20)
    with engine.begin() as connection:
        connection.execute(sa.update(email_log).values(claimed_at=stale_since))
    after_lease = claim_together(4)
    assert sorted(c.kind.value for c in after_lease) == ["claimed elsewhere"] * 3 + ["taken over"]
    (taken,) = [c for c in after_lease if c.kind is ClaimKind.taken_over]
    assert abs(taken.stale_since.replace(tzinfo=UTC) - stale_since) < timedelta(seconds=1)


class SlowMailroom:
    """An SMTP server that takes a moment over each message, so racing blasts overlap."""

    def __init__(self) -> None:
        self.messages: list = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        await asyncio.sleep(0.25)
        parsed = email.message_from_bytes(
            envelope.original_content or envelope.content, policy=email.policy.default
        )
        with self.lock:
            self.messages.append((list(envelope.rcpt_tos), parsed))
        return "250 OK"


@pytest.fixture
def slow_mailroom(use_settings):
    handler = SlowMailroom()
    with smtp_server(handler) as port:
        use_settings(email_transport="smtp", smtp_host="127.0.0.1", smtp_port=port, allow_test_links=True)
        yield handler


@pytest.mark.storage  # two processes racing for the same claims
@pytest.mark.slow
def test_two_blast_processes_with_the_same_key_at_once_mail_each_parent_once(
    settings, engine, minted_club, slow_mailroom, tmp_path
):
    preview = outstanding_balance_email(tenant=TENANT)
    expected = sorted(e.address for e in preview.emails if e.address)
    command = PAYLINKS + ["blast", "--tenant", TENANT, "--send", "--blast-key", "race"]
    racers = [
        subprocess.Popen(
            command,
            env=cli_env(tmp_path / f"racer-{n}", COLUMNS="250"),
            cwd=PROJECT_ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(2)
    ]
    outputs = [racer.communicate(timeout=300) for racer in racers]

    assert [racer.returncode for racer in racers] == [0, 0], [err for _, err in outputs]
    delivered = sorted(address for rcpt_tos, _ in slow_mailroom.messages for address in rcpt_tos)
    assert delivered == expected, "every parent exactly once"
    with engine.connect() as connection:
        logged = connection.execute(
            sa.select(email_log.c.parent_id, email_log.c.status).where(email_log.c.run_key == "race")
        ).all()
    assert len(logged) == len(expected) and {row.status.value for row in logged} == {"sent"}


@pytest.mark.storage  # stored times: yesterday's unfinished blast, the hold since moments ago
def test_a_blast_without_a_key_resumes_the_unfinished_one_the_next_day(
    settings, engine, minted_club, mailroom
):
    # A blast is named for the club's day. The club's zone here is one whose day is not UTC's now
    # (of these two, never on the same day, one always is), so a name from the machine's day shows.
    now = datetime.now(UTC)
    zone = next(
        ZoneInfo(name)
        for name in ("Pacific/Kiritimati", "Pacific/Pago_Pago")
        if now.astimezone(ZoneInfo(name)).date() != now.date()
    )
    with engine.begin() as connection:
        connection.execute(sa.update(tenants).where(tenants.c.slug == TENANT).values(timezone=zone.key))
    expected = sorted(e.address for e in outstanding_balance_email(tenant=TENANT).emails if e.address)
    yesterday = now - timedelta(days=1)
    yesterdays_key = f"{TENANT}-{yesterday.astimezone(zone).date().isoformat()}"
    refused = expected[0]
    mailroom.refuse = {refused}
    interrupted = outstanding_balance_email(
        tenant=TENANT, send=True, blast_key=yesterdays_key, return_state=True
    )
    assert interrupted.is_failed()
    with engine.begin() as connection:  # all of that happened yesterday
        connection.execute(sa.update(blasts).values(started_at=yesterday))
    mailroom.refuse = set()

    resumed = outstanding_balance_email(tenant=TENANT, send=True)

    assert sorted(mailroom.recipients()) == expected, "the rest got their email once; nobody twice"
    assert [o.recipient for o in resumed.sent] == [refused]
    assert resumed.blast.resumed and resumed.run_key == yesterdays_key
    blast_line = dict((r["figure"], r["value"]) for r in blast_tables(resumed)[0].records())["blast"]
    started = when_words(yesterday, zone)  # in the club's time
    assert blast_line == f"resumed blast {yesterdays_key} started {started}"

    # Finished now: the next keyless send is a new blast; everyone was emailed moments ago, so it
    # holds them all back, unless asked to include them.
    again = outstanding_balance_email(tenant=TENANT, send=True)
    assert again.run_key == f"{TENANT}-{datetime.now(UTC).astimezone(zone).date().isoformat()}"
    assert not again.blast.resumed
    assert dict((r["figure"], r["value"]) for r in blast_tables(again)[0].records())["blast"] == (
        f"new blast {again.run_key}"
    )
    assert again.sent == [] and len(mailroom.messages) == len(expected)
    anyway = outstanding_balance_email(tenant=TENANT, send=True, include_recent=True)
    assert len(anyway.sent) == len(expected)
    assert len(mailroom.messages) == 2 * len(expected)


@pytest.mark.storage  # the claim's unique key includes the transport
def test_a_blast_written_to_the_outbox_says_so_and_does_not_count_for_smtp(
    settings, engine, minted_club, mailroom, use_settings
):
    use_settings(email_transport="outbox")
    written = outstanding_balance_email(tenant=TENANT, send=True, blast_key="spring")
    summary = dict((r["figure"], r["value"]) for r in blast_tables(written)[0].records())
    assert summary["delivery"] == f"written to the outbox folder {settings.outbox_dir}, not emailed"
    assert len(list(settings.outbox_dir.glob("*.eml"))) == len(written.sent) > 0
    assert mailroom.messages == []

    use_settings(email_transport="smtp")
    emailed = outstanding_balance_email(tenant=TENANT, send=True, blast_key="spring")

    assert sorted(mailroom.recipients()) == sorted(o.recipient for o in written.sent)
    assert dict((r["figure"], r["value"]) for r in blast_tables(emailed)[0].records())["delivery"] == (
        "emailed over SMTP"
    )
    assert SkipReason.already_sent not in emailed.skipped.values()


# -- rule 8: a test email cannot pay -----------------------------------------------------------
def test_a_test_email_shows_the_real_bill_but_its_buttons_cannot_take_payment(
    settings, engine, minted_club, mailroom, use_settings
):
    use_settings(office_url="https://office.riverside.example")
    report: BlastReport = outstanding_balance_email(tenant=TENANT, test_email="admin@club.example")

    ((rcpt_tos, message),) = mailroom.messages
    seen = bodies(message)
    assert rcpt_tos == ["admin@club.example"]
    assert not any(row["url"] in seen for row in open_rows(engine)), "no real pay link in a test email"
    sample = max(report.emails, key=lambda e: (e.item_count, e.total_cents))
    assert format_money(sample.total_cents) in seen and sample.parent_name in seen
    row_ids = {r["id"] for r in open_rows(engine) if r["url"] in sample.urls}
    html = message.get_body(("html",)).get_content()
    for row_id in row_ids:
        assert f'href="https://office.riverside.example/preview/payment-links/{row_id}"' in html
    assert "take no payment" in seen


# -- rule 11: money in the tenant's currency ---------------------------------------------------
@pytest.fixture
def yen_club(settings, engine, demo_club):
    with engine.begin() as connection:
        connection.execute(sa.update(tenants).where(tenants.c.slug == TENANT).values(currency="jpy"))
    backfill_payment_links(tenant=TENANT, commit=True)
    return demo_club


def test_a_yen_tenants_amounts_print_in_yen_in_blast_resend_and_lookup(settings, engine, yen_club, tmp_path):
    env = cli_env(tmp_path, COLUMNS="250")
    blast = run_cli(["blast", "--tenant", TENANT], env)
    assert blast.returncode == 0, blast.stderr
    preview_total = outstanding_balance_email(tenant=TENANT).total_cents
    assert preview_total > 0 and format_money(preview_total, "jpy") in blast.stdout
    assert "$" not in blast.stdout

    player_id, fees = default_fee_player(engine)
    resend = run_cli(["resend", "--tenant", TENANT, str(player_id), "--dry-run"], env)
    assert resend.returncode == 0, resend.stderr
    owed = sum(fee["amount_cents"] for fee in fees)
    assert format_money(owed, "jpy") in resend.stdout and "$" not in resend.stdout

    lookup = run_cli(["lookup", "--tenant", TENANT, str(player_id)], env)
    assert lookup.returncode == 0, lookup.stderr
    assert all(format_money(fee["amount_cents"], "jpy") in lookup.stdout for fee in fees)
    assert "$" not in lookup.stdout
