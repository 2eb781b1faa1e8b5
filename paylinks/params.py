"""Types of flow parameters, so the Prefect UI renders a proper form and the API refuses nonsense.

Constraints live in the JSON schema (`pattern`, `max_length`), which the Prefect server checks
when a deployment run is created with `enforce_parameter_schema`. When the run starts, each value
is checked again before the pattern, so a bad one is refused in words (the email address in full,
by email-validator) rather than with a regular expression. Descriptions come from each flow's
docstring (`Args:`), which is where Prefect reads them.
"""

from __future__ import annotations

import re
from typing import Annotated

from email_validator import EmailNotValidError, validate_email
from pydantic import BeforeValidator, Field

# Loose on purpose: the server-side shape check. email-validator has the final word.
EMAIL_SHAPE = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"


def normalized_email(address: str) -> str:
    """The address in its normal form, or ValueError saying what is wrong with it."""
    try:
        return validate_email(address, check_deliverability=False).normalized
    except EmailNotValidError as error:
        shown = address if len(address) <= 80 else address[:80] + "…"
        raise ValueError(f"{shown!r} is not a valid email address: {error}") from None


def is_valid_address(address: str) -> bool:
    """Whether mail can be addressed to it (a club's records may hold anything)."""
    try:
        normalized_email(address)
    except ValueError:
        return False
    return True


TENANT_SLUG_SHAPE = r"^[a-z0-9][a-z0-9-]*$"


def _an_email_address(value: object) -> object:
    # Before the schema's own checks, which would only say which regular expression failed.
    return normalized_email(value) if isinstance(value, str) else value


def _a_tenant_slug(value: object) -> object:
    if isinstance(value, str) and not (re.fullmatch(TENANT_SLUG_SHAPE, value) and len(value) <= 64):
        raise ValueError(
            f"{value[:80]!r} is not a tenant slug: lowercase letters, digits and hyphens, "
            "such as riverside-hoops"
        )
    return value


EmailAddress = Annotated[str, Field(pattern=EMAIL_SHAPE, max_length=320), BeforeValidator(_an_email_address)]
TenantSlug = Annotated[str, Field(pattern=TENANT_SLUG_SHAPE, max_length=64), BeforeValidator(_a_tenant_slug)]
