"""Builders for the Stripe objects the emulator stores and returns, with every field Stripe sends.

Each builder returns the complete JSON shape of its type as in Stripe's published fixtures
(`stripe/openapi` `fixtures3.json`): the same field names, with the same JSON kinds. Values are
what real Stripe returns for what paylinks uses — one-time per-unit prices, payment links
without shipping, tax, subscriptions or Connect — so a field for a feature not in use is `null`
even where the fixture's example shows it filled in (`price.recurring`,
`payment_link.shipping_address_collection`, `checkout.session.shipping_cost`, ...).
"""

from __future__ import annotations

import copy
import secrets
import string
from typing import Any

# The version pinned by the `stripe` SDK paylinks uses; events carry it like Stripe's do.
API_VERSION = "2026-10-28.endive"

# Checkout Sessions stay open 24 hours unless told otherwise.
CHECKOUT_SESSION_LIFETIME_SECONDS = 24 * 60 * 60

_BASE62 = string.digits + string.ascii_letters

# Lengths of the random part of real Stripe ids of each kind.
_ID_RANDOM_LENGTHS = {
    "prod": 14,
    "price": 24,
    "plink": 24,
    "cs_test": 58,
    "evt": 24,
    "pi": 24,
    "li": 24,
    "req": 14,
}


def new_id(prefix: str) -> str:
    """A fresh id shaped like Stripe's: `prod_QXg1hqf4jFNsqG`, `cs_test_a1YS...`."""
    length = _ID_RANDOM_LENGTHS.get(prefix, 24)
    return f"{prefix}_" + "".join(secrets.choice(_BASE62) for _ in range(length))


def product(
    *,
    product_id: str,
    name: str,
    description: str | None,
    active: bool,
    metadata: dict[str, str],
    created: int,
) -> dict[str, Any]:
    return {
        "id": product_id,
        "object": "product",
        "active": active,
        "created": created,
        "default_price": None,
        "description": description,
        "images": [],
        "livemode": False,
        "marketing_features": [],
        "metadata": metadata,
        "name": name,
        "package_dimensions": None,
        "shippable": None,
        "statement_descriptor": None,
        "tax_code": None,
        "type": "service",  # what Stripe gives every product created without `type`
        "unit_label": None,
        "updated": created,
        "url": None,
    }


def price(
    *,
    price_id: str,
    product_id: str,
    currency: str,
    unit_amount: int,
    active: bool,
    lookup_key: str | None,
    nickname: str | None,
    metadata: dict[str, str],
    created: int,
) -> dict[str, Any]:
    return {
        "id": price_id,
        "object": "price",
        "active": active,
        "billing_scheme": "per_unit",
        "created": created,
        "currency": currency,
        "custom_unit_amount": None,
        "livemode": False,
        "lookup_key": lookup_key,
        "metadata": metadata,
        "nickname": nickname,
        "product": product_id,
        "recurring": None,  # one-time price
        "tax_behavior": "unspecified",
        "tiers_mode": None,
        "transform_quantity": None,
        "type": "one_time",
        "unit_amount": unit_amount,
        "unit_amount_decimal": str(unit_amount),
    }


def hosted_confirmation(custom_message: str | None = None) -> dict[str, Any]:
    """`after_completion` when Stripe shows its own "thanks" page (the default)."""
    return {"type": "hosted_confirmation", "hosted_confirmation": {"custom_message": custom_message}}


def redirect_after_completion(url: str) -> dict[str, Any]:
    return {"type": "redirect", "redirect": {"url": url}}


def payment_intent_data(*, metadata: dict[str, str], description: str | None = None) -> dict[str, Any]:
    return {
        "capture_method": None,
        "description": description,
        "metadata": metadata,
        "setup_future_usage": None,
        "statement_descriptor": None,
        "statement_descriptor_suffix": None,
        "transfer_group": None,
    }


def completed_sessions_restriction(*, limit: int, count: int = 0) -> dict[str, Any]:
    return {"completed_sessions": {"count": count, "limit": limit}}


def _invoice_creation_disabled() -> dict[str, Any]:
    return {
        "enabled": False,
        "invoice_data": {
            "account_tax_ids": None,
            "custom_fields": None,
            "description": None,
            "footer": None,
            "issuer": None,
            "metadata": {},
            "rendering_options": None,
        },
    }


def _no_custom_text() -> dict[str, Any]:
    return {
        "after_submit": None,
        "shipping_address": None,
        "submit": None,
        "terms_of_service_acceptance": None,
    }


def payment_link(
    *,
    link_id: str,
    url: str,
    currency: str,
    metadata: dict[str, str],
    after_completion: dict[str, Any],
    inactive_message: str | None,
    payment_intent_data: dict[str, Any] | None,
    restrictions: dict[str, Any] | None,
) -> dict[str, Any]:
    return {
        "id": link_id,
        "object": "payment_link",
        "active": True,
        "after_completion": after_completion,
        "allow_promotion_codes": False,
        "application": None,
        "application_fee_amount": None,
        "application_fee_percent": None,
        "automatic_tax": {"enabled": False, "liability": None},
        "billing_address_collection": "auto",
        "consent_collection": None,
        "currency": currency,
        "custom_fields": [],
        "custom_text": _no_custom_text(),
        "customer_creation": "if_required",
        "inactive_message": inactive_message,
        "invoice_creation": _invoice_creation_disabled(),
        "livemode": False,
        "managed_payments": {"enabled": False},
        "metadata": metadata,
        "on_behalf_of": None,
        "payment_intent_data": payment_intent_data,
        "payment_method_collection": "always",
        "payment_method_options": None,
        "payment_method_types": None,  # None: Stripe picks the methods from the dashboard settings
        "phone_number_collection": {"enabled": False},
        "restrictions": restrictions,
        "shipping_address_collection": None,
        "shipping_options": [],
        "submit_type": "auto",
        "subscription_data": None,  # one-time prices only
        "tax_id_collection": {"enabled": False, "required": "never"},
        "transfer_data": None,
        "url": url,
    }


def line_item(
    *, item_id: str, price_object: dict[str, Any], quantity: int, description: str
) -> dict[str, Any]:
    """An `item` as returned by `/line_items`: the price in full and the amounts it comes to."""
    amount = price_object["unit_amount"] * quantity
    return {
        "id": item_id,
        "object": "item",
        "adjustable_quantity": None,
        "amount_discount": 0,
        "amount_subtotal": amount,
        "amount_tax": 0,
        "amount_total": amount,
        "currency": price_object["currency"],
        "description": description,
        "metadata": None,
        "price": copy.deepcopy(price_object),
        "quantity": quantity,
    }


def _customer_details(email: str) -> dict[str, Any]:
    no_address = {
        "city": None,
        "country": None,
        "line1": None,
        "line2": None,
        "postal_code": None,
        "state": None,
    }
    return {
        "address": no_address,
        "business_name": None,
        "email": email,
        "individual_name": None,
        "name": None,
        "phone": None,
        "tax_exempt": "none",
        "tax_ids": [],
    }


def completed_checkout_session(
    *,
    session_id: str,
    link: dict[str, Any],
    amount_subtotal: int,
    amount_total: int,
    payment_status: str,
    payment_intent_id: str,
    customer_email: str,
    created: int,
) -> dict[str, Any]:
    """The session Stripe records when a customer completes checkout on a payment link."""
    return {
        "id": session_id,
        "object": "checkout.session",
        "adaptive_pricing": {"enabled": False},
        "after_expiration": None,
        "allow_promotion_codes": link["allow_promotion_codes"],
        "amount_subtotal": amount_subtotal,
        "amount_total": amount_total,
        "automatic_tax": {"enabled": False, "liability": None, "provider": None, "status": None},
        "billing_address_collection": link["billing_address_collection"],
        "cancel_url": None,
        "client_reference_id": None,
        "client_secret": None,
        "collected_information": {"business_name": None, "individual_name": None, "shipping_details": None},
        "consent": None,
        "consent_collection": None,
        "created": created,
        "currency": link["currency"],
        "currency_conversion": None,
        "custom_fields": [],
        "custom_text": _no_custom_text(),
        "customer": None,
        "customer_account": None,
        "customer_creation": link["customer_creation"],
        "customer_details": _customer_details(customer_email),
        "customer_email": None,
        "discounts": [],
        "expires_at": created + CHECKOUT_SESSION_LIFETIME_SECONDS,
        "integration_identifier": None,
        "invoice": None,
        "invoice_creation": _invoice_creation_disabled(),
        "livemode": False,
        "locale": "auto",
        "managed_payments": {"enabled": False},
        "metadata": {},  # a payment link's metadata is not copied onto its sessions
        "mode": "payment",
        "origin_context": None,
        "payment_intent": payment_intent_id,
        "payment_link": link["id"],
        "payment_method_collection": link["payment_method_collection"],
        "payment_method_configuration_details": None,
        "payment_method_options": {},
        "payment_method_types": ["card"],
        "payment_status": payment_status,
        "permissions": None,
        "phone_number_collection": {"enabled": False},
        "recovered_from": None,
        "saved_payment_method_options": None,
        "setup_intent": None,
        "shipping_address_collection": None,
        "shipping_cost": None,
        "shipping_options": [],
        "status": "complete",
        "submit_type": link["submit_type"],
        "subscription": None,
        "success_url": None,
        "total_details": {"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0},
        "ui_mode": "hosted",
        "url": None,  # a complete session can no longer be visited
        "wallet_options": None,
    }


def event(
    *,
    event_id: str,
    event_type: str,
    data_object: dict[str, Any],
    previous_attributes: dict[str, Any] | None,
    request_id: str | None,
    idempotency_key: str | None,
    created: int,
) -> dict[str, Any]:
    data: dict[str, Any] = {"object": copy.deepcopy(data_object)}
    if previous_attributes is not None:
        data["previous_attributes"] = previous_attributes
    return {
        "id": event_id,
        "object": "event",
        "api_version": API_VERSION,
        "created": created,
        "data": data,
        "livemode": False,
        "pending_webhooks": 0,  # the emulator delivers no webhooks
        "request": {"id": request_id, "idempotency_key": idempotency_key},
        "type": event_type,
    }


def list_object(url: str, data: list[dict[str, Any]], has_more: bool) -> dict[str, Any]:
    return {"object": "list", "data": data, "has_more": has_more, "url": url}
