"""Types of flow parameters, so the Prefect UI renders a proper form and the API refuses nonsense.

Constraints live in the JSON schema (`pattern`, `max_length`), which the Prefect server checks
when a deployment run is created with `enforce_parameter_schema`; the email address is then
checked in full (email-validator) when the run starts. Descriptions come from each flow's
docstring (`Args:`), which is where Prefect reads them.
"""

from __future__ import annotations

from typing import Annotated

from email_validator import EmailNotValidError, validate_email
from pydantic import AfterValidator, Field

# Loose on purpose: the server-side shape check. email-validator has the final word.
EMAIL_SHAPE = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"


def normalized_email(address: str) -> str:
    """The address in its normal form, or ValueError saying what is wrong with it."""
    try:
        return validate_email(address, check_deliverability=False).normalized
    except EmailNotValidError as error:
        raise ValueError(f"{address!r} is not a valid email address: {error}") from None


EmailAddress = Annotated[str, Field(pattern=EMAIL_SHAPE, max_length=320), AfterValidator(normalized_email)]
TenantSlug = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]*$", max_length=64)]
