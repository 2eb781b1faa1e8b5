"""A parent's family page over HTTP: every child's bills by the blast's rules, in words and money,
with the right headers; unknown and rotated addresses are plain 404s; a copy of the database
holds no address; "Pay all" refuses a bill that changed, saying which."""

from __future__ import annotations

import hashlib
import re

import pytest
import sqlalchemy as sa

from paylinks.club.tenants import tenant_by_slug
from paylinks.family.links import family_links
from paylinks.family.tokens import token_hash
from paylinks.runtime import engine_for
from paylinks.store.tables import audit_log, family_tokens, orders, parents, payment_links, players
from paylinks.vocabulary import AuditAction
from tests.helpers import current_settings
from tests.office.conftest import ADMIN, OTHER_TENANT, TENANT

_BILL = re.compile(r'name="bill" value="(\d+):(\d+):(\d+)"')


def busiest_parent(engine: sa.Engine, slug: str = TENANT) -> int:
    """The parent of `slug` owing the most open, minted items (siblings together)."""
    with engine.connect() as connection:
        tenant = tenant_by_slug(connection, slug)
        return connection.execute(
            sa.select(payment_links.c.parent_id)
            .where(
                payment_links.c.tenant_id == tenant.id,
                payment_links.c.status == "pending",
                payment_links.c.stripe_payment_link_url.is_not(None),
                payment_links.c.parent_id.is_not(None),
            )
            .group_by(payment_links.c.parent_id)
            .order_by(sa.func.count().desc(), payment_links.c.parent_id)
            .limit(1)
        ).scalar_one()


def family_address(engine: sa.Engine, parent_id: int, slug: str = TENANT) -> str:
    """The parent's page path, as an email or the player card gives it."""
    settings = current_settings()
    with engine.begin() as connection:
        tenant = tenant_by_slug(connection, slug)
        url = family_links(connection, settings, tenant.id, [parent_id])[parent_id]
    assert url.startswith(settings.office_url.rstrip("/") + "/f/")
    return url.removeprefix(settings.office_url.rstrip("/"))


def expected_open_rows(engine: sa.Engine, parent_id: int) -> set[int]:
    """The parent's minted, pending rows whose bill still stands (the demo's data)."""
    with engine.connect() as connection:
        return set(
            connection.execute(
                sa.select(payment_links.c.id)
                .join(players, players.c.id == payment_links.c.player_id)
                .outerjoin(orders, orders.c.id == payment_links.c.order_id)
                .where(
                    payment_links.c.parent_id == parent_id,
                    payment_links.c.status == "pending",
                    payment_links.c.stripe_payment_link_url.is_not(None),
                    sa.or_(orders.c.id.is_(None), orders.c.status == "pending"),
                    sa.or_(payment_links.c.order_id.is_not(None), players.c.status == "signed"),
                )
            ).scalars()
        )


@pytest.mark.storage  # the balance query, narrowed to one parent
def test_the_page_shows_each_childs_bills_in_words_and_money(minted_club, engine, office):
    parent_id = busiest_parent(engine)
    path = family_address(engine, parent_id)
    with office.client() as parent:  # nobody logged in
        page = parent.get(path)
    assert page.status_code == 200, page.text
    assert page.headers["x-robots-tag"].startswith("noindex")
    assert page.headers["cache-control"] == "no-store"
    assert page.headers["referrer-policy"] == "no-referrer"
    assert '<meta name="robots" content="noindex, nofollow">' in page.text
    assert "<script" not in page.text

    shown = {int(row) for row, _, _ in _BILL.findall(page.text)}
    assert shown and shown == expected_open_rows(engine, parent_id)
    with engine.connect() as connection:
        rows = (
            connection.execute(
                sa.select(payment_links, players.c.first_name, players.c.last_name)
                .join(players, players.c.id == payment_links.c.player_id)
                .where(payment_links.c.id.in_(shown))
            )
            .mappings()
            .all()
        )
    total = sum(r["amount_cents"] for r in rows)
    assert f"Total owed now: <strong>${total / 100:,.2f}</strong>" in page.text
    assert f"Pay all ${total / 100:,.2f}" in page.text
    for r in rows:  # each child named, each item with its own Pay Now link
        assert f"<h2>{r['first_name']} {r['last_name']}</h2>" in page.text
        assert f'href="{r["stripe_payment_link_url"]}"' in page.text
    assert len(re.findall(r"type=\"checkbox\"[^>]* checked", page.text)) == len(shown)  # all checked


def test_a_paid_item_says_when_and_how_and_is_not_offered(minted_club, engine, office):
    parent_id = busiest_parent(engine)
    path = family_address(engine, parent_id)
    row_id = min(expected_open_rows(engine, parent_id))
    with engine.begin() as connection:
        connection.execute(
            sa.update(payment_links)
            .where(payment_links.c.id == row_id)
            .values(status="paid", paid_method="cheque", paid_at=sa.func.now())
        )
    with office.client() as parent:
        page = parent.get(path)
    assert str(row_id) not in {row for row, _, _ in _BILL.findall(page.text)}
    assert "Paid and refunded" in page.text
    assert re.search(r"Paid [A-Z][a-z]{2} \d{1,2}, \d{4}, \d{1,2}:\d\d [AP]M E[SD]T, by cheque", page.text)


def test_another_tenants_or_another_parents_rows_never_appear(minted_club, engine, office):
    ours = busiest_parent(engine)
    path = family_address(engine, ours)
    with engine.connect() as connection:
        other_tenant = tenant_by_slug(connection, OTHER_TENANT)
        foreign = set(
            connection.execute(
                sa.select(payment_links.c.id).where(
                    sa.or_(payment_links.c.tenant_id == other_tenant.id, payment_links.c.parent_id != ours)
                )
            ).scalars()
        )
    with office.client() as parent:
        page = parent.get(path)
    shown = {int(row) for row, _, _ in _BILL.findall(page.text)}
    assert shown and not shown & foreign
    # A parent id of another tenant makes no address in this one.
    with engine.begin() as connection:
        tenant = tenant_by_slug(connection, TENANT)
        stranger = connection.execute(
            sa.select(parents.c.id).where(parents.c.tenant_id == other_tenant.id)
        ).scalar()
        assert family_links(connection, current_settings(), tenant.id, [stranger]) == {}


def test_unknown_addresses_are_plain_404s(minted_club, engine, office):
    with office.client() as parent:
        for path in ("/f/" + "A" * 32, "/f/short", "/f/" + "A" * 32 + "/checkout"):
            answer = parent.get(path)
            assert answer.status_code in (404, 405), path
        unknown = parent.get("/f/" + "A" * 32)
        assert unknown.status_code == 404
        assert unknown.headers["referrer-policy"] == "no-referrer"
        assert "family" not in unknown.text.lower()
        assert parent.post("/f/" + "B" * 32 + "/checkout", data={"pay": "all"}).status_code == 404


@pytest.mark.storage  # the salt made on first need (ON CONFLICT), then replaced
def test_rotating_kills_the_old_address_at_once_and_stores_no_address(minted_club, engine, office, admin):
    parent_id = busiest_parent(engine)
    path = family_address(engine, parent_id)
    token = path.removeprefix("/f/")
    with engine.connect() as connection:
        stored = connection.execute(sa.select(family_tokens)).mappings().all()
    assert any(row["token_hash"] == hashlib.sha256(token.encode()).hexdigest() for row in stored)
    assert all(token not in str(value) for row in stored for value in row.values())

    with engine.connect() as connection:
        player_id = connection.execute(
            sa.select(players.c.id).where(players.c.parent_id == parent_id).order_by(players.c.id)
        ).scalar()
    card = admin.get(f"/t/{TENANT}/players/{player_id}")
    assert f"{office.settings.office_url}{path}" in card.text and "send it to the parent" in card.text
    rotated = admin.submit(
        f"/t/{TENANT}/players/{player_id}", f"/t/{TENANT}/players/{player_id}/parents/{parent_id}/family-link"
    )
    assert rotated.status_code == 303
    with office.client() as parent:
        assert parent.get(path).status_code == 404  # the old address, at once
    new_path = family_address(engine, parent_id)
    assert new_path != path
    with office.client() as parent:
        assert parent.get(new_path).status_code == 200
    after = admin.get(rotated.headers["location"])
    assert "New family page address for" in after.text and new_path in after.text
    with engine.connect() as connection:
        entry = (
            connection.execute(
                sa.select(audit_log).where(audit_log.c.action == AuditAction.family_link_reset)
            )
            .mappings()
            .one()
        )
        hashes = set(connection.execute(sa.select(family_tokens.c.token_hash)).scalars())
    assert entry["actor"] == ADMIN and token not in entry["detail"]
    assert token_hash(new_path.removeprefix("/f/")) in hashes and token_hash(token) not in hashes


def test_a_coach_cannot_rotate(minted_club, engine, office, coach):
    parent_id = busiest_parent(engine)
    with engine.connect() as connection:
        player_id = connection.execute(
            sa.select(players.c.id).where(players.c.parent_id == parent_id)
        ).scalar()
    card = coach.get(f"/t/{TENANT}/players/{player_id}")
    assert "send it to the parent" in card.text and "New address" not in card.text
    refused = coach.submit(
        f"/t/{TENANT}/players/{player_id}", f"/t/{TENANT}/players/{player_id}/parents/{parent_id}/family-link"
    )
    assert refused.status_code == 403


def test_pay_all_refuses_a_bill_that_changed_and_says_which(minted_club, engine, office):
    parent_id = busiest_parent(engine)
    path = family_address(engine, parent_id)
    with office.client() as parent:
        page = parent.get(path)
        bills = _BILL.findall(page.text)
        shown = re.findall(r'name="shown" value="([^"]+)"', page.text)
        withdrawn_row = int(bills[0][0])
        with engine.begin() as connection:  # the club withdraws the player meanwhile
            player_id = connection.execute(
                sa.select(payment_links.c.player_id).where(payment_links.c.id == withdrawn_row)
            ).scalar()
            connection.execute(sa.update(players).where(players.c.id == player_id).values(status="withdrawn"))
        answer = parent.post(f"{path}/checkout", data={"pay": "all", "shown": shown})
    assert answer.status_code == 409
    assert "Nothing was charged" in answer.text and "is no longer owed" in answer.text
    assert str(withdrawn_row) not in {row for row, _, _ in _BILL.findall(answer.text)}


def test_no_token_in_the_database_copy_opens_a_page(minted_club, engine, office):
    """Whoever holds the database but not the secret cannot make an address."""
    parent_id = busiest_parent(engine)
    family_address(engine, parent_id)
    with engine.connect() as connection:
        salt, stored = connection.execute(
            sa.select(family_tokens.c.salt, family_tokens.c.token_hash).where(
                family_tokens.c.parent_id == parent_id
            )
        ).one()
    with office.client() as parent:
        for guess in (salt[:32], stored[:32]):
            assert parent.get(f"/f/{guess}").status_code == 404


def test_the_secret_is_kept_beside_the_database_and_made_once(minted_club, engine):
    from pathlib import Path

    from paylinks.family.secret import SECRET_FILE, family_secret, kept_secret_folder

    settings = current_settings()
    folder = kept_secret_folder(settings.database_url)
    if folder is None:  # a server database needs PAYLINKS_FAMILY_LINK_SECRET
        return
    assert family_secret(settings) == family_secret(settings)
    kept = Path(folder) / SECRET_FILE
    assert kept.stat().st_mode & 0o777 == 0o600
    assert engine_for(settings.database_url) is engine


def test_paylinks_family_rotate_kills_the_old_address_and_prints_the_new_one_once(
    minted_club, engine, office
):
    from typer.testing import CliRunner

    from cli.main import app
    from tests.helpers import settings_env

    parent_id = busiest_parent(engine)
    path = family_address(engine, parent_id)
    env = settings_env(current_settings())
    result = CliRunner().invoke(
        app, ["family", "rotate", "--tenant", TENANT, "--parent", str(parent_id)], env=env
    )
    assert result.exit_code == 0, result.output
    new_path = family_address(engine, parent_id)
    assert new_path in result.output and path not in result.output
    with office.client() as parent:
        assert parent.get(path).status_code == 404
        assert parent.get(new_path).status_code == 200
    with engine.connect() as connection:
        (entry,) = connection.execute(
            sa.select(audit_log.c.actor, audit_log.c.detail).where(
                audit_log.c.action == AuditAction.family_link_reset
            )
        ).all()
    assert entry.actor == "command line" and new_path.removeprefix("/f/") not in entry.detail

    with engine.connect() as connection:
        stranger = connection.execute(
            sa.select(parents.c.id).where(parents.c.tenant_id != tenant_by_slug(connection, TENANT).id)
        ).scalar()
    refused = CliRunner().invoke(
        app, ["family", "rotate", "--tenant", TENANT, "--parent", str(stranger)], env=env
    )
    assert refused.exit_code == 2 and f"has no parent {stranger}" in refused.output


def test_names_are_escaped_on_the_page(minted_club, engine, office):
    parent_id = busiest_parent(engine)
    with engine.begin() as connection:
        connection.execute(
            sa.update(players)
            .where(players.c.parent_id == parent_id)
            .values(first_name='<script>alert("x")</script>', last_name="O'Brien & Sons")
        )
    with office.client() as parent:
        page = parent.get(family_address(engine, parent_id))
    assert page.status_code == 200
    assert "<script" not in page.text
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; O&#39;Brien &amp; Sons" in page.text


def test_the_preview_a_test_email_links_is_for_the_clubs_people_only_and_takes_no_payment(
    minted_club, engine, office, admin
):
    parent_id = busiest_parent(engine)
    preview = admin.get(f"/preview/family/{parent_id}")
    assert preview.status_code == 200
    assert "Nothing here takes payment" in preview.text
    assert 'action="/f/' not in preview.text and "buy.stripe" not in preview.text
    assert re.search(r'href="[^"]*/preview/payment-links/\d+">Pay Now', preview.text)
    assert len(re.findall(r"<button[^>]* disabled", preview.text)) == 2
    with engine.connect() as connection:  # the preview makes no address
        assert connection.execute(sa.select(sa.func.count()).select_from(family_tokens)).scalar() == 0
    with office.client() as stranger:
        assert stranger.get(f"/preview/family/{parent_id}").status_code == 303  # to the login
    with engine.connect() as connection:
        other = connection.execute(
            sa.select(parents.c.id).where(parents.c.tenant_id == tenant_by_slug(connection, OTHER_TENANT).id)
        ).scalar()
    assert admin.get(f"/preview/family/{other}").status_code == 404
