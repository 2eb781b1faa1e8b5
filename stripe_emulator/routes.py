"""The `/v1` endpoints the emulator answers, each mapped to one `Emulator` operation.

Every route lists the top-level params Stripe takes on that endpoint (as in Stripe's API
reference); anything else is refused with Stripe's `parameter_unknown` 400, so a misspelt
param in paylinks fails here just as it would against Stripe.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .state import Account, RequestOrigin


@dataclass(frozen=True)
class ApiCall:
    """One parsed request, as an operation sees it."""

    params: dict[str, Any]
    path_params: dict[str, str]
    origin: RequestOrigin

    @property
    def object_id(self) -> str:
        return self.path_params["id"]


# An operation acts in the account the request names (`Stripe-Account`), or the platform's.
Operation = Callable[[Account, ApiCall], dict[str, Any]]


@dataclass(frozen=True)
class Route:
    method: str
    template: str  # "/v1/products/{id}"
    operation: Operation
    accepted_params: frozenset[str]
    pattern: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", self.template)
        object.__setattr__(self, "pattern", re.compile(f"^{regex}$"))


_PAGINATION = frozenset({"limit", "starting_after", "ending_before", "expand"})
_RETRIEVE = frozenset({"expand"})

_PRODUCT_UPDATE = frozenset(
    {
        "active",
        "default_price",
        "description",
        "expand",
        "images",
        "marketing_features",
        "metadata",
        "name",
        "package_dimensions",
        "shippable",
        "statement_descriptor",
        "tax_code",
        "tax_details",
        "unit_label",
        "url",
    }
)
_PRODUCT_CREATE = (_PRODUCT_UPDATE - {"default_price"}) | {"default_price_data", "id", "type"}
_PRODUCT_LIST = _PAGINATION | {"active", "created", "ids", "shippable", "type", "url"}

_PRICE_CREATE = frozenset(
    {
        "active",
        "billing_scheme",
        "currency",
        "currency_options",
        "custom_unit_amount",
        "expand",
        "lookup_key",
        "metadata",
        "nickname",
        "product",
        "product_data",
        "recurring",
        "tax_behavior",
        "tiers",
        "tiers_mode",
        "transfer_lookup_key",
        "transform_quantity",
        "unit_amount",
        "unit_amount_decimal",
    }
)
_PRICE_UPDATE = frozenset(
    {
        "active",
        "currency_options",
        "expand",
        "lookup_key",
        "metadata",
        "nickname",
        "tax_behavior",
        "transfer_lookup_key",
    }
)
_PRICE_LIST = _PAGINATION | {"active", "created", "currency", "lookup_keys", "product", "recurring", "type"}

_PAYMENT_LINK_UPDATE = frozenset(
    {
        "active",
        "after_completion",
        "allow_promotion_codes",
        "application_fee_amount",
        "application_fee_percent",
        "automatic_tax",
        "billing_address_collection",
        "consent_collection",
        "custom_fields",
        "custom_text",
        "customer_creation",
        "expand",
        "inactive_message",
        "invoice_creation",
        "line_items",
        "metadata",
        "name_collection",
        "on_behalf_of",
        "optional_items",
        "payment_intent_data",
        "payment_method_collection",
        "payment_method_options",
        "payment_method_types",
        "phone_number_collection",
        "restrictions",
        "shipping_address_collection",
        "shipping_options",
        "submit_type",
        "subscription_data",
        "tax_id_collection",
        "transfer_data",
    }
)
_PAYMENT_LINK_CREATE = (_PAYMENT_LINK_UPDATE - {"active"}) | {"currency", "managed_payments"}
_PAYMENT_LINK_LIST = _PAGINATION | {"active"}

_CHECKOUT_SESSION_LIST = _PAGINATION | {
    "created",
    "customer",
    "customer_account",
    "customer_details",
    "payment_intent",
    "payment_link",
    "status",
    "subscription",
}
# Every top-level param Stripe takes on session creation; those not modelled are refused by name.
_CHECKOUT_SESSION_CREATE = frozenset(
    {
        "adaptive_pricing",
        "after_expiration",
        "allow_promotion_codes",
        "allowed_payment_method_types",
        "automatic_tax",
        "billing_address_collection",
        "branding_settings",
        "cancel_url",
        "client_reference_id",
        "consent_collection",
        "currency",
        "custom_fields",
        "custom_text",
        "customer",
        "customer_account",
        "customer_creation",
        "customer_email",
        "customer_update",
        "discounts",
        "excluded_payment_method_types",
        "expand",
        "expires_at",
        "integration_identifier",
        "invoice_creation",
        "line_items",
        "locale",
        "managed_payments",
        "metadata",
        "mode",
        "name_collection",
        "optional_items",
        "origin_context",
        "payment_intent_data",
        "payment_method_collection",
        "payment_method_configuration",
        "payment_method_data",
        "payment_method_options",
        "payment_method_types",
        "permissions",
        "phone_number_collection",
        "redirect_on_completion",
        "return_url",
        "saved_payment_method_options",
        "setup_intent_data",
        "shipping_address_collection",
        "shipping_options",
        "submit_type",
        "subscription_data",
        "success_url",
        "tax_id_collection",
        "ui_mode",
        "wallet_options",
    }
)
_EVENT_LIST = _PAGINATION | {"created", "delivery_success", "type", "types"}

_REFUND_CREATE = frozenset(
    {
        "amount",
        "charge",
        "currency",
        "customer",
        "expand",
        "instructions_email",
        "metadata",
        "origin",
        "payment_intent",
        "reason",
        "refund_application_fee",
        "reverse_transfer",
    }
)
_REFUND_LIST = _PAGINATION | {"charge", "created", "payment_intent"}
_DISPUTE_LIST = _PAGINATION | {"charge", "created", "payment_intent"}


ROUTES: tuple[Route, ...] = (
    Route(
        "POST",
        "/v1/products",
        lambda account, call: account.create_product(call.params, call.origin),
        _PRODUCT_CREATE,
    ),
    Route("GET", "/v1/products", lambda account, call: account.list_products(call.params), _PRODUCT_LIST),
    Route(
        "GET", "/v1/products/{id}", lambda account, call: account.retrieve_product(call.object_id), _RETRIEVE
    ),
    Route(
        "POST",
        "/v1/products/{id}",
        lambda account, call: account.update_product(call.object_id, call.params, call.origin),
        _PRODUCT_UPDATE,
    ),
    Route(
        "POST",
        "/v1/prices",
        lambda account, call: account.create_price(call.params, call.origin),
        _PRICE_CREATE,
    ),
    Route("GET", "/v1/prices", lambda account, call: account.list_prices(call.params), _PRICE_LIST),
    Route("GET", "/v1/prices/{id}", lambda account, call: account.retrieve_price(call.object_id), _RETRIEVE),
    Route(
        "POST",
        "/v1/prices/{id}",
        lambda account, call: account.update_price(call.object_id, call.params, call.origin),
        _PRICE_UPDATE,
    ),
    Route(
        "POST",
        "/v1/payment_links",
        lambda account, call: account.create_payment_link(call.params, call.origin),
        _PAYMENT_LINK_CREATE,
    ),
    Route(
        "GET",
        "/v1/payment_links",
        lambda account, call: account.list_payment_links(call.params),
        _PAYMENT_LINK_LIST,
    ),
    Route(
        "GET",
        "/v1/payment_links/{id}",
        lambda account, call: account.retrieve_payment_link(call.object_id),
        _RETRIEVE,
    ),
    Route(
        "POST",
        "/v1/payment_links/{id}",
        lambda account, call: account.update_payment_link(call.object_id, call.params, call.origin),
        _PAYMENT_LINK_UPDATE,
    ),
    Route(
        "GET",
        "/v1/payment_links/{id}/line_items",
        lambda account, call: account.list_payment_link_line_items(call.object_id, call.params),
        _PAGINATION,
    ),
    Route(
        "POST",
        "/v1/checkout/sessions",
        lambda account, call: account.create_checkout_session(call.params, call.origin),
        _CHECKOUT_SESSION_CREATE,
    ),
    Route(
        "POST",
        "/v1/checkout/sessions/{id}/expire",
        lambda account, call: account.expire_checkout_session(call.object_id, call.params, call.origin),
        _RETRIEVE,
    ),
    Route(
        "GET",
        "/v1/checkout/sessions",
        lambda account, call: account.list_checkout_sessions(call.params),
        _CHECKOUT_SESSION_LIST,
    ),
    Route(
        "GET",
        "/v1/checkout/sessions/{id}",
        lambda account, call: account.retrieve_checkout_session(call.object_id, call.params),
        _RETRIEVE,
    ),
    Route(
        "GET",
        "/v1/checkout/sessions/{id}/line_items",
        lambda account, call: account.list_checkout_session_line_items(call.object_id, call.params),
        _PAGINATION,
    ),
    Route(
        "GET",
        "/v1/payment_intents/{id}",
        lambda account, call: account.retrieve_payment_intent(call.object_id),
        _RETRIEVE | {"client_secret"},
    ),
    Route(
        "GET", "/v1/charges/{id}", lambda account, call: account.retrieve_charge(call.object_id), _RETRIEVE
    ),
    Route(
        "POST",
        "/v1/refunds",
        lambda account, call: account.create_refund(call.params, call.origin),
        _REFUND_CREATE,
    ),
    Route("GET", "/v1/refunds", lambda account, call: account.list_refunds(call.params), _REFUND_LIST),
    Route(
        "GET", "/v1/refunds/{id}", lambda account, call: account.retrieve_refund(call.object_id), _RETRIEVE
    ),
    Route("GET", "/v1/disputes", lambda account, call: account.list_disputes(call.params), _DISPUTE_LIST),
    Route(
        "GET", "/v1/disputes/{id}", lambda account, call: account.retrieve_dispute(call.object_id), _RETRIEVE
    ),
    Route("GET", "/v1/account", lambda account, call: account.retrieve_account(), _RETRIEVE),
    Route("GET", "/v1/events", lambda account, call: account.list_events(call.params), _EVENT_LIST),
    Route("GET", "/v1/events/{id}", lambda account, call: account.retrieve_event(call.object_id), _RETRIEVE),
)


def match_route(method: str, path: str) -> tuple[Route, dict[str, str]] | None:
    """The route for `method path` and the ids in its path, or None if Stripe has no such URL here."""
    for route in ROUTES:
        if route.method == method:
            found = route.pattern.match(path)
            if found:
                return route, found.groupdict()
    return None
