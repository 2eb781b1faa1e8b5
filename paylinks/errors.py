"""Errors paylinks raises on purpose, each carrying a message meant for the person running it."""


class PaylinksError(Exception):
    """Base class: the message is safe to print (no secrets) and says what to fix."""

    exit_code = 1


class ConfigurationError(PaylinksError):
    """A setting is missing or wrong, or a service named by one cannot be reached."""

    exit_code = 2


class UnknownTenantError(PaylinksError):
    exit_code = 2

    def __init__(self, slug: str, known: list[str]):
        known_text = ", ".join(known) if known else "none yet; run `paylinks seed-demo`"
        super().__init__(f"unknown tenant {slug!r} (known tenants: {known_text})")
        self.slug = slug


class StripeKeyRejectedError(PaylinksError):
    exit_code = 2

    def __init__(self) -> None:
        super().__init__(
            "Stripe rejected the API key (401). Check PAYLINKS_STRIPE_API_KEY; the key is not shown."
        )
