"""Where Stripe's vendored example objects live (see tests/stripe_fixtures/README.md)."""

from __future__ import annotations

from pathlib import Path

STRIPE_FIXTURES = Path(__file__).resolve().parents[1] / "stripe_fixtures" / "fixtures3.json"

SOURCE = "stripe/openapi f6c2a48, MIT"

PROVENANCE = f"stripe fixtures: tests/stripe_fixtures/fixtures3.json ({SOURCE})"
