"""paylinks' one settings object: every knob comes from a `PAYLINKS_*` environment variable.

Nothing else in the project reads the environment. Call `get_settings()` once at the edge (CLI,
flow entry) and pass the result down.
"""

from __future__ import annotations

from enum import StrEnum
from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class EmailTransportName(StrEnum):
    outbox = "outbox"
    smtp = "smtp"


class SmtpSecurity(StrEnum):
    none = "none"
    starttls = "starttls"
    ssl = "ssl"


class Settings(BaseSettings):
    """Configuration for every paylinks flow, CLI command and adapter."""

    model_config = SettingsConfigDict(env_prefix="PAYLINKS_", extra="ignore")

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
    stripe_mint_batch_size: int = Field(default=50, ge=1, le=1000, description="Links minted per task run.")
    stripe_max_retries: int = Field(
        default=6, ge=0, le=20, description="Retries of one Stripe call on 429/5xx."
    )
    stripe_timeout_s: float = Field(default=30.0, gt=0)

    email_transport: EmailTransportName = EmailTransportName.outbox
    email_from: str = Field(default="paylinks <billing@paylinks.local>")
    outbox_dir: Path = Field(default=PROJECT_ROOT / "var" / "outbox")
    smtp_host: str = "127.0.0.1"
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_password_block: str | None = Field(
        default=None, description="Name of a Prefect Secret block holding the SMTP password (flows only)."
    )
    smtp_security: SmtpSecurity = SmtpSecurity.none
    smtp_timeout_s: float = Field(default=30.0, gt=0)
    allow_test_links: bool = Field(
        default=False,
        description="Allow mailing links that are not on Stripe's own domain to real parents.",
    )

    @field_validator("stripe_api_base")
    @classmethod
    def _strip_trailing_slash(cls, value: str | None) -> str | None:
        return value.rstrip("/") if value else value

    @property
    def uses_stripe_emulator(self) -> bool:
        return self.stripe_api_base is not None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read from the environment once."""
    return Settings()
