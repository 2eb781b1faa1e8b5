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
    "cs_live": 58,
    "acct": 16,
    "evt": 24,
    "pi": 24,
    "li": 24,
    "req": 14,
}


def new_id(prefix: str) -> str:
    """A fresh id shaped like Stripe's: `prod_QXg1hqf4jFNsqG`, `cs_test_a1YS...`."""
    return f"{prefix}_" + _random_part(_ID_RANDOM_LENGTHS.get(prefix, 24))


def _random_part(length: int) -> str:
    return "".join(secrets.choice(_BASE62) for _ in range(length))


def product(
    *,
    product_id: str,
    name: str,
    description: str | None,
    active: bool,
    metadata: dict[str, str],
    created: int,
    livemode: bool,
) -> dict[str, Any]:
    return {
        "id": product_id,
        "object": "product",
        "active": active,
        "created": created,
        "default_price": None,
        "description": description,
        "images": [],
        "livemode": livemode,
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
    livemode: bool,
) -> dict[str, Any]:
    return {
        "id": price_id,
        "object": "price",
        "active": active,
        "billing_scheme": "per_unit",
        "created": created,
        "currency": currency,
        "custom_unit_amount": None,
        "livemode": livemode,
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


def no_custom_text() -> dict[str, Any]:
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
    livemode: bool,
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
        "custom_text": no_custom_text(),
        "customer_creation": "if_required",
        "inactive_message": inactive_message,
        "invoice_creation": _invoice_creation_disabled(),
        "livemode": livemode,
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
    *,
    item_id: str,
    price_object: dict[str, Any],
    quantity: int,
    description: str,
    metadata: dict[str, str] | None = None,
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
        "metadata": metadata,
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


def checkout_session(
    *,
    session_id: str,
    link: dict[str, Any],
    amount_subtotal: int,
    amount_total: int,
    created: int,
    url: str,
    livemode: bool,
) -> dict[str, Any]:
    """The open session Stripe creates when a customer opens a payment link's page.

    `complete_checkout_session` turns it into the record of a finished checkout.
    """
    session = _open_checkout_session(
        session_id=session_id,
        currency=link["currency"],
        amount_subtotal=amount_subtotal,
        amount_total=amount_total,
        created=created,
        expires_at=created + CHECKOUT_SESSION_LIFETIME_SECONDS,
        url=url,
        livemode=livemode,
    )
    session.update(
        {
            "allow_promotion_codes": link["allow_promotion_codes"],
            "billing_address_collection": link["billing_address_collection"],
            "custom_text": copy.deepcopy(link["custom_text"]),  # the link's page, as the customer saw it
            "customer_creation": link["customer_creation"],
            "locale": "auto",
            "payment_link": link["id"],
            "payment_method_collection": link["payment_method_collection"],
            "submit_type": link["submit_type"],
        }
    )
    return session


def api_checkout_session(
    *,
    session_id: str,
    currency: str,
    amount_total: int,
    created: int,
    expires_at: int,
    url: str,
    livemode: bool,
    metadata: dict[str, str],
    success_url: str | None,
    cancel_url: str | None,
    client_reference_id: str | None,
    customer_email: str | None,
    payment_method_types: list[str],
) -> dict[str, Any]:
    """An open payment-mode session made by `POST /v1/checkout/sessions` (no payment link)."""
    session = _open_checkout_session(
        session_id=session_id,
        currency=currency,
        amount_subtotal=amount_total,
        amount_total=amount_total,
        created=created,
        expires_at=expires_at,
        url=url,
        livemode=livemode,
    )
    session.update(
        {
            "cancel_url": cancel_url,
            "client_reference_id": client_reference_id,
            "customer_email": customer_email,
            "metadata": metadata,
            "payment_method_types": payment_method_types,
            "success_url": success_url,
        }
    )
    return session


def _open_checkout_session(
    *,
    session_id: str,
    currency: str,
    amount_subtotal: int,
    amount_total: int,
    created: int,
    expires_at: int,
    url: str,
    livemode: bool,
) -> dict[str, Any]:
    """Every field of an open payment-mode session, as Stripe fills them when nothing more is asked."""
    return {
        "id": session_id,
        "object": "checkout.session",
        "adaptive_pricing": {"enabled": False},
        "after_expiration": None,
        "allow_promotion_codes": None,
        "amount_subtotal": amount_subtotal,
        "amount_total": amount_total,
        "automatic_tax": {"enabled": False, "liability": None, "provider": None, "status": None},
        "billing_address_collection": None,
        "cancel_url": None,
        "client_reference_id": None,
        "client_secret": None,
        "collected_information": {"business_name": None, "individual_name": None, "shipping_details": None},
        "consent": None,
        "consent_collection": None,
        "created": created,
        "currency": currency,
        "currency_conversion": None,
        "custom_fields": [],
        "custom_text": no_custom_text(),
        "customer": None,
        "customer_account": None,
        "customer_creation": "if_required",
        "customer_details": None,  # filled in when the customer completes checkout
        "customer_email": None,
        "discounts": [],
        "expires_at": expires_at,
        "integration_identifier": None,
        "invoice": None,
        "invoice_creation": _invoice_creation_disabled(),
        "livemode": livemode,
        "locale": None,
        "managed_payments": {"enabled": False},
        "metadata": {},  # a payment link's metadata is not copied onto its sessions
        "mode": "payment",
        "origin_context": None,
        "payment_intent": None,  # created when the customer confirms
        "payment_link": None,
        "payment_method_collection": "always",
        "payment_method_configuration_details": None,
        "payment_method_options": {},
        # Left to the account's settings: cards and US bank debits here.
        "payment_method_types": ["card", "us_bank_account"],
        "payment_status": "unpaid",
        "permissions": None,
        "phone_number_collection": {"enabled": False},
        "recovered_from": None,
        "saved_payment_method_options": None,
        "setup_intent": None,
        "shipping_address_collection": None,
        "shipping_cost": None,
        "shipping_options": [],
        "status": "open",
        "submit_type": None,
        "subscription": None,
        "success_url": None,
        "total_details": {"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0},
        "ui_mode": "hosted",
        "url": url,
        "wallet_options": None,
    }


def complete_checkout_session(
    session: dict[str, Any], *, payment_intent_id: str, payment_status: str, customer_email: str
) -> None:
    """Record, in place, the customer finishing checkout on `session`."""
    session.update(
        {
            "customer_details": _customer_details(customer_email),
            "payment_intent": payment_intent_id,
            "payment_status": payment_status,
            "status": "complete",
            "url": None,  # a complete session can no longer be visited
        }
    )


def expire_checkout_session(session: dict[str, Any]) -> None:
    """Record, in place, an open session expiring unpaid."""
    session.update({"status": "expired", "url": None})


def payment_intent(
    *,
    intent_id: str,
    amount: int,
    currency: str,
    status: str,
    payment_method_type: str,
    metadata: dict[str, str],
    description: str | None,
    created: int,
    livemode: bool,
) -> dict[str, Any]:
    """The PaymentIntent behind a completed checkout; `latest_charge` is set once it is charged."""
    return {
        "id": intent_id,
        "object": "payment_intent",
        "amount": amount,
        "amount_capturable": 0,
        "amount_details": {"tip": {}},
        "amount_received": amount if status == "succeeded" else 0,
        "application": None,
        "application_fee_amount": None,
        "automatic_payment_methods": None,  # Checkout names the methods itself
        "canceled_at": None,
        "cancellation_reason": None,
        "capture_method": "automatic_async",
        "client_secret": f"{intent_id}_secret_{_random_part(25)}",
        "confirmation_method": "automatic",
        "created": created,
        "currency": currency,
        "customer": None,
        "customer_account": None,
        "description": description,
        "excluded_payment_method_types": None,
        "last_payment_error": None,
        "latest_charge": None,
        "livemode": livemode,
        "managed_payments": {"enabled": False},
        "metadata": metadata,
        "next_action": None,
        "on_behalf_of": None,
        "payment_method": new_id("pm"),
        "payment_method_configuration_details": None,
        "payment_method_options": {},
        "payment_method_types": [payment_method_type],
        "processing": None,
        "receipt_email": None,
        "review": None,
        "setup_future_usage": None,
        "shipping": None,
        "source": None,
        "statement_descriptor": None,
        "statement_descriptor_suffix": None,
        "status": status,
        "transfer_data": None,
        "transfer_group": None,
    }


def payment_failure(code: str, message: str, charge_id: str) -> dict[str, Any]:
    """`last_payment_error` of an intent whose payment failed."""
    return {"type": "card_error", "code": code, "message": message, "charge": charge_id}


def _address() -> dict[str, Any]:
    return {"city": None, "country": None, "line1": None, "line2": None, "postal_code": None, "state": None}


def _card_details(amount: int) -> dict[str, Any]:
    return {
        "type": "card",
        "card": {
            "amount_authorized": amount,
            "authorization_code": None,
            "brand": "visa",
            "checks": {"address_line1_check": None, "address_postal_code_check": None, "cvc_check": "pass"},
            "country": "US",
            "exp_month": 12,
            "exp_year": 2034,
            "extended_authorization": {"status": "disabled"},
            "fingerprint": _random_part(16),
            "funding": "credit",
            "incremental_authorization": {"status": "unavailable"},
            "installments": None,
            "last4": "4242",
            "mandate": None,
            "multicapture": {"status": "unavailable"},
            "network": "visa",
            "network_token": {"used": False},
            "network_transaction_id": None,
            "overcapture": {"maximum_amount_capturable": amount, "status": "unavailable"},
            "regulated_status": "unregulated",
            "three_d_secure": None,
            "transaction_link_id": None,
            "wallet": None,
        },
    }


def _bank_debit_details() -> dict[str, Any]:
    return {
        "type": "us_bank_account",
        "us_bank_account": {
            "account_holder_type": "individual",
            "account_type": "checking",
            "bank_name": "STRIPE TEST BANK",
            "fingerprint": _random_part(16),
            "last4": "6789",
            "mandate": None,
            "payment_reference": None,
            "routing_number": "110000000",
        },
    }


def charge(
    *,
    charge_id: str,
    intent: dict[str, Any],
    status: str,
    billing_email: str,
    created: int,
) -> dict[str, Any]:
    """The charge of `intent`: `succeeded`, or `pending` while a bank debit clears."""
    amount = intent["amount"]
    succeeded = status == "succeeded"
    is_card = intent["payment_method_types"] == ["card"]
    return {
        "id": charge_id,
        "object": "charge",
        "amount": amount,
        "amount_captured": amount,
        "amount_refunded": 0,
        "application": None,
        "application_fee": None,
        "application_fee_amount": None,
        "balance_transaction": new_id("txn") if succeeded else None,
        "billing_details": {
            "address": _address(),
            "email": billing_email,
            "name": None,
            "phone": None,
            "tax_id": None,
        },
        "calculated_statement_descriptor": None,
        "captured": True,
        "created": created,
        "currency": intent["currency"],
        "customer": None,
        "description": intent["description"],
        "disputed": False,
        "failure_balance_transaction": None,
        "failure_code": None,
        "failure_message": None,
        "fraud_details": {},
        "livemode": intent["livemode"],
        "metadata": copy.deepcopy(intent["metadata"]),  # a PaymentIntent's charges carry its metadata
        "on_behalf_of": None,
        "outcome": {
            "advice_code": None,
            "network_advice_code": None,
            "network_decline_code": None,
            "network_status": "approved_by_network",
            "reason": None,
            "risk_level": "normal",
            "seller_message": "Payment complete.",
            "type": "authorized",
        },
        "paid": succeeded,
        "payment_intent": intent["id"],
        "payment_method": intent["payment_method"],
        "payment_method_details": _card_details(amount) if is_card else _bank_debit_details(),
        "receipt_email": None,
        "receipt_number": None,
        "receipt_url": f"https://pay.stripe.com/receipts/payment/{_random_part(40)}",
        "refunded": False,
        "refunds": list_object(f"/v1/charges/{charge_id}/refunds", [], has_more=False),
        "review": None,
        "shipping": None,
        "source": None,
        "source_transfer": None,
        "statement_descriptor": None,
        "statement_descriptor_suffix": None,
        "status": status,
        "transfer_data": None,
        "transfer_group": None,
    }


def refund(
    *,
    refund_id: str,
    charge_object: dict[str, Any],
    amount: int,
    reason: str | None,
    metadata: dict[str, str],
    created: int,
) -> dict[str, Any]:
    if charge_object["payment_method_details"]["type"] == "card":
        destination = {
            "type": "card",
            "card": {
                "reference": None,
                "reference_status": "pending",
                "reference_type": None,
                "type": "refund",
            },
        }
    else:
        destination = {
            "type": "us_bank_account",
            "us_bank_account": {"reference": None, "reference_status": "pending"},
        }
    return {
        "id": refund_id,
        "object": "refund",
        "amount": amount,
        "balance_transaction": new_id("txn"),
        "charge": charge_object["id"],
        "created": created,
        "currency": charge_object["currency"],
        "customer": None,
        "customer_account": None,
        "destination_details": destination,
        "metadata": metadata,
        "payment_intent": charge_object["payment_intent"],
        "payment_method": charge_object["payment_method"],
        "reason": reason,
        "receipt_number": None,
        "source_transfer_reversal": None,
        "status": "succeeded",
        "transfer_reversal": None,
    }


# Days a merchant has to answer a dispute with evidence, as card networks typically allow.
DISPUTE_RESPONSE_DAYS = 21


def dispute(*, dispute_id: str, charge_object: dict[str, Any], created: int) -> dict[str, Any]:
    """A chargeback opened on the whole of `charge_object`, awaiting the merchant's response."""
    evidence_fields = (
        "access_activity_log",
        "billing_address",
        "cancellation_policy",
        "cancellation_policy_disclosure",
        "cancellation_rebuttal",
        "customer_communication",
        "customer_email_address",
        "customer_name",
        "customer_purchase_ip",
        "customer_signature",
        "duplicate_charge_documentation",
        "duplicate_charge_explanation",
        "duplicate_charge_id",
        "product_description",
        "receipt",
        "refund_policy",
        "refund_policy_disclosure",
        "refund_refusal_explanation",
        "service_date",
        "service_documentation",
        "shipping_address",
        "shipping_carrier",
        "shipping_date",
        "shipping_documentation",
        "shipping_tracking_number",
        "uncategorized_file",
        "uncategorized_text",
    )
    method_type = charge_object["payment_method_details"]["type"]
    return {
        "id": dispute_id,
        "object": "dispute",
        "amount": charge_object["amount"],
        "balance_transactions": [],
        "charge": charge_object["id"],
        "created": created,
        "currency": charge_object["currency"],
        "enhanced_eligibility_types": [],
        "evidence": {**{field: None for field in evidence_fields}, "enhanced_evidence": {}},
        "evidence_details": {
            "due_by": created + DISPUTE_RESPONSE_DAYS * 24 * 60 * 60,
            "enhanced_eligibility": {},
            "has_evidence": False,
            "past_due": False,
            "submission_count": 0,
        },
        "is_charge_refundable": False,  # a chargeback already returns the money
        "livemode": charge_object["livemode"],
        "metadata": {},
        "payment_intent": charge_object["payment_intent"],
        "payment_method_details": (
            {
                "type": "card",
                "card": {
                    "brand": "visa",
                    "case_type": "chargeback",
                    "network": "visa",
                    "network_reason_code": "10.4",
                },
            }
            if method_type == "card"
            else {"type": method_type}
        ),
        "reason": "general",
        "status": "needs_response",
    }


def account(*, account_id: str, connected: bool, created: int) -> dict[str, Any]:
    """A fully onboarded US account: the platform itself, or a Standard account connected to it."""

    def no_requirements() -> dict[str, Any]:
        return {
            "alternatives": [],
            "current_deadline": None,
            "currently_due": [],
            "disabled_reason": None,
            "errors": [],
            "eventually_due": [],
            "past_due": [],
            "pending_verification": [],
        }

    return {
        "id": account_id,
        "object": "account",
        "business_profile": {
            "annual_revenue": None,
            "estimated_worker_count": None,
            "mcc": None,
            "minority_owned_business_designation": None,
            "name": None,
            "product_description": None,
            "support_address": None,
            "support_email": None,
            "support_phone": None,
            "support_url": None,
            "url": None,
        },
        "business_type": None,
        "capabilities": {"card_payments": "active", "transfers": "active"},
        "charges_enabled": True,
        "controller": {"type": "application", "is_controller": True} if connected else {"type": "account"},
        "country": "US",
        "created": created,
        "default_currency": "usd",
        "details_submitted": True,
        "email": None,
        "external_accounts": list_object(f"/v1/accounts/{account_id}/external_accounts", [], has_more=False),
        "future_requirements": no_requirements(),
        "metadata": {},
        "payouts_enabled": True,
        "requirements": no_requirements(),
        "settings": {
            "bacs_debit_payments": {"display_name": None, "service_user_number": None},
            "branding": {"icon": None, "logo": None, "primary_color": None, "secondary_color": None},
            "card_issuing": {"tos_acceptance": {"date": None, "ip": None}},
            "card_payments": {
                "decline_on": {"avs_failure": False, "cvc_failure": False},
                "statement_descriptor_prefix": None,
                "statement_descriptor_prefix_kana": None,
                "statement_descriptor_prefix_kanji": None,
            },
            "dashboard": {"display_name": None, "timezone": "Etc/UTC"},
            "invoices": {"default_account_tax_ids": None, "hosted_payment_method_save": None},
            "payments": {
                "statement_descriptor": None,
                "statement_descriptor_kana": None,
                "statement_descriptor_kanji": None,
                "statement_descriptor_prefix_kana": None,
                "statement_descriptor_prefix_kanji": None,
            },
            "payouts": {
                "debit_negative_balances": True,
                "schedule": {"delay_days": 2, "interval": "daily"},
                "statement_descriptor": None,
            },
            "sepa_debit_payments": {},
        },
        "tos_acceptance": {"date": None, "ip": None, "user_agent": None},
        "type": "standard",
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
    livemode: bool,
    account_id: str | None,
    pending_webhooks: int,
) -> dict[str, Any]:
    """An event; `account_id` is set for events of a connected account, as Stripe sets `account`."""
    data: dict[str, Any] = {"object": copy.deepcopy(data_object)}
    if previous_attributes is not None:
        data["previous_attributes"] = previous_attributes
    event = {
        "id": event_id,
        "object": "event",
        "api_version": API_VERSION,
        "created": created,
        "data": data,
        "livemode": livemode,
        "pending_webhooks": pending_webhooks,
        "request": {"id": request_id, "idempotency_key": idempotency_key},
        "type": event_type,
    }
    if account_id is not None:
        event["account"] = account_id
    return event


def list_object(url: str, data: list[dict[str, Any]], has_more: bool) -> dict[str, Any]:
    return {"object": "list", "data": data, "has_more": has_more, "url": url}
