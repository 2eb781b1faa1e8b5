"""The emulator's state and Stripe logic: accounts and everything in them, from products to disputes.

`Emulator` is Stripe as a whole: the platform account, the Connect accounts attached to it, and
what they share (one lock, the clock, faults, webhook delivery). Each `Account` is one account's
book in one mode (test or live): its objects in plain dicts, its idempotency keys and rate
windows, and each API operation on params already parsed from Stripe's wire format (see
`forms.py`), so the HTTP layer (`app.py`) stays a thin translation and tests may call these
methods directly. Every write records the event Stripe would (`product.created`,
`checkout.session.completed`, `charge.refunded`, ...), which is also delivered to the webhook
endpoint when one is set.

Params Stripe accepts that change no behaviour here (presentation settings such as
`custom_text`) are accepted and ignored; params that would change money or behaviour and are
not modelled (recurring prices, tiers, Connect transfers, shipping) are refused with a 400 that
says so, rather than silently giving a result real Stripe would not.
"""

from __future__ import annotations

import copy
import enum
import fnmatch
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, cast

from . import objects
from .auth import mask_api_key
from .errors import EmulatorError, parameter_invalid, resource_missing
from .faults import FaultConfig, FaultInjector, RateWindow
from .idempotency import IdempotencyStore
from .listing import created_filter, paginate
from .params import (
    as_bool,
    as_choice,
    as_dict,
    as_int,
    as_list,
    as_metadata,
    as_optional_str,
    as_str,
    merged_metadata,
    param_path,
    reject_unknown,
    reject_unsupported,
    required,
)
from .pay_page import format_amount
from .webhooks import WebhookConfig, WebhookDispatcher

Params = Mapping[str, Any]
StripeObject = dict[str, Any]

PAID = "paid"
UNPAID = "unpaid"
DEFAULT_CUSTOMER_EMAIL = "customer@example.com"
MAX_LINE_ITEMS = 20
# Stripe's own caps on list filters; paylinks batches lookups to stay under them.
MAX_LOOKUP_KEYS = 10
MAX_EVENT_TYPES = 20

_ONE_TIME_PRICES_ONLY = "the emulator models one-time, per-unit prices only."
_SIMPLE_LINKS_ONLY = "the emulator models payment links without subscriptions, shipping, tax or Connect."

# Payment link params that would change who is paid or what is charged: refused, not ignored.
_UNMODELLED_LINK_FEATURES = (
    "application_fee_amount",
    "application_fee_percent",
    "on_behalf_of",
    "optional_items",
    "shipping_address_collection",
    "shipping_options",
    "subscription_data",
    "transfer_data",
)

# Product fields Stripe stores as given: copied through without further meaning here.
_PRODUCT_TEXT_FIELDS = ("statement_descriptor", "tax_code", "unit_label", "url")

# Payment link settings that only shape the hosted page: stored as given, so they read back.
_LINK_SETTINGS: dict[str, Callable[[Any, str], Any]] = {
    "allow_promotion_codes": as_bool,
    "billing_address_collection": as_str,
    "customer_creation": as_str,
    "payment_method_collection": as_str,
    "submit_type": as_str,
}
# Refund params for refunds that are not simply money back on a charge: refused, not ignored.
_UNMODELLED_REFUND_FEATURES = (
    "currency",
    "customer",
    "instructions_email",
    "origin",
    "refund_application_fee",
    "reverse_transfer",
)
_REFUNDS_OF_CHARGES_ONLY = "the emulator refunds charges and PaymentIntents only, without Connect transfers."
_REFUND_REASONS = ("duplicate", "fraudulent", "requested_by_customer")

# What a bounced test bank debit says, as Stripe's test account numbers for failures do.
_BANK_DEBIT_FAILURE_CODE = "insufficient_funds"
_BANK_DEBIT_FAILURE_MESSAGE = "The customer's account has insufficient funds to cover this payment."

# Keys whose prefix makes a request live mode; everything else is test mode.
LIVE_KEY_PREFIXES = ("sk_live_", "rk_live_")


class PaymentMethod(enum.Enum):
    """How a customer pays a checkout: a card settles at once, a bank debit days later."""

    CARD = "card"
    BANK_DEBIT = "bank_debit"


class SettleOutcome(enum.Enum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class DisputeOutcome(enum.Enum):
    WON = "won"
    LOST = "lost"


_CLOSED_DISPUTE_STATUSES = frozenset(outcome.value for outcome in DisputeOutcome)

_PAYMENT_INTENT_TEXT_FIELDS = (
    "capture_method",
    "description",
    "setup_future_usage",
    "statement_descriptor",
    "statement_descriptor_suffix",
    "transfer_group",
)


@dataclass(frozen=True)
class RequestOrigin:
    """Where a write came from: Stripe records it on events as `request`, and links use `base_url`."""

    request_id: str | None = None
    idempotency_key: str | None = None
    base_url: str | None = None


_NO_ORIGIN = RequestOrigin()


class Account:
    """One Stripe account's objects in one mode (test or live), and the operations on them.

    Stripe keeps every account's data apart, and test data apart from live: each `Account` is
    one such book, with its own idempotency keys and rate windows. The lock, clock and base url
    are the `Emulator`'s, shared by all its accounts. Every public method takes the lock.
    """

    def __init__(self, emulator: Emulator, account_id: str, *, livemode: bool, connected: bool) -> None:
        self.emulator = emulator
        self.id = account_id
        self.livemode = livemode
        self.connected = connected
        self.lock = emulator.lock
        self.idempotency = IdempotencyStore(self.lock)
        self.request_window = RateWindow(self.lock)
        self.link_create_window = RateWindow(self.lock)
        self.requests = 0  # API requests this book received, throttled ones too

        # Dicts keep insertion order, which is creation order: lists walk them backwards.
        self._products: dict[str, StripeObject] = {}
        self._prices: dict[str, StripeObject] = {}
        self._price_id_by_lookup_key: dict[str, str] = {}
        self._payment_links: dict[str, StripeObject] = {}
        self._link_line_items: dict[str, list[dict[str, Any]]] = {}  # link id → [{id, price, quantity}]
        self._checkout_sessions: dict[str, StripeObject] = {}
        self._session_line_items: dict[str, list[StripeObject]] = {}
        self._payment_intents: dict[str, StripeObject] = {}
        self._charges: dict[str, StripeObject] = {}
        self._refunds: dict[str, StripeObject] = {}
        self._disputes: dict[str, StripeObject] = {}
        self._events: dict[str, StripeObject] = {}

    def admit_request(self) -> bool:
        """Count one API request against this account's overall rate; False means 429."""
        with self.lock:
            self.requests += 1
        return self.request_window.admit(self.emulator.faults.rate_limit_rps)

    def admit_link_creation(self) -> bool:
        """Count one payment link creation against its own rate; False means 429."""
        return self.link_create_window.admit(self.emulator.faults.link_create_rps)

    def retrieve_account(self) -> StripeObject:
        """`GET /v1/account`: this account as Stripe describes it."""
        return self.emulator.account_object(self.id, livemode=self.livemode)

    # ------------------------------------------------------------------ products

    def create_product(self, params: Params, origin: RequestOrigin = _NO_ORIGIN) -> StripeObject:
        name = as_str(required(params, "name"), "name")
        product_id = as_optional_str(params.get("id"), "id") or objects.new_id("prod")
        default_price_data = self._default_price_data(params.get("default_price_data"))
        with self.lock:
            if product_id in self._products:
                raise EmulatorError(
                    400, f"Product already exists: '{product_id}'", code="resource_already_exists", param="id"
                )
            product = objects.product(
                product_id=product_id,
                name=name,
                description=as_optional_str(params.get("description"), "description"),
                active=as_bool(params.get("active", True), "active"),
                metadata=as_metadata(params.get("metadata")),
                created=self._now(),
                livemode=self.livemode,
            )
            product.update(self._product_text_fields(params))
            # Build (and so validate) the default price before storing anything: a bad price
            # must leave no product behind.
            default_price = None
            if default_price_data is not None:
                default_price = self._build_price(product_id, default_price_data, prefix="default_price_data")
            self._products[product_id] = product
            self._emit("product.created", product, origin)
            if default_price is not None:
                self._store_price(default_price, origin)
                product["default_price"] = default_price["id"]
            return copy.deepcopy(product)

    def retrieve_product(self, product_id: str) -> StripeObject:
        with self.lock:
            return copy.deepcopy(self._product(product_id))

    def update_product(
        self, product_id: str, params: Params, origin: RequestOrigin = _NO_ORIGIN
    ) -> StripeObject:
        with self.lock:
            product = self._product(product_id)
            changes: dict[str, Any] = dict(self._product_text_fields(params))
            if "name" in params:
                changes["name"] = as_str(required(params, "name"), "name")
            if "description" in params:
                changes["description"] = as_optional_str(params["description"], "description")
            if "active" in params:
                changes["active"] = as_bool(params["active"], "active")
            if "metadata" in params:
                changes["metadata"] = merged_metadata(product["metadata"], params["metadata"])
            if "default_price" in params:
                changes["default_price"] = self._default_price_for(product_id, params["default_price"])
            return self._apply_update("product.updated", product, changes, origin)

    def list_products(self, params: Params) -> StripeObject:
        filters = [created_filter(params.get("created"))]
        if "active" in params:
            active = as_bool(params["active"], "active")
            filters.append(lambda product: product["active"] == active)
        if "ids" in params:
            ids = set(as_list(params["ids"], "ids"))
            filters.append(lambda product: product["id"] in ids)
        if "shippable" in params:
            filters.append(_field_equals("shippable", as_bool(params["shippable"], "shippable")))
        for field in ("type", "url"):
            if field in params:
                filters.append(_field_equals(field, params[field]))
        with self.lock:
            return self._page(self._products, params, "/v1/products", "product", filters)

    def _product(self, product_id: str, *, param: str = "id", http_status: int = 404) -> StripeObject:
        return self._lookup(self._products, "product", product_id, param=param, http_status=http_status)

    @staticmethod
    def _product_text_fields(params: Params) -> dict[str, str | None]:
        return {
            field: as_optional_str(params[field], field) for field in _PRODUCT_TEXT_FIELDS if field in params
        }

    @staticmethod
    def _default_price_data(value: Any) -> dict[str, Any] | None:
        if value is None:
            return None
        data = as_dict(value, "default_price_data")
        reject_unknown(
            data,
            {
                "currency",
                "unit_amount",
                "unit_amount_decimal",
                "recurring",
                "currency_options",
                "tax_behavior",
                "metadata",
            },
        )
        reject_unsupported(data, ("recurring", "currency_options"), _ONE_TIME_PRICES_ONLY)
        return data

    def _default_price_for(self, product_id: str, price_id: Any) -> str | None:
        price_id = as_optional_str(price_id, "default_price")
        if price_id is None:
            return None
        price = self._price(price_id, param="default_price", http_status=400)
        if price["product"] != product_id:
            raise parameter_invalid(
                "default_price", f"The price '{price_id}' does not belong to this product."
            )
        return price_id

    # ------------------------------------------------------------------ prices

    def create_price(self, params: Params, origin: RequestOrigin = _NO_ORIGIN) -> StripeObject:
        reject_unsupported(
            params,
            (
                "recurring",
                "tiers",
                "tiers_mode",
                "custom_unit_amount",
                "transform_quantity",
                "currency_options",
            ),
            _ONE_TIME_PRICES_ONLY,
        )
        if params.get("billing_scheme") not in (None, "", "per_unit"):
            reject_unsupported(params, ("billing_scheme",), _ONE_TIME_PRICES_ONLY)
        if params.get("product") in (None, "") and params.get("product_data") in (None, ""):
            raise EmulatorError(
                400,
                "You must specify either `product` or `product_data` when creating a price.",
                code="parameter_missing",
                param="product",
            )
        with self.lock:
            product_id = self._product_for_new_price(params)
            price = self._build_price(product_id, params)
            if product_id not in self._products:  # from product_data, validated with the price
                self._create_product_from_data(product_id, params, origin)
            self._store_price(price, origin)
            return copy.deepcopy(price)

    def retrieve_price(self, price_id: str) -> StripeObject:
        with self.lock:
            return copy.deepcopy(self._price(price_id))

    def update_price(self, price_id: str, params: Params, origin: RequestOrigin = _NO_ORIGIN) -> StripeObject:
        with self.lock:
            price = self._price(price_id)
            changes: dict[str, Any] = {}
            if "lookup_key" in params:
                changes["lookup_key"] = as_optional_str(params["lookup_key"], "lookup_key")
                transfer = as_bool(params.get("transfer_lookup_key", False), "transfer_lookup_key")
                holder_id = self._price_id_by_lookup_key.get(changes["lookup_key"])
                if holder_id not in (None, price_id) and not transfer:
                    raise self._lookup_key_taken(changes["lookup_key"])
            if "active" in params:
                changes["active"] = as_bool(params["active"], "active")
            if "nickname" in params:
                changes["nickname"] = as_optional_str(params["nickname"], "nickname")
            if "metadata" in params:
                changes["metadata"] = merged_metadata(price["metadata"], params["metadata"])
            if "tax_behavior" in params:
                changes["tax_behavior"] = as_str(params["tax_behavior"], "tax_behavior")
            if "lookup_key" in changes and changes["lookup_key"] != price["lookup_key"]:
                self._release_lookup_key(price)
                if changes["lookup_key"] is not None:
                    self._claim_lookup_key(changes["lookup_key"], price_id, origin=origin)
            return self._apply_update("price.updated", price, changes, origin)

    def list_prices(self, params: Params) -> StripeObject:
        filters = [created_filter(params.get("created"))]
        if "active" in params:
            active = as_bool(params["active"], "active")
            filters.append(lambda price: price["active"] == active)
        if "product" in params:
            product_id = params["product"]
            filters.append(lambda price: price["product"] == product_id)
        if "currency" in params:
            currency = as_str(params["currency"], "currency").lower()
            filters.append(lambda price: price["currency"] == currency)
        if "type" in params:
            price_type = params["type"]
            filters.append(lambda price: price["type"] == price_type)
        if "recurring" in params:  # every emulated price is one-time, so no price is recurring
            filters.append(lambda price: False)
        if "lookup_keys" in params:
            lookup_keys = {
                as_str(key, "lookup_keys") for key in _bounded_list(params, "lookup_keys", MAX_LOOKUP_KEYS)
            }
            filters.append(lambda price: price["lookup_key"] in lookup_keys)
        with self.lock:
            return self._page(self._prices, params, "/v1/prices", "price", filters)

    def _price(self, price_id: str, *, param: str = "id", http_status: int = 404) -> StripeObject:
        return self._lookup(self._prices, "price", price_id, param=param, http_status=http_status)

    def _product_for_new_price(self, params: Params) -> str:
        if params.get("product") not in (None, ""):
            product_id = as_str(params["product"], "product")
            self._product(product_id, param="product", http_status=400)
            return product_id
        product_data = as_dict(params["product_data"], "product_data")
        as_str(required(product_data, "name", path="product_data[name]"), "product_data[name]")
        return objects.new_id("prod")

    def _create_product_from_data(self, product_id: str, params: Params, origin: RequestOrigin) -> None:
        product_data = params["product_data"]
        product = objects.product(
            product_id=product_id,
            name=product_data["name"],
            description=None,
            active=as_bool(product_data.get("active", True), "product_data[active]"),
            metadata=as_metadata(product_data.get("metadata"), "product_data[metadata]"),
            created=self._now(),
            livemode=self.livemode,
        )
        self._products[product_id] = product
        self._emit("product.created", product, origin)

    def _build_price(self, product_id: str, params: Params, *, prefix: str | None = None) -> StripeObject:
        """A validated price, not yet stored (lookup key availability is checked, not claimed)."""

        def name(field: str) -> str:
            return param_path(prefix, field) if prefix else field

        currency = as_str(required(params, "currency", path=name("currency")), name("currency")).lower()
        lookup_key = as_optional_str(params.get("lookup_key"), name("lookup_key"))
        transfer = as_bool(params.get("transfer_lookup_key", False), name("transfer_lookup_key"))
        if lookup_key is not None and not transfer and lookup_key in self._price_id_by_lookup_key:
            raise self._lookup_key_taken(lookup_key)
        price = objects.price(
            price_id=objects.new_id("price"),
            product_id=product_id,
            currency=currency,
            unit_amount=self._unit_amount(params, name),
            active=as_bool(params.get("active", True), name("active")),
            lookup_key=lookup_key,
            nickname=as_optional_str(params.get("nickname"), name("nickname")),
            metadata=as_metadata(params.get("metadata"), name("metadata")),
            created=self._now(),
            livemode=self.livemode,
        )
        if "tax_behavior" in params:
            price["tax_behavior"] = as_str(params["tax_behavior"], name("tax_behavior"))
        return price

    @staticmethod
    def _unit_amount(params: Params, name: Callable[[str], str]) -> int:
        if params.get("unit_amount") not in (None, ""):
            return as_int(params["unit_amount"], name("unit_amount"), minimum=0)
        decimal = params.get("unit_amount_decimal")
        if decimal in (None, ""):
            raise EmulatorError(
                400,
                "You must specify either `unit_amount` or `unit_amount_decimal`.",
                code="parameter_missing",
                param=name("unit_amount"),
            )
        # Fractions of a cent exist on Stripe but never in club fees; whole cents only here.
        whole, _, fraction = str(decimal).partition(".")
        if fraction.strip("0"):
            raise parameter_invalid(
                name("unit_amount_decimal"), "The local Stripe emulator supports whole cents only."
            )
        return as_int(whole, name("unit_amount_decimal"), minimum=0)

    def _store_price(self, price: StripeObject, origin: RequestOrigin) -> None:
        if price["lookup_key"] is not None:
            self._claim_lookup_key(price["lookup_key"], price["id"], origin=origin)
        self._prices[price["id"]] = price
        self._emit("price.created", price, origin)

    def _claim_lookup_key(self, lookup_key: str, price_id: str, *, origin: RequestOrigin) -> None:
        """Give `lookup_key` to `price_id`, taking it from any other price (the caller checked it may)."""
        holder_id = self._price_id_by_lookup_key.get(lookup_key)
        if holder_id is not None and holder_id != price_id:
            holder = self._prices[holder_id]
            self._apply_update("price.updated", holder, {"lookup_key": None}, origin)
        self._price_id_by_lookup_key[lookup_key] = price_id

    def _release_lookup_key(self, price: StripeObject) -> None:
        if price["lookup_key"] is not None:
            self._price_id_by_lookup_key.pop(price["lookup_key"], None)

    def _lookup_key_taken(self, lookup_key: str) -> EmulatorError:
        holder_id = self._price_id_by_lookup_key[lookup_key]
        return parameter_invalid(
            "lookup_key",
            f"A price (`{holder_id}`) already uses the lookup key `{lookup_key}`. "
            "Pass `transfer_lookup_key=true` to move it to this price.",
        )

    # ------------------------------------------------------------------ payment links

    def create_payment_link(self, params: Params, origin: RequestOrigin = _NO_ORIGIN) -> StripeObject:
        self._reject_unmodelled_link_features(params)
        with self.lock:
            line_items, currency = self._new_link_line_items(params)
            link_id = objects.new_id("plink")
            base_url = (origin.base_url or self.emulator.base_url).rstrip("/")
            link = objects.payment_link(
                link_id=link_id,
                url=f"{base_url}/pay/{link_id}",
                currency=currency,
                metadata=as_metadata(params.get("metadata")),
                after_completion=self._after_completion(params.get("after_completion")),
                inactive_message=as_optional_str(params.get("inactive_message"), "inactive_message"),
                payment_intent_data=self._payment_intent_data(
                    params.get("payment_intent_data"), current=None
                ),
                restrictions=self._restrictions(params.get("restrictions"), current=None),
                livemode=self.livemode,
            )
            link.update(self._link_settings(params))
            self._payment_links[link_id] = link
            self._link_line_items[link_id] = line_items
            self._emit("payment_link.created", link, origin)
            return copy.deepcopy(link)

    def retrieve_payment_link(self, link_id: str) -> StripeObject:
        with self.lock:
            return copy.deepcopy(self._payment_link(link_id))

    def update_payment_link(
        self, link_id: str, params: Params, origin: RequestOrigin = _NO_ORIGIN
    ) -> StripeObject:
        reject_unsupported(params, ("line_items",), "create a new payment link to change what it sells.")
        self._reject_unmodelled_link_features(params)
        with self.lock:
            link = self._payment_link(link_id)
            changes = self._link_settings(params)
            if "active" in params:
                changes["active"] = as_bool(params["active"], "active")
            if "inactive_message" in params:
                changes["inactive_message"] = as_optional_str(params["inactive_message"], "inactive_message")
            if "metadata" in params:
                changes["metadata"] = merged_metadata(link["metadata"], params["metadata"])
            if "restrictions" in params:
                changes["restrictions"] = self._restrictions(
                    params["restrictions"], current=link["restrictions"]
                )
            if "after_completion" in params:
                changes["after_completion"] = self._after_completion(params["after_completion"])
            if "payment_intent_data" in params:
                changes["payment_intent_data"] = self._payment_intent_data(
                    params["payment_intent_data"], current=link["payment_intent_data"]
                )
            return self._apply_update("payment_link.updated", link, changes, origin)

    def list_payment_links(self, params: Params) -> StripeObject:
        filters = []
        if "active" in params:
            active = as_bool(params["active"], "active")
            filters.append(lambda link: link["active"] == active)
        with self.lock:
            return self._page(self._payment_links, params, "/v1/payment_links", "payment_link", filters)

    def list_payment_link_line_items(self, link_id: str, params: Params) -> StripeObject:
        with self.lock:
            self._payment_link(link_id)
            items = [self._render_line_item(stored) for stored in self._link_line_items[link_id]]
            # Line items keep their order on the link; they are not listed newest first.
            return paginate(items, params, url=f"/v1/payment_links/{link_id}/line_items", kind="line_item")

    @staticmethod
    def _reject_unmodelled_link_features(params: Params) -> None:
        reject_unsupported(params, _UNMODELLED_LINK_FEATURES, _SIMPLE_LINKS_ONLY)
        automatic_tax = as_dict(params.get("automatic_tax") or {}, "automatic_tax")
        if as_bool(automatic_tax.get("enabled", False), "automatic_tax[enabled]"):
            reject_unsupported(params, ("automatic_tax",), _SIMPLE_LINKS_ONLY)

    def _payment_link(self, link_id: str) -> StripeObject:
        return self._lookup(self._payment_links, "payment_link", link_id)

    def _new_link_line_items(self, params: Params) -> tuple[list[dict[str, Any]], str]:
        """Validated `line_items` as stored rows, and the currency they share."""
        items = as_list(required(params, "line_items"), "line_items")
        if len(items) > MAX_LINE_ITEMS:
            raise parameter_invalid(
                "line_items", f"A payment link can have at most {MAX_LINE_ITEMS} line items."
            )
        stored, currencies = [], set()
        for index, item in enumerate(items):
            item = as_dict(item, param_path("line_items", index))
            reject_unknown(item, {"price", "quantity", "adjustable_quantity"})
            reject_unsupported(
                item, ("adjustable_quantity",), "quantities are fixed on emulated payment links."
            )
            price_param = param_path("line_items", index, "price")
            price_id = as_str(required(item, "price", path=price_param), price_param)
            price = self._price(price_id, param=price_param, http_status=400)
            if not price["active"]:
                raise parameter_invalid(price_param, f"The price `{price_id}` is not active.")
            quantity_param = param_path("line_items", index, "quantity")
            quantity = as_int(required(item, "quantity", path=quantity_param), quantity_param, minimum=1)
            currencies.add(price["currency"])
            stored.append({"id": objects.new_id("li"), "price": price_id, "quantity": quantity})
        if len(currencies) > 1:
            raise parameter_invalid("line_items", "All prices on a payment link must use the same currency.")
        return stored, currencies.pop()

    def _render_line_item(self, stored: Mapping[str, Any]) -> StripeObject:
        price = self._prices[stored["price"]]
        product = self._products[price["product"]]
        return objects.line_item(
            item_id=stored["id"], price_object=price, quantity=stored["quantity"], description=product["name"]
        )

    @staticmethod
    def _after_completion(value: Any) -> StripeObject:
        if value is None or value == "":
            return objects.hosted_confirmation()
        value = as_dict(value, "after_completion")
        completion_type = as_str(
            required(value, "type", path="after_completion[type]"), "after_completion[type]"
        )
        if completion_type == "redirect":
            redirect = as_dict(
                required(value, "redirect", path="after_completion[redirect]"), "after_completion[redirect]"
            )
            url = as_str(
                required(redirect, "url", path="after_completion[redirect][url]"),
                "after_completion[redirect][url]",
            )
            return objects.redirect_after_completion(url)
        if completion_type == "hosted_confirmation":
            confirmation = as_dict(
                value.get("hosted_confirmation") or {}, "after_completion[hosted_confirmation]"
            )
            message = as_optional_str(
                confirmation.get("custom_message"), "after_completion[hosted_confirmation][custom_message]"
            )
            return objects.hosted_confirmation(message)
        raise parameter_invalid(
            "after_completion[type]", f"Invalid after_completion[type]: {completion_type}"
        )

    @staticmethod
    def _payment_intent_data(value: Any, *, current: StripeObject | None) -> StripeObject | None:
        """Stripe keeps `payment_intent_data` null until some of it is set."""
        if value is None:
            return current
        if value == "":
            return None
        value = as_dict(value, "payment_intent_data")
        reject_unknown(value, {"metadata", *_PAYMENT_INTENT_TEXT_FIELDS})
        data = current or objects.payment_intent_data(metadata={})
        data = copy.deepcopy(data)
        if "metadata" in value:
            data["metadata"] = merged_metadata(
                data["metadata"], value["metadata"], "payment_intent_data[metadata]"
            )
        for field in _PAYMENT_INTENT_TEXT_FIELDS:
            if field in value:
                data[field] = as_optional_str(value[field], param_path("payment_intent_data", field))
        return data

    @staticmethod
    def _restrictions(value: Any, *, current: StripeObject | None) -> StripeObject | None:
        """`restrictions[completed_sessions][limit]`; a changed limit keeps the count so far."""
        if value is None or value == "":
            return None
        completed = as_dict(
            required(
                as_dict(value, "restrictions"), "completed_sessions", path="restrictions[completed_sessions]"
            ),
            "restrictions[completed_sessions]",
        )
        limit_param = "restrictions[completed_sessions][limit]"
        limit = as_int(required(completed, "limit", path=limit_param), limit_param, minimum=1, maximum=10_000)
        count = current["completed_sessions"]["count"] if current else 0
        return objects.completed_sessions_restriction(limit=limit, count=count)

    @staticmethod
    def _link_settings(params: Params) -> dict[str, Any]:
        return {
            field: read(params[field], field)
            for field, read in _LINK_SETTINGS.items()
            if params.get(field) not in (None, "")
        }

    # ------------------------------------------------------------------ paying a link

    def pay(
        self,
        link_id: str,
        payment_status: str = PAID,
        amount_total: int | None = None,
        email: str | None = None,
    ) -> StripeObject:
        """Open and complete a checkout on the link as a customer would; returns the session.

        `payment_status="unpaid"` is a slow payment method (complete now, paid at `settle`);
        `amount_total` overrides what was paid, to simulate an amount that drifted from the price.
        """
        if payment_status not in (PAID, UNPAID):
            raise parameter_invalid("payment_status", f"payment_status must be '{PAID}' or '{UNPAID}'.")
        method = PaymentMethod.CARD if payment_status == PAID else PaymentMethod.BANK_DEBIT
        with self.lock:
            session = self._open_session(link_id, amount_total)
            self._complete_session(session, method, email)
            return copy.deepcopy(session)

    def open_session(self, link_id: str, amount_total: int | None = None) -> StripeObject:
        """A customer opens the link's page: an open checkout session, not yet paid.

        Like Stripe's, it can still be completed after the link is deactivated or used up.
        """
        with self.lock:
            return copy.deepcopy(self._open_session(link_id, amount_total))

    def complete_session(
        self,
        session_id: str,
        payment_method: PaymentMethod | str = PaymentMethod.CARD,
        email: str | None = None,
    ) -> StripeObject:
        """The customer pays an open session: by card (paid now) or bank debit (unpaid until `settle`)."""
        method = as_choice(payment_method, PaymentMethod, "payment_method")
        with self.lock:
            session = self._checkout_session(session_id)
            if session["status"] != "open":
                raise EmulatorError(
                    400,
                    f"Checkout Session {session_id} is not open (status '{session['status']}').",
                    param="id",
                )
            self._complete_session(session, method, email)
            return copy.deepcopy(session)

    def settle(self, session_id: str, outcome: SettleOutcome | str = SettleOutcome.SUCCEEDED) -> StripeObject:
        """A bank debit clears (`succeeded`: the session becomes paid) or bounces (`failed`).

        A failed session stays `complete` and `unpaid`, and the link's completion stays spent,
        as at Stripe: the customer has to pay again through another link.
        """
        outcome = as_choice(outcome, SettleOutcome, "outcome")
        with self.lock:
            session = self._checkout_session(session_id)
            intent = self._payment_intents.get(session["payment_intent"] or "")
            if intent is None or intent["status"] != "processing":
                raise EmulatorError(
                    400,
                    f"Checkout Session {session_id} is not awaiting payment "
                    f"(status '{session['status']}', payment_status '{session['payment_status']}').",
                    param="id",
                )
            charge = self._charges[intent["latest_charge"]]
            if outcome is SettleOutcome.SUCCEEDED:
                charge.update(status="succeeded", paid=True, balance_transaction=objects.new_id("txn"))
                intent.update(status="succeeded", amount_received=intent["amount"])
                session["payment_status"] = PAID
                self._emit("checkout.session.async_payment_succeeded", session, _NO_ORIGIN)
            else:
                charge.update(
                    status="failed",
                    paid=False,
                    failure_code=_BANK_DEBIT_FAILURE_CODE,
                    failure_message=_BANK_DEBIT_FAILURE_MESSAGE,
                )
                charge["outcome"].update(
                    network_status="declined_by_network",
                    seller_message="The bank returned the debit.",
                    type="issuer_declined",
                )
                intent.update(
                    status="requires_payment_method",
                    last_payment_error=objects.payment_failure(
                        _BANK_DEBIT_FAILURE_CODE, _BANK_DEBIT_FAILURE_MESSAGE, charge["id"]
                    ),
                )
                self._emit("checkout.session.async_payment_failed", session, _NO_ORIGIN)
            return copy.deepcopy(session)

    def _open_session(self, link_id: str, amount_total: Any) -> StripeObject:
        link = self._payment_link(link_id)
        if not link["active"]:
            raise EmulatorError(
                410,
                link["inactive_message"] or "This payment link is no longer active.",
                code="payment_link_inactive",
                param="id",
            )
        line_items = [self._render_line_item(stored) for stored in self._link_line_items[link_id]]
        amount = sum(item["amount_total"] for item in line_items)
        if amount_total not in (None, ""):
            amount = as_int(amount_total, "amount_total", minimum=0)
        session_id = objects.new_id("cs_live" if self.livemode else "cs_test")
        session = objects.checkout_session(
            session_id=session_id,
            link=link,
            amount_subtotal=amount,
            amount_total=amount,
            created=self._now(),
            url=f"{self.emulator.base_url.rstrip('/')}/checkout/{session_id}",
            livemode=self.livemode,
        )
        self._checkout_sessions[session_id] = session
        self._session_line_items[session_id] = line_items
        return session

    def _complete_session(self, session: StripeObject, method: PaymentMethod, email: str | None) -> None:
        """Charge the session's PaymentIntent and record the completion (lock held)."""
        link = self._payment_links[session["payment_link"]]
        intent_data = link["payment_intent_data"] or {}
        is_card = method is PaymentMethod.CARD
        now = self._now()
        intent = objects.payment_intent(
            intent_id=objects.new_id("pi"),
            amount=session["amount_total"],
            currency=session["currency"],
            status="succeeded" if is_card else "processing",
            payment_method_type="card" if is_card else "us_bank_account",
            metadata=copy.deepcopy(intent_data.get("metadata") or {}),
            description=intent_data.get("description"),
            created=now,
            livemode=self.livemode,
        )
        customer_email = email or DEFAULT_CUSTOMER_EMAIL
        charge = objects.charge(
            charge_id=objects.new_id("ch"),
            intent=intent,
            status="succeeded" if is_card else "pending",
            billing_email=customer_email,
            created=now,
        )
        intent["latest_charge"] = charge["id"]
        self._payment_intents[intent["id"]] = intent
        self._charges[charge["id"]] = charge
        objects.complete_checkout_session(
            session,
            payment_intent_id=intent["id"],
            payment_status=PAID if is_card else UNPAID,
            customer_email=customer_email,
        )
        self._emit("checkout.session.completed", session, _NO_ORIGIN)
        self._count_completed_session(link)

    def _count_completed_session(self, link: StripeObject) -> None:
        """Count the completion against the link's limit; reaching it deactivates the link, as on Stripe."""
        restrictions = link["restrictions"]
        if restrictions is None:
            return
        completed = restrictions["completed_sessions"]
        completed["count"] += 1
        if completed["count"] >= completed["limit"]:
            self._apply_update("payment_link.updated", link, {"active": False}, _NO_ORIGIN)

    # ------------------------------------------------------------------ payment intents and charges

    def retrieve_payment_intent(self, intent_id: str) -> StripeObject:
        with self.lock:
            return copy.deepcopy(self._lookup(self._payment_intents, "payment_intent", intent_id))

    def retrieve_charge(self, charge_id: str) -> StripeObject:
        with self.lock:
            return copy.deepcopy(self._lookup(self._charges, "charge", charge_id))

    # ------------------------------------------------------------------ refunds

    def create_refund(self, params: Params, origin: RequestOrigin = _NO_ORIGIN) -> StripeObject:
        """Refund all or part of what is left of a successful charge; emits `charge.refunded`."""
        reject_unsupported(params, _UNMODELLED_REFUND_FEATURES, _REFUNDS_OF_CHARGES_ONLY)
        reason = as_optional_str(params.get("reason"), "reason")
        if reason is not None and reason not in _REFUND_REASONS:
            raise parameter_invalid(
                "reason",
                f"Invalid reason: must be one of {', '.join(_REFUND_REASONS[:-1])} or {_REFUND_REASONS[-1]}",
            )
        metadata = as_metadata(params.get("metadata"))
        with self.lock:
            charge = self._refundable_charge(params)
            remaining = charge["amount"] - charge["amount_refunded"]
            if remaining == 0:
                raise EmulatorError(
                    400, f"Charge {charge['id']} has already been refunded.", code="charge_already_refunded"
                )
            amount = remaining
            if params.get("amount") not in (None, ""):
                amount = as_int(params["amount"], "amount", minimum=1)
            if amount > remaining:
                raise EmulatorError(
                    400,
                    f"Refund amount ({format_amount(amount, charge['currency'])}) is greater than unrefunded "
                    f"amount on charge ({format_amount(remaining, charge['currency'])})",
                    code="amount_too_large",
                    param="amount",
                )
            refund = objects.refund(
                refund_id=objects.new_id("re"),
                charge_object=charge,
                amount=amount,
                reason=reason,
                metadata=metadata,
                created=self._now(),
            )
            self._refunds[refund["id"]] = refund
            previous = {"amount_refunded": charge["amount_refunded"], "refunded": charge["refunded"]}
            charge["amount_refunded"] += amount
            charge["refunded"] = charge["amount_refunded"] == charge["amount"]
            charge["refunds"]["data"].insert(0, copy.deepcopy(refund))  # newest first, like every list
            self._emit("charge.refunded", charge, origin, previous_attributes=previous)
            return copy.deepcopy(refund)

    def retrieve_refund(self, refund_id: str) -> StripeObject:
        with self.lock:
            return copy.deepcopy(self._lookup(self._refunds, "refund", refund_id))

    def list_refunds(self, params: Params) -> StripeObject:
        return self._list_by_charge(self._refunds, params, "/v1/refunds", "refund")

    def _refundable_charge(self, params: Params) -> StripeObject:
        intent_id, charge_id = params.get("payment_intent"), params.get("charge")
        if intent_id in (None, "") and charge_id in (None, ""):
            raise EmulatorError(
                400,
                "One of the following params should be provided for this request: payment_intent or charge.",
                code="parameter_missing",
            )
        if intent_id not in (None, ""):
            intent = self._lookup(
                self._payment_intents, "payment_intent", intent_id, param="payment_intent", http_status=400
            )
            charge = self._charges.get(intent["latest_charge"] or "")
            if charge is None or charge["status"] != "succeeded":
                raise EmulatorError(
                    400,
                    f"This PaymentIntent ({intent_id}) does not have a successful charge to refund.",
                    param="payment_intent",
                )
            if charge_id not in (None, "") and charge_id != charge["id"]:
                raise parameter_invalid("charge", f"The charge {charge_id} does not belong to {intent_id}.")
        else:
            charge = self._lookup(
                self._charges, "charge", cast(str, charge_id), param="charge", http_status=400
            )
            if charge["status"] != "succeeded":
                raise EmulatorError(
                    400, f"Charge {charge_id} has not succeeded, so it cannot be refunded.", param="charge"
                )
        dispute = self._dispute_of(charge["id"])
        if dispute is not None and dispute["status"] != DisputeOutcome.WON.value:
            raise EmulatorError(
                400,
                f"Charge {charge['id']} has been charged back; cannot issue a refund.",
                code="charge_disputed",
            )
        return charge

    # ------------------------------------------------------------------ disputes

    def dispute(self, intent_id: str, status: DisputeOutcome | str | None = None) -> StripeObject:
        """The cardholder disputes the payment: opens a dispute, or closes the open one.

        Without `status` a new dispute stays open (`charge.dispute.created`); with `won` or `lost`
        it is also closed (`charge.dispute.closed`). On a payment whose dispute is open, `status`
        closes that dispute.
        """
        outcome = None if status in (None, "") else as_choice(status, DisputeOutcome, "status")
        with self.lock:
            intent = self._lookup(self._payment_intents, "payment_intent", intent_id)
            charge = self._charges.get(intent["latest_charge"] or "")
            if charge is None or charge["status"] != "succeeded":
                raise EmulatorError(
                    400, f"PaymentIntent {intent_id} has no successful charge to dispute.", param="id"
                )
            dispute = self._dispute_of(charge["id"])
            if dispute is None:
                dispute = objects.dispute(
                    dispute_id=objects.new_id("dp"), charge_object=charge, created=self._now()
                )
                self._disputes[dispute["id"]] = dispute
                charge["disputed"] = True
                self._emit("charge.dispute.created", dispute, _NO_ORIGIN)
            elif outcome is None or dispute["status"] in _CLOSED_DISPUTE_STATUSES:
                raise EmulatorError(
                    400,
                    f"Charge {charge['id']} already has dispute {dispute['id']} "
                    f"(status '{dispute['status']}').",
                    param="id",
                )
            if outcome is not None:
                dispute["status"] = outcome.value
                self._emit("charge.dispute.closed", dispute, _NO_ORIGIN)
            return copy.deepcopy(dispute)

    def retrieve_dispute(self, dispute_id: str) -> StripeObject:
        with self.lock:
            return copy.deepcopy(self._lookup(self._disputes, "dispute", dispute_id))

    def list_disputes(self, params: Params) -> StripeObject:
        return self._list_by_charge(self._disputes, params, "/v1/disputes", "dispute")

    def _list_by_charge(
        self, store: dict[str, StripeObject], params: Params, path: str, kind: str
    ) -> StripeObject:
        """Refunds and disputes list the same way: by creation time, charge or payment intent."""
        filters = [created_filter(params.get("created"))]
        for field in ("charge", "payment_intent"):
            if field in params:
                filters.append(_field_equals(field, params[field]))
        with self.lock:
            return self._page(store, params, path, kind, filters)

    def _dispute_of(self, charge_id: str) -> StripeObject | None:
        return next((found for found in self._disputes.values() if found["charge"] == charge_id), None)

    # ------------------------------------------------------------------ checkout sessions

    def retrieve_checkout_session(self, session_id: str) -> StripeObject:
        with self.lock:
            return copy.deepcopy(self._checkout_session(session_id))

    def list_checkout_sessions(self, params: Params) -> StripeObject:
        filters = [created_filter(params.get("created"))]
        for field in (
            "payment_link",
            "payment_intent",
            "status",
            "customer",
            "customer_account",
            "subscription",
        ):
            if field in params:
                filters.append(_field_equals(field, params[field]))
        if "customer_details" in params:
            details = as_dict(params["customer_details"], "customer_details")
            email = as_str(
                required(details, "email", path="customer_details[email]"), "customer_details[email]"
            )
            filters.append(lambda session: (session["customer_details"] or {}).get("email") == email)
        with self.lock:
            return self._page(
                self._checkout_sessions, params, "/v1/checkout/sessions", "checkout.session", filters
            )

    def list_checkout_session_line_items(self, session_id: str, params: Params) -> StripeObject:
        with self.lock:
            self._checkout_session(session_id)
            items = copy.deepcopy(self._session_line_items[session_id])
            return paginate(
                items, params, url=f"/v1/checkout/sessions/{session_id}/line_items", kind="line_item"
            )

    def _checkout_session(self, session_id: str) -> StripeObject:
        return self._lookup(self._checkout_sessions, "checkout.session", session_id)

    # ------------------------------------------------------------------ events

    def retrieve_event(self, event_id: str) -> StripeObject:
        with self.lock:
            return copy.deepcopy(self._lookup(self._events, "event", event_id))

    def list_events(self, params: Params) -> StripeObject:
        filters = [created_filter(params.get("created"))]
        if params.get("type") not in (None, ""):
            pattern = as_str(params["type"], "type")
            # Stripe allows one wildcard form, e.g. `checkout.session.*`.
            filters.append(lambda event: fnmatch.fnmatchcase(event["type"], pattern))
        if "types" in params:
            types = {
                as_str(event_type, "types") for event_type in _bounded_list(params, "types", MAX_EVENT_TYPES)
            }
            filters.append(lambda event: event["type"] in types)
        with self.lock:
            return self._page(self._events, params, "/v1/events", "event", filters)

    # ------------------------------------------------------------------ inspection

    def counts(self) -> dict[str, int]:
        """How many objects of each kind exist: what tests assert on for "exactly one link"."""
        with self.lock:
            return {kind: len(collection) for kind, collection in self._collections().items()}

    def holds(self, kind: str, object_id: str) -> bool:
        """Whether this account has the object; `kind` is a key of `counts()`."""
        return object_id in self._collections()[kind]

    def _collections(self) -> dict[str, dict[str, StripeObject]]:
        return {
            "products": self._products,
            "prices": self._prices,
            "payment_links": self._payment_links,
            "checkout_sessions": self._checkout_sessions,
            "payment_intents": self._payment_intents,
            "charges": self._charges,
            "refunds": self._refunds,
            "disputes": self._disputes,
            "events": self._events,
        }

    # ------------------------------------------------------------------ shared helpers (lock held)

    def _now(self) -> int:
        return int(self.emulator.clock())

    @staticmethod
    def _lookup(
        collection: dict[str, StripeObject],
        kind: str,
        object_id: str,
        *,
        param: str = "id",
        http_status: int = 404,
    ) -> StripeObject:
        found = collection.get(object_id) if isinstance(object_id, str) else None
        if found is None:
            raise resource_missing(kind, str(object_id), param=param, http_status=http_status)
        return found

    @staticmethod
    def _page(
        collection: dict[str, StripeObject],
        params: Params,
        url: str,
        kind: str,
        filters: list[Callable[[StripeObject], bool]],
    ) -> StripeObject:
        newest_first = list(reversed(collection.values()))
        page = paginate(
            newest_first, params, url=url, kind=kind, keep=lambda obj: all(f(obj) for f in filters)
        )
        return copy.deepcopy(page)

    def _apply_update(
        self, event_type: str, obj: StripeObject, changes: dict[str, Any], origin: RequestOrigin
    ) -> StripeObject:
        """Apply validated `changes`; if anything differs, bump `updated` (where the type has it) and emit."""
        previous_attributes = {
            key: copy.deepcopy(obj[key]) for key, value in changes.items() if obj[key] != value
        }
        if previous_attributes:
            obj.update(changes)
            if "updated" in obj:
                previous_attributes["updated"] = obj["updated"]
                obj["updated"] = self._now()
            self._emit(event_type, obj, origin, previous_attributes=previous_attributes)
        return copy.deepcopy(obj)

    def _emit(
        self,
        event_type: str,
        obj: StripeObject,
        origin: RequestOrigin,
        previous_attributes: dict[str, Any] | None = None,
    ) -> None:
        event = objects.event(
            event_id=objects.new_id("evt"),
            event_type=event_type,
            data_object=obj,
            previous_attributes=previous_attributes,
            request_id=origin.request_id,
            idempotency_key=origin.idempotency_key,
            created=self._now(),
            livemode=self.livemode,
            account_id=self.id if self.connected else None,
            pending_webhooks=1 if self.emulator.webhooks is not None else 0,
        )
        self._events[event["id"]] = event
        self.emulator.announce(event)


# Operations of the platform account (in its default mode) that `Emulator` offers directly, so a
# test or the demo can write `emulator.create_product(...)` as it would against one account.
_PLATFORM_OPERATIONS = frozenset(
    {
        "create_product",
        "retrieve_product",
        "update_product",
        "list_products",
        "create_price",
        "retrieve_price",
        "update_price",
        "list_prices",
        "create_payment_link",
        "retrieve_payment_link",
        "update_payment_link",
        "list_payment_links",
        "list_payment_link_line_items",
        "retrieve_checkout_session",
        "list_checkout_sessions",
        "list_checkout_session_line_items",
        "retrieve_payment_intent",
        "retrieve_charge",
        "create_refund",
        "retrieve_refund",
        "list_refunds",
        "retrieve_dispute",
        "list_disputes",
        "retrieve_event",
        "list_events",
    }
)


class Emulator:
    """In-memory Stripe: the platform account, its connected accounts, and what they share.

    Thread-safe: one lock guards every account. `account()` gives an account's book; the
    operations a customer or bank performs (`pay`, `open_session`, `complete_session`, `settle`,
    `dispute`) find the object's account by its id, as the hosted pages do.
    """

    def __init__(
        self,
        faults: FaultConfig | None = None,
        api_key: str | None = None,
        clock: Callable[[], float] = time.time,
        account_id: str | None = None,
        webhooks: WebhookConfig | None = None,
    ) -> None:
        self.faults = faults if faults is not None else FaultConfig()
        self.api_key = api_key
        self.clock = clock
        # Base of payment link urls minted without an HTTP request (EmulatorServer sets its own url).
        self.base_url = "http://127.0.0.1"
        self.lock = threading.Lock()
        self.fault_injector = FaultInjector(lambda: self.faults, self.lock)
        self.platform_account_id = account_id or objects.new_id("acct")
        # Started to accept only a live key, the emulator is in live mode when used directly too.
        self.default_livemode = api_key is not None and api_key.startswith(LIVE_KEY_PREFIXES)
        self._account_created: dict[str, int] = {self.platform_account_id: int(clock())}
        self._books: dict[tuple[str, bool], Account] = {}
        self.webhooks = WebhookDispatcher(webhooks, on_delivered=self._mark_delivered) if webhooks else None

    def __getattr__(self, name: str) -> Any:
        if name in _PLATFORM_OPERATIONS:
            return getattr(self.account(), name)
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    # ------------------------------------------------------------------ accounts

    def account(
        self, account_id: str | None = None, *, livemode: bool | None = None, api_key: str | None = None
    ) -> Account:
        """The book of `account_id` (None: the platform) in one mode (None: the default).

        An account that was never created answers Stripe's 403, naming `api_key` masked.
        """
        account_id = account_id or self.platform_account_id
        livemode = self.default_livemode if livemode is None else livemode
        with self.lock:
            if account_id not in self._account_created:
                raise _inaccessible_account(account_id, api_key)
            book = self._books.get((account_id, livemode))
            if book is None:
                book = Account(
                    self, account_id, livemode=livemode, connected=account_id != self.platform_account_id
                )
                self._books[(account_id, livemode)] = book
            return book

    def create_connected_account(self, account_id: str | None = None) -> StripeObject:
        """Connect an account to the platform (`acct_…`, fresh unless given); returns it."""
        account_id = as_optional_str(account_id, "id") or objects.new_id("acct")
        if not account_id.startswith("acct_"):
            raise parameter_invalid("id", f"Account ids start with 'acct_': {account_id!r}")
        with self.lock:
            if account_id in self._account_created:
                raise EmulatorError(
                    400, f"Account already exists: '{account_id}'", code="resource_already_exists", param="id"
                )
            self._account_created[account_id] = int(self.clock())
        return self.account_object(account_id)

    def account_object(self, account_id: str, livemode: bool | None = None) -> StripeObject:
        """The Account object Stripe returns for `account_id` (its fields do not depend on mode here)."""
        with self.lock:
            created = self._account_created[account_id]
        return objects.account(
            account_id=account_id, connected=account_id != self.platform_account_id, created=created
        )

    def holder(self, kind: str, object_id: str) -> Account:
        """The account holding object `object_id` of `kind` (a key of `counts()`); Stripe's 404 if none."""
        with self.lock:
            books = list(self._books.values())
        for book in books:
            if book.holds(kind, object_id):
                return book
        singular = {"checkout_sessions": "checkout.session"}.get(kind, kind.removesuffix("s"))
        raise resource_missing(singular, object_id)

    # ------------------------------------------------------------------ what customers and banks do

    def pay(
        self,
        link_id: str,
        payment_status: str = PAID,
        amount_total: int | None = None,
        email: str | None = None,
    ) -> StripeObject:
        """See `Account.pay`; the link may be in any account."""
        return self.holder("payment_links", link_id).pay(link_id, payment_status, amount_total, email)

    def open_session(self, link_id: str, amount_total: int | None = None) -> StripeObject:
        return self.holder("payment_links", link_id).open_session(link_id, amount_total)

    def complete_session(
        self,
        session_id: str,
        payment_method: PaymentMethod | str = PaymentMethod.CARD,
        email: str | None = None,
    ) -> StripeObject:
        return self.holder("checkout_sessions", session_id).complete_session(
            session_id, payment_method, email
        )

    def settle(self, session_id: str, outcome: SettleOutcome | str = SettleOutcome.SUCCEEDED) -> StripeObject:
        return self.holder("checkout_sessions", session_id).settle(session_id, outcome)

    def dispute(self, intent_id: str, status: DisputeOutcome | str | None = None) -> StripeObject:
        return self.holder("payment_intents", intent_id).dispute(intent_id, status)

    # ------------------------------------------------------------------ inspection and webhooks

    def forget_idempotency_keys(self) -> None:
        """Every book forgets its idempotency keys, as Stripe does after about a day."""
        with self.lock:
            books = list(self._books.values())
        for book in books:
            book.idempotency.forget()

    def counts(self, account_id: str | None = None, *, livemode: bool | None = None) -> dict[str, int]:
        """Objects of each kind in one account (default: the platform, in the default mode)."""
        return self.account(account_id, livemode=livemode).counts()

    def request_counts(self) -> dict[str, int]:
        """API requests received so far, by account id (both modes together): what a test asserts
        on for "asked Stripe nothing", or "only that account was asked"."""
        with self.lock:
            counts: dict[str, int] = {}
            for (account_id, _livemode), book in self._books.items():
                counts[account_id] = counts.get(account_id, 0) + book.requests
            return counts

    def webhook_deliveries(self) -> list[dict[str, Any]]:
        return self.webhooks.deliveries() if self.webhooks is not None else []

    def announce(self, event: StripeObject) -> None:
        """Hand a new event to webhook delivery, if any (called with the lock held; never blocks)."""
        if self.webhooks is not None:
            self.webhooks.enqueue(event)

    def close(self) -> None:
        """Stop delivering webhooks."""
        if self.webhooks is not None:
            self.webhooks.stop()

    def _mark_delivered(self, event_id: str) -> None:
        with self.lock:
            for book in self._books.values():
                event = book._events.get(event_id)
                if event is not None:
                    event["pending_webhooks"] = 0


def _inaccessible_account(account_id: str, api_key: str | None) -> EmulatorError:
    """Stripe's answer to a `Stripe-Account` the key cannot act in (or that does not exist)."""
    key = f"'{mask_api_key(api_key)}' " if api_key else ""
    return EmulatorError(
        403,
        f"The provided key {key}does not have access to account '{account_id}' (or that account does "
        "not exist). Application access may have been revoked.",
        code="account_invalid",
    )


def _field_equals(field: str, expected: Any) -> Callable[[StripeObject], bool]:
    return lambda obj: obj.get(field) == expected


def _bounded_list(params: Params, name: str, maximum: int) -> list[Any]:
    values = as_list(params[name], name)
    if len(values) > maximum:
        raise parameter_invalid(name, f"You may pass at most {maximum} values for `{name}`.")
    return values
