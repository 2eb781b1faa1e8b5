"""paylinks' one settings object: every knob comes from a `PAYLINKS_*` environment variable.

Nothing else in the project reads the environment. The edge (the `paylinks` command, a flow run
started by a worker, the office) calls `load_settings()` once and passes the value down; tests and
the demo build a `Settings` value themselves.

Settings that are malformed *or dangerous* are refused with one line naming the variable: a key
sent in clear to another machine, SMTP credentials without encryption, a From address that is
not an address.
"""

from __future__ import annotations

import ipaddress
import re
from enum import StrEnum
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa
from email_validator import EmailNotValidError, validate_email
from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from paylinks.errors import ConfigurationError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# Secret (sk_) and restricted (rk_) keys; a key pasted with a space or a line break does not match.
STRIPE_SECRET_KEY = re.compile(r"(sk|rk)_(live|test)_[A-Za-z0-9_]+")
ENV_PREFIX = "PAYLINKS_"


class EmailTransportName(StrEnum):
    outbox = "outbox"
    smtp = "smtp"


class SmtpSecurity(StrEnum):
    none = "none"
    starttls = "starttls"
    ssl = "ssl"


def is_loopback_host(host: str | None) -> bool:
    """True for localhost and the loopback addresses: traffic that never leaves this machine."""
    if not host:
        return False
    if host.lower() in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class Settings(BaseSettings):
    """Configuration for every paylinks flow, CLI command and adapter."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    database_url: str = Field(
        default=f"sqlite:///{PROJECT_ROOT / 'var' / 'paylinks.db'}",
        description="SQLAlchemy URL of the club database (postgresql+psycopg://... in production).",
    )

    stripe_api_key: SecretStr | None = Field(default=None, description="Stripe secret key (sk_...).")
    stripe_api_key_block: str | None = Field(
        default=None, description="Name of a Prefect Secret block holding the Stripe key (flows only)."
    )
    stripe_api_base: str | None = Field(
        default=None, description="Base URL of a local Stripe emulator; unset means real Stripe."
    )
    stripe_max_rps: float = Field(default=20.0, gt=0, le=100, description="Stripe calls per second, at most.")
    stripe_link_create_rps: float = Field(
        default=25.0,
        gt=0,
        le=100,
        description="Payment links created per second, at most (Stripe's own limit: 25/s).",
    )
    stripe_mint_batch_size: int = Field(default=50, ge=1, le=1000, description="Links minted per task run.")
    stripe_account_recheck_minutes: int = Field(
        default=60,
        ge=0,
        le=24 * 60,
        description="The backfill takes the key's account as Stripe confirmed it this many minutes ago or less, without asking again (0: ask every run).",
    )
    stripe_max_retries: int = Field(
        default=6, ge=0, le=20, description="Retries of one Stripe call on 429/5xx."
    )
    stripe_timeout_s: float = Field(default=30.0, gt=0, le=600)

    email_transport: EmailTransportName = EmailTransportName.outbox
    email_from: str = Field(default="paylinks <billing@paylinks.example>")
    outbox_dir: Path = Field(default=PROJECT_ROOT / "var" / "outbox")
    smtp_host: str = "127.0.0.1"
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_password_block: str | None = Field(
        default=None, description="Name of a Prefect Secret block holding the SMTP password (flows only)."
    )
    smtp_security: SmtpSecurity = SmtpSecurity.none
    smtp_timeout_s: float = Field(default=30.0, gt=0, le=600)
    blast_batch_size: int = Field(
        default=50,
        ge=1,
        le=1000,
        description="Parents emailed per task run of a blast, over one mail connection.",
    )
    mail_connections: int = Field(
        default=2,
        ge=1,
        le=8,
        description="Batches of a blast or reminder run sent at once over SMTP, each over its own connection.",
    )
    mail_retry_delays_s: tuple[float, ...] = Field(
        default=(5.0, 30.0),
        max_length=5,
        description="Pauses before each new try of an email the mail server refused for now (JSON list, e.g. [5, 30]; [] never tries again).",
    )
    blast_claim_lease_minutes: int = Field(
        default=15,
        ge=1,
        le=24 * 60,
        description="How long a blast's claim on a parent's email holds before another run may take it over.",
    )
    club_timezone: str = Field(
        default="America/New_York",
        description="Time zone (IANA name) the office and emails show times in, for a club that names none.",
    )
    recent_email_hold_hours: int = Field(
        default=24,
        ge=0,
        le=24 * 30,
        description="A parent sent an outstanding-balance email this many hours ago or less is held back from a new blast (0: never).",
    )
    allow_test_links: bool = Field(
        default=False,
        description="Allow mailing links that are not on Stripe's own domain to real parents.",
    )
    office_url: str = Field(
        default="http://127.0.0.1:8000",
        description="Public base URL of the club office (paylinks serve): test emails' preview links point there.",
    )
    office_session_secret: SecretStr | None = Field(
        default=None,
        description="Key that signs the office's session cookies and CSRF tokens (32+ random characters).",
    )
    office_session_secret_block: str | None = Field(
        default=None, description="Name of a Prefect Secret block holding the office session secret."
    )
    family_link_secret: SecretStr | None = Field(
        default=None,
        description="Key each parent's family page address is derived from (32+ random characters); unset with a SQLite database, one is made and kept beside it.",
    )
    family_link_secret_block: str | None = Field(
        default=None, description="Name of a Prefect Secret block holding the family link secret."
    )
    office_session_hours: float = Field(
        default=8.0,
        gt=0,
        le=24 * 30,
        description="How long an office login lasts before the person logs in again.",
    )
    office_behind_proxy: bool = Field(
        default=False,
        description="The office is served behind a TLS proxy: trust its X-Forwarded-Proto and X-Forwarded-For.",
    )
    office_login_failures_per_account: int = Field(
        default=5,
        ge=1,
        le=1000,
        description="Login attempts at one account from one address, in the window, before more are refused.",
    )
    office_login_failures_per_address: int = Field(
        default=20,
        ge=1,
        le=10000,
        description="Different accounts one address may fail to log in to, in the window, before it is refused.",
    )
    office_login_window_s: int = Field(
        default=900, ge=1, le=86400, description="Seconds a failed login counts towards the throttle."
    )
    office_test_sends_per_hour: int = Field(
        default=10,
        ge=1,
        le=10000,
        description="Test emails one API token may ask the admin endpoint for in an hour, before 429.",
    )
    stripe_webhook_secret: SecretStr | None = Field(
        default=None, description="Signing secret of the Stripe webhook endpoint (whsec_...)."
    )
    stripe_webhook_secret_block: str | None = Field(
        default=None, description="Name of a Prefect Secret block holding the Stripe webhook secret."
    )
    prefect_ui_url: str | None = Field(
        default=None,
        description="Base URL of the Prefect UI the office links runs to (default: Prefect's own PREFECT_UI_URL, else http://127.0.0.1:4200, where `make ui` serves it).",
    )

    @field_validator("database_url")
    @classmethod
    def _a_database_url(cls, value: str) -> str:
        try:
            url = sa.make_url(value)
        except sa.exc.ArgumentError:
            raise ValueError(
                "is not a database URL; use sqlite:///path/to/file.db or "
                "postgresql+psycopg://user:password@host:5432/database"
            ) from None
        if url.get_backend_name() not in ("sqlite", "postgresql"):
            raise ValueError(
                f"names a {url.get_backend_name()} database; paylinks runs on sqlite or postgresql"
            )
        return value

    @field_validator("stripe_api_key", mode="before")
    @classmethod
    def _a_secret_key(cls, value: object) -> object:
        key = value.get_secret_value() if isinstance(value, SecretStr) else value
        if key is None or (isinstance(key, str) and not key.strip()):
            return None  # an empty variable is an unset one
        if not isinstance(key, str) or not STRIPE_SECRET_KEY.fullmatch(key):
            # Never repeat the value: it may be a real key pasted with a typo.
            raise ValueError(
                "is not a Stripe secret key: it should start with sk_live_, sk_test_ or rk_ and hold "
                "no spaces (a publishable pk_ key cannot create links)"
            )
        return value

    @field_validator("stripe_api_base")
    @classmethod
    def _a_safe_api_base(cls, value: str | None) -> str | None:
        if not value:
            return None
        parts = urlsplit(value.rstrip("/"))
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http(s) URL such as http://127.0.0.1:12111")
        if parts.scheme == "http" and not is_loopback_host(parts.hostname):
            # The Stripe key travels in every request's Authorization header.
            raise ValueError(
                "is plain http to another machine, which would send the Stripe key in clear; "
                "use https, or an emulator on 127.0.0.1"
            )
        return value.rstrip("/")

    @field_validator("mail_retry_delays_s")
    @classmethod
    def _pauses_in_bounds(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        if any(not 0 <= pause <= 600 for pause in value):
            raise ValueError("each pause is 0 to 600 seconds")
        return value

    @field_validator("club_timezone")
    @classmethod
    def _a_known_timezone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value.strip())
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                "is not a time zone name (they look like America/Chicago or Europe/London)"
            ) from None
        return value.strip()

    @field_validator("email_from")
    @classmethod
    def _a_from_address(cls, value: str) -> str:
        from email.headerregistry import Address
        from email.utils import parseaddr

        if any(ch in value for ch in "\r\n"):
            raise ValueError("must be one line (it becomes the From header)")
        name, address = parseaddr(value)
        try:
            normalized = validate_email(address, check_deliverability=False).normalized
        except EmailNotValidError as error:
            raise ValueError(f"is not a valid From address ({error})") from None
        local, _, domain = normalized.rpartition("@")
        return str(Address(display_name=name, username=local, domain=domain))

    @model_validator(mode="after")
    def _live_key_goes_to_stripe_only(self) -> Settings:
        key = self.stripe_api_key.get_secret_value() if self.stripe_api_key else ""
        host = urlsplit(self.stripe_api_base).hostname if self.stripe_api_base else None
        if key.startswith(("sk_live_", "rk_live_")) and host and not is_loopback_host(host):
            raise ValueError(
                f"PAYLINKS_STRIPE_API_BASE would send a live Stripe key to {host}, which is not Stripe; "
                "unset PAYLINKS_STRIPE_API_BASE to use Stripe itself"
            )
        return self

    @model_validator(mode="after")
    def _credentials_are_encrypted(self) -> Settings:
        has_credentials = self.smtp_username is not None or self.smtp_password is not None
        if (
            self.email_transport == EmailTransportName.smtp
            and has_credentials
            and self.smtp_security == SmtpSecurity.none
            and not is_loopback_host(self.smtp_host)
        ):
            raise ValueError(
                "PAYLINKS_SMTP_SECURITY is none while a username or password is set for "
                f"{self.smtp_host}: the password would cross the network in clear; "
                "set PAYLINKS_SMTP_SECURITY=starttls or ssl"
            )
        return self

    @property
    def uses_stripe_emulator(self) -> bool:
        return self.stripe_api_base is not None

    def safe_database_url(self) -> str:
        """The database URL with any password hidden: the only form that may be printed."""
        return sa.make_url(self.database_url).render_as_string(hide_password=True)


def load_settings(**overrides: Any) -> Settings:
    """Read the settings from the environment once; a bad one is a ConfigurationError naming it.

    The message never repeats a value (a database URL or SMTP setting may hold a password).
    """
    try:
        return Settings(**overrides)
    except ValidationError as error:
        raise ConfigurationError(describe_validation_error(error)) from None


def describe_validation_error(error: ValidationError) -> str:
    problems = []
    for detail in error.errors(include_input=False, include_url=False):
        field = ".".join(str(part) for part in detail["loc"])
        message = str(detail["msg"]).removeprefix("Value error, ")
        problems.append(f"{ENV_PREFIX}{field.upper()} {message}" if field else message)
    return "; ".join(problems)
