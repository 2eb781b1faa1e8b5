"""The emulator's state and Stripe logic: accounts and everything in them, from products to disputes.

`Emulator` is Stripe as a whole: the platform account, the Connect accounts attached to it, and
what they share (one lock, the clock, faults, webhook delivery). Each `Account` is one account's
book in one mode (test or live): its objects in plain dicts, its idempotency keys and rate
windows, and each API operation on params already parsed from Stripe's wire format (see
`forms.py`), so the HTTP layer (`app.py`) stays a thin translation and tests may call these
methods directly. Every write records the event Stripe would (`product.created`,
`checkout.session.completed`, `charge.refunded`, ...), which is also delivered to the webhook
endpoint when one is set. Time is the `Emulator`'s clock (`emulator.clock`, replaceable by tests):
it stamps objects and events and decides when an open checkout session has expired.

Presentation settings that only shape the hosted page (`custom_text`, `submit_type`, ...) are
stored as given and read back; other params Stripe accepts that change no behaviour here are
accepted and ignored; params that would change money or behaviour and are
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
from typing import TYPE_CHECKING, Any, cast

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

if TYPE_CHECKING:
    from .persistence import StateFile

Params = Mapping[str, Any]
StripeObject = dict[str, Any]

PAID = "paid"
UNPAID = "unpaid"
DEFAULT_CUSTOMER_EMAIL = "customer@example.com"
MAX_LINE_ITEMS = 20
MAX_CHECKOUT_LINE_ITEMS = 100  # in payment mode
# How long a Checkout Session may stay open: Stripe takes `expires_at` 30 minutes to 24 hours ahead.
MIN_CHECKOUT_LIFETIME_SECONDS = 30 * 60
MAX_CHECKOUT_LIFETIME_SECONDS = objects.CHECKOUT_SESSION_LIFETIME_SECONDS
# An `expires_at` computed by the caller as "30 minutes from now" reaches Stripe a moment later;
# the common `now + 30 * 60` is taken, so the emulator allows that much transit.
EXPIRES_AT_TRANSIT_SECONDS = 5
# The most one payment may be, in minor units (Stripe's limit: $999,999.99 for USD).
MAX_PAYMENT_AMOUNT = 99_999_999
MAX_CUSTOM_TEXT = 1200  # characters of each custom text message on a hosted page
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

_PAYMENT_SESSIONS_ONLY = (
    "the emulator models Checkout Sessions in payment mode with fixed line items, paid by card or US "
    "bank debit, without customers, discounts, shipping, tax, subscriptions or Connect."
)
# Checkout Session params that would change who pays, what is charged or how: refused, not ignored.
_UNMODELLED_SESSION_FEATURES = (
    "adaptive_pricing",
    "after_expiration",
    "allow_promotion_codes",
    "allowed_payment_method_types",
    "branding_settings",
    "consent_collection",
    "custom_fields",
    "customer",
    "customer_account",
    "customer_update",
    "discounts",
    "excluded_payment_method_types",
    "invoice_creation",
    "managed_payments",
    "name_collection",
    "optional_items",
    "payment_method_configuration",
    "payment_method_data",
    "payment_method_options",
    "permissions",
    "phone_number_collection",
    "redirect_on_completion",
    "return_url",
    "saved_payment_method_options",
    "setup_intent_data",
    "shipping_address_collection",
    "shipping_options",
    "subscription_data",
    "tax_id_collection",
    "wallet_options",
)
_CHECKOUT_MODES = ("payment", "setup", "subscription")
# Settings that only shape the hosted page or name the integration: stored as given, read back.
_SESSION_SETTINGS: dict[str, Callable[[Any, str], Any]] = {
    "billing_address_collection": as_str,
    "customer_creation": as_str,
    "integration_identifier": as_str,
    "locale": as_str,
    "origin_context": as_str,
    "payment_method_collection": as_str,
    "submit_type": as_str,
}
# How a session may be paid here, in Stripe's words; a card settles at once, a bank debit later.
_SESSION_PAYMENT_METHOD_TYPES = ("card", "us_bank_account")
_UNMODELLED_INTENT_FEATURES = ("application_fee_amount", "on_behalf_of", "shipping", "transfer_data")

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

# What a restart keeps of each book (persistence.py writes and reads them): its collections.
# A file written before a collection existed restores it empty.
_KEPT_COLLECTIONS = (
    "_products",
    "_prices",
    "_price_id_by_lookup_key",
    "_payment_links",
    "_link_line_items",
    "_checkout_sessions",
    "_session_line_items",
    "_session_payment_intent_data",
    "_payment_intents",
    "_charges",
    "_refunds",
    "_disputes",
    "_events",
)
_COLLECTIONS_ADDED_LATER = frozenset({"_session_payment_intent_data"})


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


@dataclass(frozen=True)
class CheckoutView:
    """A checkout session as its hosted page shows it (copies, safe to read without the lock)."""

    session: StripeObject
    line_items: list[StripeObject]
    payment_intent_data: StripeObject
    link: StripeObject | None

    @property
    def continue_url(self) -> str | None:
        """Where the customer goes after paying: the session's `success_url` (with Stripe's
        `{CHECKOUT_SESSION_ID}` filled in), or the link's redirect."""
        if self.link is not None:
            after = self.link["after_completion"]
            return after["redirect"]["url"] if after["type"] == "redirect" else None
        success_url = self.session["success_url"]
        return success_url.replace("{CHECKOUT_SESSION_ID}", self.session["id"]) if success_url else None

    @property
    def confirmation_message(self) -> str | None:
        if self.link is None or self.link["after_completion"]["type"] != "hosted_confirmation":
            return None
        return self.link["after_completion"]["hosted_confirmation"]["custom_message"]


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
        # What a created session's payment will carry (`payment_intent_data`): not part of the
        # session object Stripe returns, so kept beside it.
        self._session_payment_intent_data: dict[str, StripeObject] = {}
        # Open sessions by id → when they expire; derived from the sessions, so not kept.
        self._open_sessions: dict[str, int] = {}
        self._payment_intents: dict[str, StripeObject] = {}
        self._charges: dict[str, StripeObject] = {}
        self._refunds: dict[str, StripeObject] = {}
        self._disputes: dict[str, StripeObject] = {}
        self._events: dict[str, StripeObject] = {}

    def snapshot(self) -> dict[str, Any]:
        """This book as JSON-ready data, sharing its objects (call with the lock held)."""
        return {
            "account": self.id,
            "livemode": self.livemode,
            "requests": self.requests,
            "collections": {name.lstrip("_"): getattr(self, name) for name in _KEPT_COLLECTIONS},
            "idempotency": self.idempotency.snapshot(),
        }

    def restore(self, kept: Mapping[str, Any]) -> None:
        """Take back what `snapshot()` gave (call with the lock held)."""
        self.requests = int(kept["requests"])
        collections = kept["collections"]
        for name in _KEPT_COLLECTIONS:
            key = name.lstrip("_")
            if key not in collections and name in _COLLECTIONS_ADDED_LATER:
                continue  # a file from before this collection existed: it starts empty
            setattr(self, name, dict(collections[key]))
        self._open_sessions = {
            session["id"]: session["expires_at"]
            for session in self._checkout_sessions.values()
            if session["status"] == "open"
        }
        self.idempotency.restore(kept["idempotency"])

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
            if "custom_text" in params:
                link["custom_text"] = self._custom_text(params["custom_text"], current=link["custom_text"])
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
            if "custom_text" in params:
                changes["custom_text"] = self._custom_text(params["custom_text"], current=link["custom_text"])
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
    def _custom_text(value: Any, *, current: StripeObject) -> StripeObject:
        """`custom_text[submit][message]` and its siblings: each set to a message of at most
        1,200 characters, or unset with an empty string; the others keep theirs."""
        text = copy.deepcopy(current)
        if value == "":
            return objects.no_custom_text()
        value = as_dict(value, "custom_text")
        reject_unknown(value, set(text))
        for place, given in value.items():
            if given == "":
                text[place] = None
                continue
            given = as_dict(given, param_path("custom_text", place))
            reject_unknown(given, {"message"})
            message_param = param_path("custom_text", place, "message")
            message = as_str(required(given, "message", path=message_param), message_param)
            if len(message) > MAX_CUSTOM_TEXT:
                raise parameter_invalid(
                    message_param, f"Text can be up to {MAX_CUSTOM_TEXT} characters in length."
                )
            text[place] = {"message": message}
        return text

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
            self._expire_due_sessions()
            session = self._checkout_session(session_id)
            if session["status"] != "open":
                raise EmulatorError(
                    400,
                    f"Checkout Session {session_id} is not open (status '{session['status']}').",
                    param="id",
                )
            method_type = "card" if method is PaymentMethod.CARD else "us_bank_account"
            if method_type not in session["payment_method_types"]:
                raise parameter_invalid(
                    "payment_method", f"Checkout Session {session_id} does not take `{method_type}` payments."
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
        self._store_open_session(session, line_items)
        return session

    def _store_open_session(self, session: StripeObject, line_items: list[StripeObject]) -> None:
        self._checkout_sessions[session["id"]] = session
        self._session_line_items[session["id"]] = line_items
        self._open_sessions[session["id"]] = session["expires_at"]

    def _complete_session(self, session: StripeObject, method: PaymentMethod, email: str | None) -> None:
        """Charge the session's PaymentIntent and record the completion (lock held)."""
        link = self._payment_links[session["payment_link"]] if session["payment_link"] else None
        intent_data = self._payment_intent_data_of(session)
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
        intent["receipt_email"] = intent_data.get("receipt_email")
        customer_email = email or session["customer_email"] or DEFAULT_CUSTOMER_EMAIL
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
        self._open_sessions.pop(session["id"], None)
        self._emit("checkout.session.completed", session, _NO_ORIGIN)
        if link is not None:
            self._count_completed_session(link)

    def _payment_intent_data_of(self, session: Mapping[str, Any]) -> Mapping[str, Any]:
        """What the session's payment carries: its link's `payment_intent_data`, or its own (lock held)."""
        if session["payment_link"]:
            return self._payment_links[session["payment_link"]]["payment_intent_data"] or {}
        return self._session_payment_intent_data.get(session["id"]) or {}

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

    def create_checkout_session(self, params: Params, origin: RequestOrigin = _NO_ORIGIN) -> StripeObject:
        """`POST /v1/checkout/sessions` in payment mode: an open session whose `url` pays it.

        Line items name a `price`, or give `price_data` (with a `product` or `product_data`, from
        which a product is made, as Stripe makes one). Nothing is stored unless all is valid.
        """
        self._reject_unmodelled_session_features(params)
        expand = _session_expansions(params.get("expand"))
        mode = as_str(required(params, "mode"), "mode")
        if mode not in _CHECKOUT_MODES:
            raise parameter_invalid("mode", f"Invalid mode: must be one of {', '.join(_CHECKOUT_MODES)}")
        if mode != "payment":
            reject_unsupported(params, ("mode",), _PAYMENT_SESSIONS_ONLY)
        ui_mode = as_optional_str(params.get("ui_mode"), "ui_mode") or "hosted"
        if ui_mode != "hosted":
            reject_unsupported(params, ("ui_mode",), "the emulator hosts every checkout page itself.")
        metadata = as_metadata(params.get("metadata"))
        intent_data = self._session_intent_data(params.get("payment_intent_data"))
        method_types = self._session_payment_method_types(params.get("payment_method_types"))
        texts = {
            field: as_optional_str(params.get(field), field)
            for field in ("success_url", "cancel_url", "client_reference_id", "customer_email")
        }
        if texts["client_reference_id"] is not None and len(texts["client_reference_id"]) > 200:
            raise parameter_invalid(
                "client_reference_id", "client_reference_id can be at most 200 characters."
            )
        settings = {
            field: read(params[field], field)
            for field, read in _SESSION_SETTINGS.items()
            if params.get(field) not in (None, "")
        }
        with self.lock:
            now = self._now()
            expires_at = self._session_expiry(params.get("expires_at"), now)
            line_items, new_products, new_prices = self._new_session_line_items(params)
            currency = line_items[0]["currency"]
            amount_total = sum(item["amount_total"] for item in line_items)
            if amount_total > MAX_PAYMENT_AMOUNT:
                raise EmulatorError(
                    400,
                    "The Checkout Session's total amount due must be no more than "
                    f"{format_amount(MAX_PAYMENT_AMOUNT, currency)}.",
                    code="amount_too_large",
                    param="line_items",
                )
            if params.get("currency") not in (None, ""):
                given = as_str(params["currency"], "currency").lower()
                if given != currency:
                    raise parameter_invalid(
                        "currency", f"The currency `{given}` does not match the line items' `{currency}`."
                    )
            session_id = objects.new_id("cs_live" if self.livemode else "cs_test")
            base_url = (origin.base_url or self.emulator.base_url).rstrip("/")
            session = objects.api_checkout_session(
                session_id=session_id,
                currency=currency,
                amount_total=amount_total,
                created=now,
                expires_at=expires_at,
                url=f"{base_url}/checkout/{session_id}",
                livemode=self.livemode,
                metadata=metadata,
                success_url=texts["success_url"],
                cancel_url=texts["cancel_url"],
                client_reference_id=texts["client_reference_id"],
                customer_email=texts["customer_email"],
                payment_method_types=method_types,
            )
            session.update(settings)
            if "custom_text" in params:
                session["custom_text"] = self._custom_text(
                    params["custom_text"], current=session["custom_text"]
                )
            for product in new_products:
                self._products[product["id"]] = product
                self._emit("product.created", product, origin)
            for price in new_prices:
                self._store_price(price, origin)
            if intent_data is not None:
                self._session_payment_intent_data[session_id] = intent_data
            self._store_open_session(session, line_items)
            return self._expanded_session(session, expand)

    def expire_checkout_session(
        self, session_id: str, params: Params | None = None, origin: RequestOrigin = _NO_ORIGIN
    ) -> StripeObject:
        """`POST /v1/checkout/sessions/{id}/expire`: an open session can no longer be paid."""
        expand = _session_expansions((params or {}).get("expand"))
        with self.lock:
            self._expire_due_sessions()
            session = self._checkout_session(session_id)
            if session["status"] != "open":
                raise EmulatorError(
                    400,
                    'Only Checkout Sessions with a status in ["open"] can be expired. '
                    f"This Checkout Session has a status of `{session['status']}`.",
                )
            self._expire_session(session, origin)
            return self._expanded_session(session, expand)

    def expire_due_sessions(self) -> int:
        """Expire every open session whose `expires_at` has passed; how many did."""
        with self.lock:
            return self._expire_due_sessions()

    def checkout_page_view(self, session_id: str) -> CheckoutView:
        """What the session's hosted page shows: the session, its items, what its payment will say,
        and its payment link, if it has one."""
        with self.lock:
            self._expire_due_sessions()
            session = self._checkout_session(session_id)
            link = self._payment_links[session["payment_link"]] if session["payment_link"] else None
            return CheckoutView(
                session=copy.deepcopy(session),
                line_items=copy.deepcopy(self._session_line_items[session_id]),
                payment_intent_data=copy.deepcopy(dict(self._payment_intent_data_of(session))),
                link=copy.deepcopy(link),
            )

    def retrieve_checkout_session(self, session_id: str, params: Params | None = None) -> StripeObject:
        expand = _session_expansions((params or {}).get("expand"))
        with self.lock:
            self._expire_due_sessions()
            return self._expanded_session(self._checkout_session(session_id), expand)

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
        expand = _session_expansions(params.get("expand"), prefix="data.")
        if "customer_details" in params:
            details = as_dict(params["customer_details"], "customer_details")
            email = as_str(
                required(details, "email", path="customer_details[email]"), "customer_details[email]"
            )
            filters.append(lambda session: (session["customer_details"] or {}).get("email") == email)
        with self.lock:
            self._expire_due_sessions()
            page = self._page(
                self._checkout_sessions, params, "/v1/checkout/sessions", "checkout.session", filters
            )
            if expand:
                page["data"] = [self._expanded_session(session, expand) for session in page["data"]]
            return page

    def list_checkout_session_line_items(self, session_id: str, params: Params) -> StripeObject:
        with self.lock:
            self._expire_due_sessions()
            self._checkout_session(session_id)
            items = copy.deepcopy(self._session_line_items[session_id])
            return paginate(
                items, params, url=f"/v1/checkout/sessions/{session_id}/line_items", kind="line_item"
            )

    def _checkout_session(self, session_id: str) -> StripeObject:
        return self._lookup(self._checkout_sessions, "checkout.session", session_id)

    def _expanded_session(self, session: StripeObject, expand: frozenset[str]) -> StripeObject:
        """A copy of `session` with the fields `expand` names as objects, as Stripe expands them:
        `line_items` (its first page, 10 items) and `payment_intent` (lock held)."""
        shown = copy.deepcopy(session)
        if "line_items" in expand:
            shown["line_items"] = paginate(
                copy.deepcopy(self._session_line_items[session["id"]]),
                {},
                url=f"/v1/checkout/sessions/{session['id']}/line_items",
                kind="line_item",
            )
        if "payment_intent" in expand and session["payment_intent"]:
            shown["payment_intent"] = copy.deepcopy(self._payment_intents[session["payment_intent"]])
        return shown

    def _expire_due_sessions(self) -> int:
        """Expire open sessions past their `expires_at` by the emulator's clock (lock held).

        Stripe expires them in the background; here that happens whenever sessions or events are
        read, a session is paid, and on the server's periodic sweep.
        """
        now = self._now()
        due = [session_id for session_id, expires_at in self._open_sessions.items() if expires_at <= now]
        for session_id in due:
            self._expire_session(self._checkout_sessions[session_id], _NO_ORIGIN)
        self.emulator.expired_since_kept += len(due)
        return len(due)

    def _expire_session(self, session: StripeObject, origin: RequestOrigin) -> None:
        objects.expire_checkout_session(session)
        self._open_sessions.pop(session["id"], None)
        self._emit("checkout.session.expired", session, origin)

    @staticmethod
    def _reject_unmodelled_session_features(params: Params) -> None:
        reject_unsupported(params, _UNMODELLED_SESSION_FEATURES, _PAYMENT_SESSIONS_ONLY)
        automatic_tax = as_dict(params.get("automatic_tax") or {}, "automatic_tax")
        if as_bool(automatic_tax.get("enabled", False), "automatic_tax[enabled]"):
            reject_unsupported(params, ("automatic_tax",), _PAYMENT_SESSIONS_ONLY)

    @staticmethod
    def _session_expiry(value: Any, now: int) -> int:
        """`expires_at`, 30 minutes to 24 hours from now (default: 24 hours), as Stripe requires."""
        if value in (None, ""):
            return now + MAX_CHECKOUT_LIFETIME_SECONDS
        expires_at = as_int(value, "expires_at")
        if expires_at < now + MIN_CHECKOUT_LIFETIME_SECONDS - EXPIRES_AT_TRANSIT_SECONDS:
            raise parameter_invalid(
                "expires_at",
                "The expires_at timestamp must be at least 30 minutes from Checkout Session creation.",
            )
        if expires_at > now + MAX_CHECKOUT_LIFETIME_SECONDS:
            raise parameter_invalid(
                "expires_at",
                "The expires_at timestamp must be less than 24 hours from Checkout Session creation.",
            )
        return expires_at

    @staticmethod
    def _session_payment_method_types(value: Any) -> list[str]:
        if value in (None, ""):
            return list(_SESSION_PAYMENT_METHOD_TYPES)
        types = as_list(value, "payment_method_types")
        for index, method_type in enumerate(types):
            if method_type not in _SESSION_PAYMENT_METHOD_TYPES:
                reject_unsupported(
                    {param_path("payment_method_types", index): method_type},
                    (param_path("payment_method_types", index),),
                    _PAYMENT_SESSIONS_ONLY,
                )
        if not types:
            raise parameter_invalid("payment_method_types", "Name at least one payment method type.")
        return list(dict.fromkeys(types))

    @staticmethod
    def _session_intent_data(value: Any) -> StripeObject | None:
        """A session's `payment_intent_data`: what its PaymentIntent will say and carry."""
        if value in (None, ""):
            return None
        given = as_dict(value, "payment_intent_data")
        reject_unknown(
            given,
            {
                "metadata",
                "receipt_email",
                *_PAYMENT_INTENT_TEXT_FIELDS,
                *_UNMODELLED_INTENT_FEATURES,
            },
        )
        reject_unsupported(
            {param_path("payment_intent_data", name): v for name, v in given.items()},
            (param_path("payment_intent_data", name) for name in _UNMODELLED_INTENT_FEATURES),
            _PAYMENT_SESSIONS_ONLY,
        )
        data = objects.payment_intent_data(
            metadata=as_metadata(given.get("metadata"), "payment_intent_data[metadata]")
        )
        for field in (*_PAYMENT_INTENT_TEXT_FIELDS, "receipt_email"):
            if field in given:
                data[field] = as_optional_str(given[field], param_path("payment_intent_data", field))
        return data

    def _new_session_line_items(
        self, params: Params
    ) -> tuple[list[StripeObject], list[StripeObject], list[StripeObject]]:
        """Validated `line_items` rendered as items, and the products and prices `price_data` makes
        (not yet stored) (lock held)."""
        items = as_list(required(params, "line_items"), "line_items")
        if len(items) > MAX_CHECKOUT_LINE_ITEMS:
            raise parameter_invalid(
                "line_items",
                f"A Checkout Session in payment mode can have at most {MAX_CHECKOUT_LINE_ITEMS} line items.",
            )
        rendered: list[StripeObject] = []
        new_products: list[StripeObject] = []
        new_prices: list[StripeObject] = []
        for index, item in enumerate(items):
            item_param = param_path("line_items", index)
            item = as_dict(item, item_param)
            reject_unknown(
                item,
                {
                    "adjustable_quantity",
                    "dynamic_tax_rates",
                    "metadata",
                    "price",
                    "price_data",
                    "quantity",
                    "tax_rates",
                },
            )
            reject_unsupported(
                {param_path("line_items", index, name): value for name, value in item.items()},
                (
                    param_path("line_items", index, name)
                    for name in ("adjustable_quantity", "dynamic_tax_rates", "tax_rates")
                ),
                _PAYMENT_SESSIONS_ONLY,
            )
            has_price = item.get("price") not in (None, "")
            has_price_data = item.get("price_data") not in (None, "")
            if has_price == has_price_data:
                raise parameter_invalid(
                    item_param,
                    f"You must specify exactly one of `{item_param}[price]` or `{item_param}[price_data]`.",
                )
            if has_price:
                price_param = param_path("line_items", index, "price")
                price_id = as_str(item["price"], price_param)
                price = self._price(price_id, param=price_param, http_status=400)
                if not price["active"]:
                    raise parameter_invalid(price_param, f"The price `{price_id}` is not active.")
                product = self._products[price["product"]]
            else:
                product, price, is_new_product = self._inline_price(item["price_data"], index)
                if is_new_product:
                    new_products.append(product)
                new_prices.append(price)
            quantity_param = param_path("line_items", index, "quantity")
            quantity = as_int(required(item, "quantity", path=quantity_param), quantity_param, minimum=1)
            metadata = as_metadata(item.get("metadata"), param_path("line_items", index, "metadata"))
            rendered.append(
                objects.line_item(
                    item_id=objects.new_id("li"),
                    price_object=price,
                    quantity=quantity,
                    description=product["name"],
                    metadata=metadata or None,
                )
            )
        if len({item["currency"] for item in rendered}) > 1:
            raise parameter_invalid(
                "line_items", "All line items of a Checkout Session must use the same currency."
            )
        return rendered, new_products, new_prices

    def _inline_price(self, value: Any, index: int) -> tuple[StripeObject, StripeObject, bool]:
        """The product (an existing one, or a new one from `product_data`) and the new price that
        `line_items[index][price_data]` describes; neither is stored yet (lock held)."""
        prefix = param_path("line_items", index, "price_data")
        data = as_dict(value, prefix)
        reject_unknown(
            data,
            {
                "currency",
                "product",
                "product_data",
                "recurring",
                "tax_behavior",
                "unit_amount",
                "unit_amount_decimal",
            },
        )
        reject_unsupported(
            {param_path(prefix, "recurring"): data.get("recurring")},
            (param_path(prefix, "recurring"),),
            _ONE_TIME_PRICES_ONLY,
        )
        has_product = data.get("product") not in (None, "")
        if has_product == (data.get("product_data") not in (None, "")):
            raise parameter_invalid(
                prefix, f"You must specify exactly one of `{prefix}[product]` or `{prefix}[product_data]`."
            )
        if has_product:
            product_param = param_path(prefix, "product")
            product = self._product(
                as_str(data["product"], product_param), param=product_param, http_status=400
            )
            is_new = False
        else:
            product_prefix = param_path(prefix, "product_data")
            product_data = as_dict(data["product_data"], product_prefix)
            reject_unknown(
                product_data,
                {"description", "images", "metadata", "name", "tax_code", "tax_details", "unit_label"},
            )
            reject_unsupported(
                {param_path(product_prefix, "tax_details"): product_data.get("tax_details")},
                (param_path(product_prefix, "tax_details"),),
                _PAYMENT_SESSIONS_ONLY,
            )
            name_param = param_path(product_prefix, "name")
            product = objects.product(
                product_id=objects.new_id("prod"),
                name=as_str(required(product_data, "name", path=name_param), name_param),
                description=as_optional_str(
                    product_data.get("description"), param_path(product_prefix, "description")
                ),
                active=True,
                metadata=as_metadata(product_data.get("metadata"), param_path(product_prefix, "metadata")),
                created=self._now(),
                livemode=self.livemode,
            )
            for field in ("tax_code", "unit_label"):
                if field in product_data:
                    product[field] = as_optional_str(product_data[field], param_path(product_prefix, field))
            if product_data.get("images") not in (None, ""):
                product["images"] = [
                    as_str(image, param_path(product_prefix, "images"))
                    for image in as_list(product_data["images"], param_path(product_prefix, "images"))
                ]
            is_new = True
        price_params: dict[str, Any] = {
            key: data[key]
            for key in ("currency", "unit_amount", "unit_amount_decimal", "tax_behavior")
            if key in data
        }
        price = self._build_price(product["id"], price_params, prefix=prefix)
        return product, price, is_new

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
            self._expire_due_sessions()  # a session that expired by now has its event listed
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
        "create_checkout_session",
        "expire_checkout_session",
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
        self.state_file: StateFile | None = None  # where `keep()` writes the state (None: memory only)
        self.expired_since_kept = 0  # sessions expired since the sweep last reported (lock held)

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

    def expire_due_sessions(self) -> int:
        """Expire, in every account, the open sessions whose `expires_at` has passed; returns how
        many sessions expired since the last call, here or when a read found them due.

        Stripe does this in the background; the server calls it every second (reads and payments
        of a session also do it first), so `checkout.session.expired` reaches webhooks unasked, and
        keeps the state when anything expired (a read that expired a session writes nothing)."""
        with self.lock:
            books = list(self._books.values())
        for book in books:
            book.expire_due_sessions()
        with self.lock:
            expired, self.expired_since_kept = self.expired_since_kept, 0
        return expired

    # ------------------------------------------------------------------ kept across restarts

    def keep(self) -> None:
        """Write the state to its file, if it has one (after every request that may change it)."""
        if self.state_file is not None:
            self.state_file.save(self)

    def snapshot(self) -> dict[str, Any]:
        """Everything a restart keeps, JSON-ready, sharing the live objects (call with the lock held)."""
        return {
            "platform_account": self.platform_account_id,
            "base_url": self.base_url,
            "accounts": self._account_created,
            "books": [book.snapshot() for book in self._books.values()],
        }

    def restore(self, kept: Mapping[str, Any]) -> None:
        """Take back a `snapshot()`: the same accounts (the platform's id too) and every book.

        Events a webhook endpoint had not acknowledged are delivered again, as Stripe retries."""
        with self.lock:
            self.platform_account_id = str(kept["platform_account"])
            self.base_url = str(kept["base_url"])
            self._account_created = {str(key): int(value) for key, value in kept["accounts"].items()}
            self._books = {}
            for book_kept in kept["books"]:
                account_id, livemode = str(book_kept["account"]), bool(book_kept["livemode"])
                book = Account(
                    self, account_id, livemode=livemode, connected=account_id != self.platform_account_id
                )
                book.restore(book_kept)
                self._books[(account_id, livemode)] = book
            if self.webhooks is not None:
                for book in self._books.values():
                    for event in book._events.values():
                        if event.get("pending_webhooks"):
                            self.webhooks.enqueue(event)

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


_SESSION_EXPANSIONS = frozenset({"line_items", "payment_intent"})


def _session_expansions(value: Any, prefix: str = "") -> frozenset[str]:
    """The fields of a checkout session `expand` names (each after `prefix`, `data.` on lists).

    Other expansions are refused: ignored, they would answer an id where the caller reads an object."""
    if value in (None, ""):
        return frozenset()
    names = [as_str(name, "expand") for name in as_list(value, "expand")]
    fields = set()
    for name in names:
        field = name.removeprefix(prefix) if name.startswith(prefix) else None
        if field not in _SESSION_EXPANSIONS:
            raise _unsupported_expansion(name, prefix)
        fields.add(field)
    return frozenset(fields)


def _unsupported_expansion(name: str, prefix: str) -> EmulatorError:
    allowed = " and ".join(f"`{prefix}{field}`" for field in sorted(_SESSION_EXPANSIONS))
    return EmulatorError(
        400,
        f"The local Stripe emulator does not support expanding `{name}` on checkout sessions: "
        f"it expands {allowed}.",
        code="parameter_unknown",
        param="expand",
    )


def _bounded_list(params: Params, name: str, maximum: int) -> list[Any]:
    values = as_list(params[name], name)
    if len(values) > maximum:
        raise parameter_invalid(name, f"You may pass at most {maximum} values for `{name}`.")
    return values
