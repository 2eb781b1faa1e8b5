"""Helpers shared by the emulator's tests: SDK clients, one-call setups, and the fixture shape check."""

from __future__ import annotations

from typing import Any

import httpx
import stripe

from stripe_emulator import EmulatorServer

API_KEY = "sk_test_emulatorTestKey0001"

# Fields the fixture shows filled in but real Stripe returns as null for what the emulator
# models (one-time prices; links without shipping, tax, subscriptions, Connect or custom text;
# completed sessions; card payments without wallets or 3-D Secure; onboarded accounts). Dotted
# paths name nested fields. Everything else must match the
# fixture's JSON kind exactly.
NULL_WHERE_STRIPE_RETURNS_NULL: dict[str, set[str]] = {
    "product": {"package_dimensions"},
    "price": {"custom_unit_amount", "recurring", "transform_quantity"},
    "payment_link": {
        "automatic_tax.liability",
        "consent_collection",
        "custom_text.after_submit",
        "custom_text.shipping_address",
        "custom_text.submit",
        "custom_text.terms_of_service_acceptance",
        "invoice_creation.invoice_data.issuer",
        "invoice_creation.invoice_data.rendering_options",
        "payment_method_options",
        "shipping_address_collection",
        "subscription_data",
        "transfer_data",
    },
    "checkout.session": {
        "after_expiration",
        "automatic_tax.liability",
        "cancel_url",
        "collected_information.shipping_details",
        "consent",
        "consent_collection",
        "currency_conversion",
        "custom_text.after_submit",
        "custom_text.shipping_address",
        "custom_text.submit",
        "custom_text.terms_of_service_acceptance",
        "invoice_creation.invoice_data.issuer",
        "invoice_creation.invoice_data.rendering_options",
        "payment_method_configuration_details",
        "permissions",
        "saved_payment_method_options",
        "shipping_address_collection",
        "shipping_cost",
        "success_url",
        "url",
        "wallet_options",
    },
    "event": set(),
    "payment_intent": {
        "automatic_payment_methods",
        "canceled_at",
        "last_payment_error",
        "next_action",
        "payment_method_configuration_details",
        "processing",
        "shipping",
        "transfer_data",
    },
    "charge": {
        "billing_details.name",
        "description",
        "payment_method_details.card.installments",
        "payment_method_details.card.three_d_secure",
        "payment_method_details.card.wallet",
        "shipping",
        "source",
        "transfer_data",
    },
    "refund": set(),
    "dispute": set(),
    "account": {
        "business_profile.annual_revenue",
        "business_profile.support_address",
        "email",
        "requirements.disabled_reason",  # null: nothing is disabled on an onboarded account
    },
    "item": {
        "adjustable_quantity",
        "price.custom_unit_amount",
        "price.recurring",
        "price.transform_quantity",
    },
}

# Nested objects whose keys are free-form content, not schema: compared as objects only.
FREE_FORM_PATHS = {
    "metadata",
    "payment_intent_data.metadata",
    "subscription_data.metadata",
    "data.object",
    "price.metadata",
    "charge.metadata",
}


# ---------------------------------------------------------------------- helpers


def sdk_client(
    server: EmulatorServer, api_key: str = API_KEY, stripe_account: str | None = None
) -> stripe.StripeClient:
    """The real SDK on the emulator, never retrying; `stripe_account` acts in a connected account."""
    return stripe.StripeClient(
        api_key, base_addresses={"api": server.url}, max_network_retries=0, stripe_account=stripe_account
    )


def create_price(
    client: stripe.StripeClient, *, unit_amount: int = 4500, **price_params: Any
) -> stripe.Price:
    product = client.v1.products.create(params={"name": "U12 season fee"})
    return client.v1.prices.create(
        params={"product": product.id, "unit_amount": unit_amount, "currency": "usd", **price_params}
    )


def create_link(client: stripe.StripeClient, price_id: str, **link_params: Any) -> stripe.PaymentLink:
    return client.v1.payment_links.create(
        params={"line_items": [{"price": price_id, "quantity": 1}], **link_params}
    )


def pay(url: str, **form: str) -> httpx.Response:
    """What a parent's browser does on the Pay button, asking for JSON to read the session back."""
    return httpx.post(url, data=form, headers={"Accept": "application/json"})


def json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    return {int: "integer", float: "number", str: "string", list: "array", dict: "object"}[type(value)]


def shape_mismatches(
    example: dict[str, Any], actual: dict[str, Any], nullable: set[str], path: str = ""
) -> list[str]:
    """Every fixture field missing from `actual` or of another JSON kind, recursing into objects."""
    mismatches = []
    for field, example_value in example.items():
        field_path = f"{path}.{field}" if path else field
        if field not in actual:
            mismatches.append(f"{field_path}: missing")
            continue
        value = actual[field]
        if example_value is None or (value is None and field_path in nullable):
            continue
        if json_kind(value) != json_kind(example_value):
            mismatches.append(f"{field_path}: {json_kind(value)}, fixture has {json_kind(example_value)}")
        elif isinstance(example_value, dict) and field_path not in FREE_FORM_PATHS:
            mismatches += shape_mismatches(example_value, value, nullable, field_path)
    return mismatches
