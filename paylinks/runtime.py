"""Process-wide handles built from settings: one engine per database URL, one mail transport."""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

from sqlalchemy.engine import Engine

from paylinks.store.tables import create_db_engine

if TYPE_CHECKING:
    from paylinks.messaging.transports import MailTransport
    from paylinks.settings import Settings


@lru_cache(maxsize=8)
def engine_for(database_url: str) -> Engine:
    """The shared engine (and its connection pool) for this URL in this process."""
    return create_db_engine(database_url)


_transports: dict[tuple, MailTransport] = {}


def mail_transport(settings: Settings) -> MailTransport:
    """The process's transport for these settings: one SMTP connection reused by every send."""
    from paylinks.messaging.transports import transport_from_settings

    key = (
        settings.email_transport,
        settings.smtp_host,
        settings.smtp_port,
        settings.smtp_username,
        settings.smtp_security,
        str(settings.outbox_dir),
    )
    if key not in _transports:
        _transports[key] = transport_from_settings(settings)
    return _transports[key]
