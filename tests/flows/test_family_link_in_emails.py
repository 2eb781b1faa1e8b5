"""Every email that lists what a parent owes carries their family page link ("See everything and
pay all at once") beside the Pay Now buttons, in both parts; a test sample carries the office's
preview of the page instead, and a preview makes no address."""

from __future__ import annotations

import re

import sqlalchemy as sa

from flows.outstanding_balance_email import outstanding_balance_email
from flows.resend_payment_link import resend_payment_link
from paylinks.family.secret import family_secret
from paylinks.family.tokens import find_family
from paylinks.store.tables import family_tokens, parents
from tests.helpers import TENANT, current_settings

FAMILY_WORDS = "See everything and pay all at once"


def parts(message) -> tuple[str, str]:
    return (message.get_body(("plain",)).get_content(), message.get_body(("html",)).get_content())


def family_paths(settings, body: str) -> set[str]:
    return set(
        re.findall(
            re.escape(settings.office_url.rstrip("/")) + r"(/f/[A-Za-z0-9_-]{32})(?![A-Za-z0-9_-])", body
        )
    )


def test_each_balance_email_links_its_parents_own_family_page(settings, engine, minted_club, mailroom):
    outstanding_balance_email(tenant=TENANT, send=True)
    settings = current_settings()
    secret = family_secret(settings)
    assert mailroom.messages
    with engine.connect() as connection:
        for (address,), message in mailroom.messages:
            text, html = parts(message)
            assert FAMILY_WORDS in text and FAMILY_WORDS in html
            (path,) = family_paths(settings, text)
            assert family_paths(settings, html) == {path}
            key = find_family(connection, secret, path.removeprefix("/f/"))
            assert key is not None
            owner = connection.execute(
                sa.select(parents.c.email).where(parents.c.id == key.parent_id)
            ).scalar()
            assert owner == address  # the recipient's own page, nobody else's
        stored = connection.execute(sa.select(family_tokens.c.salt, family_tokens.c.token_hash)).all()
    assert len(stored) >= len(mailroom.messages)
    tokens = {
        path.removeprefix("/f/") for _, m in mailroom.messages for path in family_paths(settings, parts(m)[0])
    }
    assert not any(token in value for token in tokens for row in stored for value in row)


def test_a_test_sample_links_the_preview_of_the_family_page_and_makes_no_address(
    settings, engine, minted_club, mailroom
):
    outstanding_balance_email(tenant=TENANT, test_email="coach@club.example")
    ((_, message),) = mailroom.messages
    text, html = parts(message)
    settings = current_settings()
    assert FAMILY_WORDS in text and FAMILY_WORDS in html
    assert re.search(re.escape(settings.office_url) + r"/preview/family/\d+", text)
    assert not family_paths(settings, text + html)
    outstanding_balance_email(tenant=TENANT)  # a preview
    with engine.connect() as connection:
        assert connection.execute(sa.select(sa.func.count()).select_from(family_tokens)).scalar() == 0


def test_a_resend_carries_the_family_link_too(settings, engine, minted_club, mailroom):
    with engine.connect() as connection:
        player_id = connection.execute(
            sa.text(
                "SELECT pl.player_id FROM payment_links pl JOIN parents pa ON pa.id = pl.parent_id "
                "WHERE pl.status = 'pending' AND pl.stripe_payment_link_url IS NOT NULL "
                "AND pa.email IS NOT NULL ORDER BY pl.player_id LIMIT 1"
            )
        ).scalar()
    resend_payment_link(tenant=TENANT, player=str(player_id))
    settings = current_settings()
    ((_, message),) = mailroom.messages
    text, html = parts(message)
    assert FAMILY_WORDS in text and len(family_paths(settings, text)) == 1
    assert family_paths(settings, html) == family_paths(settings, text)


def test_a_family_link_only_this_machine_can_open_never_reaches_a_real_parent():
    import pytest

    from paylinks.messaging.transports import UnreachableFamilyLinkError, check_family_links_mailable

    class Smtp:
        name = "smtp"
        reaches_real_inboxes = True

    local = ["http://127.0.0.1:8000/f/" + "A" * 32]
    with pytest.raises(UnreachableFamilyLinkError, match="PAYLINKS_OFFICE_URL") as refused:
        check_family_links_mailable(
            local, transport=Smtp(), recipient_is_test_address=False, allow_test_links=False
        )
    assert "A" * 32 not in str(refused.value)  # the host only, never the address
    for allowed in (
        {"recipient_is_test_address": True, "allow_test_links": False},
        {"recipient_is_test_address": False, "allow_test_links": True},
    ):
        check_family_links_mailable(local, transport=Smtp(), **allowed)
    public = ["https://office.club.example/f/" + "A" * 32]
    check_family_links_mailable(
        public, transport=Smtp(), recipient_is_test_address=False, allow_test_links=False
    )
