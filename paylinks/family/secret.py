"""The key every family page address is derived from: `PAYLINKS_FAMILY_LINK_SECRET` (or a Prefect
Secret block, read by the edge), else, on the embedded defaults (a SQLite database), one made once
and kept beside the database in `family-link-secret` (0600). The database never holds it, so a
copy of the database opens no family page. It is never logged or printed.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from functools import lru_cache
from pathlib import Path

import sqlalchemy as sa

from paylinks.errors import ConfigurationError
from paylinks.settings import PROJECT_ROOT, Settings

SECRET_FILE = "family-link-secret"
MIN_SECRET_LENGTH = 32

NOT_SET = (
    "PAYLINKS_FAMILY_LINK_SECRET is not set: every parent's family page address is derived from it, "
    "so the office and every worker need the same one. Set it to 32 or more random characters "
    "(e.g. `python -c 'import secrets; print(secrets.token_urlsafe(32))'`), or name a Prefect Secret "
    "block in PAYLINKS_FAMILY_LINK_SECRET_BLOCK"
)


def kept_secret_folder(database_url: str) -> Path | None:
    """Where the embedded defaults keep the secret: beside the SQLite database (`var/` for one in
    memory); None for a server database, whose processes may run on several machines."""
    url = sa.make_url(database_url)
    if url.get_backend_name() != "sqlite":
        return None
    if url.database in (None, "", ":memory:"):
        return PROJECT_ROOT / "var"
    return Path(str(url.database)).resolve().parent


def family_secret(settings: Settings) -> bytes:
    """The key, as bytes. ConfigurationError (one line, never the value) when there is none."""
    if settings.family_link_secret is not None:
        value = settings.family_link_secret.get_secret_value()
        if len(value) < MIN_SECRET_LENGTH:
            raise ConfigurationError(
                f"PAYLINKS_FAMILY_LINK_SECRET is too short to keep family pages unguessable: use at "
                f"least {MIN_SECRET_LENGTH} random characters"
            )
        return value.encode()
    folder = kept_secret_folder(settings.database_url)
    if folder is None:
        raise ConfigurationError(NOT_SET)
    return _kept(folder / SECRET_FILE).encode()


@lru_cache(maxsize=16)
def _kept(path: Path) -> str:
    """The secret in `path`; made and written (0600) by the first process that needs it. Two
    processes making it at once agree: the file is linked into place only if none exists."""
    existing = _read(path)
    if existing:
        if path.stat().st_mode & 0o077:
            path.chmod(0o600)  # a secret others can read is tightened, not used as it is
        return existing
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(secrets.token_urlsafe(48) + "\n")
        with contextlib.suppress(FileExistsError):  # another process kept its own first: use that
            os.link(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    kept = _read(path)
    if not kept:
        raise ConfigurationError(
            f"the family link secret in {path} is empty: delete the file to make a new one"
        )
    return kept


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return ""
