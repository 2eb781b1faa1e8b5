"""The Stripe key a run acts with: which one (the setting, a Secret block's, or the emulator's
default), whether one is configured, and the mode its prefix names.
"""

from __future__ import annotations

from paylinks.errors import ConfigurationError
from paylinks.settings import Settings

EMULATOR_DEFAULT_KEY = "sk_test_paylinks_emulator"


def key_is_live(api_key: str) -> bool:
    """Stripe keys say their mode: sk_live_/rk_live_ are live, everything else is test."""
    return api_key.startswith(("sk_live_", "rk_live_"))


def api_key(settings: Settings) -> str:
    if settings.stripe_api_key is not None:
        return settings.stripe_api_key.get_secret_value()
    if settings.uses_stripe_emulator:
        return EMULATOR_DEFAULT_KEY
    raise ConfigurationError(
        "PAYLINKS_STRIPE_API_KEY is not set. Set it to your Stripe secret key (or name a Prefect "
        "Secret block holding it in PAYLINKS_STRIPE_API_KEY_BLOCK), or set PAYLINKS_STRIPE_API_BASE "
        "to a local emulator's URL (`paylinks stripe-emulator`)."
    )


def has_stripe_key(settings: Settings) -> bool:
    """Whether calls can be made: a key, a Secret block's key, or an emulator."""
    return settings.stripe_api_key is not None or settings.uses_stripe_emulator


def check_stripe_settings(settings: Settings) -> None:
    """Fail before any work when no key is configured for real Stripe (a Secret block counts)."""
    if settings.stripe_api_key is None and settings.stripe_api_key_block:
        return  # read by the flow when it starts (tasks.run_settings.flow_settings)
    api_key(settings)
