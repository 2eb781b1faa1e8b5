"""Process-wide handles built from settings: one engine per database URL."""

from __future__ import annotations

from functools import lru_cache

from sqlalchemy.engine import Engine

from paylinks.db import create_db_engine


@lru_cache(maxsize=8)
def engine_for(database_url: str) -> Engine:
    """The shared engine (and its connection pool) for this URL in this process."""
    return create_db_engine(database_url)
