"""Each parent's family page link as emails and the office give it: the real page (its token made
on first need), or, for a test email or a preview, the office's preview of it that takes no payment."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy.engine import Connection

from paylinks.family.secret import family_secret
from paylinks.family.tokens import family_tokens_for, family_url
from paylinks.settings import Settings


def family_links(
    connection: Connection, settings: Settings, tenant_id: int, parent_ids: Iterable[int]
) -> dict[int, str]:
    """Each parent's page address (`PAYLINKS_OFFICE_URL/f/<token>`); another tenant's parent gets none."""
    secret = family_secret(settings)
    tokens = family_tokens_for(connection, secret, tenant_id, parent_ids)
    return {parent_id: family_url(settings.office_url, token) for parent_id, token in tokens.items()}


def family_preview_url(office_url: str, parent_id: int) -> str:
    """The office's preview of a parent's page (signed-in people of the club only; nothing payable)."""
    return f"{office_url.rstrip('/')}/preview/family/{parent_id}"
