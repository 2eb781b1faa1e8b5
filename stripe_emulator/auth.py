"""API key checks with Stripe's 401s, never echoing a key back whole."""

from __future__ import annotations

import base64
import binascii
import hmac

from .errors import EmulatorError

# With no key configured the emulator takes any key shaped like a secret or restricted key,
# so a publishable key (`pk_...`) is still refused as Stripe would refuse it.
ACCEPTED_KEY_PREFIXES = ("sk_test_", "sk_live_", "rk_")

_KEY_PREFIXES_SHOWN = ("sk_test_", "sk_live_", "rk_test_", "rk_live_", "pk_test_", "pk_live_")
_MIN_HIDDEN_CHARACTERS = 8  # reveal a key's last 4 characters only when at least this many stay hidden
_VISIBLE_SUFFIX = 4


def authenticate(authorization: str | None, configured_key: str | None) -> str:
    """The API key presented in `Authorization`, if acceptable; otherwise Stripe's 401."""
    key = presented_key(authorization)
    if not key:
        raise EmulatorError(
            401,
            "You did not provide an API key. You need to provide your API key in the Authorization header, "
            "using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY').",
        )
    if configured_key is None:
        valid = key.startswith(ACCEPTED_KEY_PREFIXES)
    else:
        valid = hmac.compare_digest(key.encode(), configured_key.encode())
    if not valid:
        raise EmulatorError(401, f"Invalid API Key provided: {mask_api_key(key)}")
    return key


def presented_key(authorization: str | None) -> str | None:
    """The key from `Bearer <key>`, or from Basic auth's user name as Stripe also accepts (`curl -u sk_...:`)."""
    if not authorization:
        return None
    scheme, _, credentials = authorization.strip().partition(" ")
    credentials = credentials.strip()
    if scheme.lower() == "bearer":
        return credentials or None
    if scheme.lower() == "basic":
        try:
            user, _, _ = base64.b64decode(credentials, validate=True).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        return user or None
    return None


def mask_api_key(key: str) -> str:
    """`sk_test_51Habcdefgh...wxyz` → `sk_test_****wxyz`: enough to tell keys apart, never the secret."""
    prefix = next((known for known in _KEY_PREFIXES_SHOWN if key.startswith(known)), "")
    secret = key[len(prefix) :]
    if len(secret) - _VISIBLE_SUFFIX >= _MIN_HIDDEN_CHARACTERS:
        return f"{prefix}****{secret[-_VISIBLE_SUFFIX:]}"
    return f"{prefix}****"
