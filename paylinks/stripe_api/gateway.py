"""Every call paylinks makes to Stripe, through the real `stripe` SDK.

Every call is paced (`pacers`: Stripe's limits are per account and mode). A gateway retries what can
succeed on a second try (429, 5xx, connection errors) with exponential backoff and jitter under
the same idempotency key, and turns what cannot (a rejected key, a 4xx) into clear errors. `PAYLINKS_STRIPE_API_BASE` points it at the local
emulator instead of Stripe.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar, cast

import stripe

from paylinks.errors import StripeKeyRejectedError
from paylinks.settings import Settings
from paylinks.stripe_api import keys
from paylinks.stripe_api.failures import (
    StripeNotFoundError,
    StripeRequestError,
    StripeTransientError,
    StripeUnreachableError,
    connection_reason,
)
from paylinks.stripe_api.pacers import PAYMENT_LINK_CREATE, REQUEST, LocalPacer, Pacer

if TYPE_CHECKING:
    from stripe.params import (
        PaymentLinkCreateParams,
        PaymentLinkUpdateParams,
        PriceCreateParams,
        ProductCreateParams,
    )
    from stripe.params.checkout import SessionCreateParams

logger = logging.getLogger(__name__)

T = TypeVar("T")

LOOKUP_KEYS_PER_REQUEST = 10  # Stripe's own limit on `lookup_keys[]`
EVENT_RETENTION_S = 30 * 24 * 3600  # how long Stripe keeps events


@dataclass(frozen=True)
class StripeContext:
    """Where a call lands: the Stripe account and whether it is live mode. A link minted in
    one context cannot take payment for another, so rows and price tiers record it.

    `remembered`: where paylinks last knew this key to act, when Stripe has just answered
    otherwise (`paylinks.stripe_api.where.stripe_where`); not part of the comparison."""

    account: str
    livemode: bool
    remembered: StripeContext | None = field(default=None, compare=False, repr=False)

    def describe(self) -> str:
        return f"{self.account} ({'live' if self.livemode else 'test'} mode)"

    @property
    def moved_words(self) -> str | None:
        """The one line that says the key moved, or None when it acts where it did."""
        if self.remembered is None:
            return None
        return (
            f"the Stripe key now acts in {self.describe()} (was {self.remembered.describe()}): "
            "links minted there are re-minted by the next backfill"
        )


def is_transient(error: BaseException) -> bool:
    return isinstance(error, StripeTransientError)


@dataclass(frozen=True)
class CheckoutLine:
    """One line of a Checkout Session: what it is for, in words, and its amount (minor units)."""

    name: str
    amount_cents: int


@dataclass(frozen=True)
class OpenedCheckout:
    """A Checkout Session as Stripe answered its creation."""

    id: str
    url: str | None
    status: str | None  # Stripe's: open, complete, expired
    expires_at: int | None
    livemode: bool


@dataclass(frozen=True)
class MintedLink:
    id: str
    url: str
    active: bool
    completed_sessions: int


def _transient_status(error: stripe.StripeError) -> bool:
    status = error.http_status or 0
    return (
        isinstance(error, (stripe.RateLimitError, stripe.APIConnectionError))
        or status == 409
        or status >= 500
    )


class StripeGateway:
    """Small, typed facade over the Stripe endpoints paylinks uses."""

    def __init__(
        self,
        settings: Settings,
        *,
        account: str | None = None,
        sleep: Callable[[float], None] = time.sleep,
        pacer: Pacer | None = None,
    ):
        """`account`: a Connect account (`acct_…`) every call acts in, sent as `Stripe-Account`
        through the SDK's `stripe_account` option; None acts in the key's own account.
        `pacer`: what every call waits on (default: this process's `LocalPacer` for the account)."""
        self.settings = settings
        self.account = account or None
        self._context: StripeContext | None = None
        self._sleep = sleep
        self.pacer: Pacer = pacer if pacer is not None else LocalPacer(settings, self.account, sleep=sleep)
        self._random = random.Random()
        self.calls = 0
        self.retries = 0
        self._client = stripe.StripeClient(
            keys.api_key(settings),
            base_addresses={"api": settings.stripe_api_base} if settings.stripe_api_base else None,
            # Retries are ours: the SDK does not retry 429s, and we pace and count them.
            max_network_retries=0,
            http_client=stripe.RequestsClient(timeout=settings.stripe_timeout_s),
        )
        self._counter_lock = threading.Lock()

    # -- the one way out -------------------------------------------------------------------
    def call(self, describe: str, request: Callable[[], T], kind: str = REQUEST) -> T:
        """Run one Stripe request, paced and retried; `describe` names it in errors. A `kind`
        other than REQUEST (PAYMENT_LINK_CREATE) takes that permit as well as a request's."""
        attempts = self.settings.stripe_max_retries + 1
        for attempt in range(1, attempts + 1):
            # The narrower permit last: a wait for the request permit after it would bunch the
            # link creations its pace had spread out.
            self.pacer.acquire(REQUEST)
            if kind != REQUEST:
                self.pacer.acquire(kind)
            with self._counter_lock:
                self.calls += 1
            try:
                return request()
            except stripe.AuthenticationError:
                raise StripeKeyRejectedError() from None
            except stripe.StripeError as error:
                if not _transient_status(error):
                    error_type = StripeNotFoundError if error.http_status == 404 else StripeRequestError
                    raise error_type(
                        f"Stripe refused {describe}: {_safe_message(error)}",
                        code=getattr(error, "code", None),
                        param=_error_param(error),
                    ) from None
                if attempt == attempts and isinstance(error, stripe.APIConnectionError):
                    raise StripeUnreachableError(
                        self.settings, connection_reason(error), f" while {describe} ({attempts} tries)"
                    ) from None
                if attempt == attempts:
                    raise StripeTransientError(
                        f"Stripe kept failing {describe} after {attempts} tries: {_safe_message(error)}"
                    ) from None
                with self._counter_lock:
                    self.retries += 1
                delay = self._backoff(attempt, error)
                logger.debug("retrying %s in %.2fs after %s", describe, delay, type(error).__name__)
                self._sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    def _backoff(self, attempt: int, error: stripe.StripeError) -> float:
        base = 0.5 if isinstance(error, stripe.RateLimitError) else 0.25
        cap = 8.0
        # Full jitter keeps many concurrent retries from hitting Stripe in lockstep.
        return self._random.uniform(0, min(cap, base * 2 ** (attempt - 1)))

    def _options(self, **options: Any) -> stripe.RequestOptions:
        """Request options: the connected account, if any, plus these (an idempotency key)."""
        if self.account:
            options["stripe_account"] = self.account
        return cast("stripe.RequestOptions", options)

    @property
    def api_key(self) -> str:
        """The key in use (for fingerprinting; never log it)."""
        return keys.api_key(self.settings)

    def context(self) -> StripeContext:
        """The account and mode this gateway's key acts in (one request, then remembered)."""
        if self._context is None:

            def read() -> StripeContext:
                if self._context is not None:  # learnt while this call waited for its permit
                    return self._context
                account = self._client.v1.accounts.retrieve_current(options=self._options())
                return StripeContext(
                    account=account.id, livemode=keys.key_is_live(keys.api_key(self.settings))
                )

            self._context = self.call("reading the Stripe account", read)
        return self._context

    # -- products and prices --------------------------------------------------------------
    def create_product(
        self, *, name: str, description: str, metadata: dict[str, str], idempotency_key: str
    ) -> str:
        params: dict[str, Any] = {"name": name, "metadata": metadata}
        if description:
            params["description"] = description
        product = self.call(
            f"creating product {name!r}",
            lambda: self._client.v1.products.create(
                params=cast("ProductCreateParams", params),
                options=self._options(idempotency_key=idempotency_key),
            ),
        )
        return product.id

    def find_prices(self, lookup_keys: Iterable[str]) -> dict[str, tuple[str, str]]:
        """Active prices by lookup key → (price id, product id), asking Stripe ten keys at a time."""
        keys = sorted(set(lookup_keys))
        found: dict[str, tuple[str, str]] = {}
        for start in range(0, len(keys), LOOKUP_KEYS_PER_REQUEST):
            chunk = keys[start : start + LOOKUP_KEYS_PER_REQUEST]
            page = self.call(
                "looking up prices",
                cast(
                    "Callable[[], stripe.ListObject[stripe.Price]]",
                    lambda chunk=chunk: self._client.v1.prices.list(
                        params={"lookup_keys": chunk, "active": True, "limit": 100}, options=self._options()
                    ),
                ),
            )
            for price in page.data:
                product = price.product if isinstance(price.product, str) else price.product.id
                found[cast(str, price.lookup_key)] = (price.id, product)  # listed by lookup key
        return found

    def create_price(
        self,
        *,
        product_id: str,
        amount_cents: int,
        currency: str,
        lookup_key: str,
        metadata: dict[str, str],
        idempotency_key: str | None = None,
    ) -> str:
        """A one-time price; its idempotency key is its lookup key unless another is given."""
        params = {
            "product": product_id,
            "unit_amount": amount_cents,
            "currency": currency,
            "lookup_key": lookup_key,
            "metadata": metadata,
        }
        price = self.call(
            f"creating price {lookup_key}",
            lambda: self._client.v1.prices.create(
                params=cast("PriceCreateParams", params),
                options=self._options(idempotency_key=idempotency_key or lookup_key),
            ),
        )
        return price.id

    # -- payment links ----------------------------------------------------------------------
    def create_payment_link(
        self,
        *,
        price_id: str,
        metadata: dict[str, str],
        idempotency_key: str,
        checkout_text: str | None = None,
    ) -> MintedLink:
        """`checkout_text`: what the checkout page and the receipt say it is for (None: nothing,
        as links were minted before paylinks named the player)."""
        params: dict[str, Any] = {
            "line_items": [{"price": price_id, "quantity": 1}],
            "restrictions": {"completed_sessions": {"limit": 1}},
            "metadata": metadata,
            # Link metadata does not reach the PaymentIntent; this copy does.
            "payment_intent_data": {"metadata": metadata},
        }
        if checkout_text:
            params["payment_intent_data"]["description"] = checkout_text
            params["custom_text"] = {"submit": {"message": checkout_text}}
        link = self.call(
            f"minting a payment link for row {metadata.get('payment_link_row_id')}",
            lambda: self._client.v1.payment_links.create(
                params=cast("PaymentLinkCreateParams", params),
                options=self._options(idempotency_key=idempotency_key),
            ),
            kind=PAYMENT_LINK_CREATE,
        )
        return _minted(link)

    def retrieve_payment_link(self, link_id: str) -> MintedLink:
        link = self.call(
            f"reading payment link {link_id}",
            lambda: self._client.v1.payment_links.retrieve(link_id, options=self._options()),
        )
        return _minted(link)

    def deactivate_payment_link(self, link_id: str, inactive_message: str) -> MintedLink:
        params = {"active": False, "inactive_message": inactive_message}
        link = self.call(
            f"deactivating payment link {link_id}",
            lambda: self._client.v1.payment_links.update(
                link_id, params=cast("PaymentLinkUpdateParams", params), options=self._options()
            ),
        )
        return _minted(link)

    def update_payment_link_metadata(
        self, link_id: str, metadata: dict[str, str], checkout_text: str | None = None
    ) -> MintedLink:
        """Rename what a live link is for (its order, say) without minting a new one; the
        description its payments carry goes along (`checkout_text`, when it has one)."""
        intent_data: dict[str, Any] = {"metadata": metadata}
        if checkout_text:
            intent_data["description"] = checkout_text
        params = {"metadata": metadata, "payment_intent_data": intent_data}
        link = self.call(
            f"updating payment link {link_id}",
            lambda: self._client.v1.payment_links.update(
                link_id, params=cast("PaymentLinkUpdateParams", params), options=self._options()
            ),
        )
        return _minted(link)

    def name_payment_link(self, link_id: str, checkout_text: str, metadata: dict[str, str]) -> MintedLink:
        """Say on a live link's checkout page and its payment's receipt what it is for, without
        minting a new one. The PaymentIntent metadata goes along unchanged (Stripe sets that
        metadata declaratively: an update never leaves it otherwise)."""
        params = {
            "payment_intent_data": {"description": checkout_text, "metadata": metadata},
            "custom_text": {"submit": {"message": checkout_text}},
        }
        link = self.call(
            f"naming the player on payment link {link_id}",
            lambda: self._client.v1.payment_links.update(
                link_id, params=cast("PaymentLinkUpdateParams", params), options=self._options()
            ),
        )
        return _minted(link)

    def iter_payment_links_since(self, created_gte: int) -> Iterator[tuple[MintedLink, dict[str, str]]]:
        """(link, metadata) of the account's links minted since `created_gte`.

        Payment links cannot be searched and carry no creation time, so this reads the
        `payment_link.created` events since then (Stripe keeps events 30 days): one request per
        100 links minted since. Older than that, it pages through every link of the account.
        """
        if created_gte > time.time() - EVENT_RETENTION_S + 3600:
            for event in self.iter_events(types=["payment_link.created"], created_gte=created_gte):
                link = event.data.object
                yield _minted(link), dict(link.to_dict().get("metadata") or {})
            return
        starting_after: str | None = None
        while True:
            params: dict[str, Any] = {"limit": 100}
            if starting_after:
                params["starting_after"] = starting_after
            page = self.call(
                "listing payment links",
                cast(
                    "Callable[[], stripe.ListObject[stripe.PaymentLink]]",
                    lambda params=params: self._client.v1.payment_links.list(
                        params=params, options=self._options()
                    ),
                ),
            )
            for link in page.data:
                yield _minted(link), dict(link.to_dict().get("metadata") or {})
            if not page.has_more or not page.data:
                return
            starting_after = page.data[-1].id

    # -- checkout sessions ----------------------------------------------------------------
    def create_checkout_session(
        self,
        *,
        lines: list[CheckoutLine],
        currency: str,
        metadata: dict[str, str],
        client_reference_id: str,
        success_url: str,
        cancel_url: str,
        expires_at: int,
        idempotency_key: str,
        description: str | None = None,
        describe: str = "creating a checkout session",
    ) -> OpenedCheckout:
        """A payment-mode Checkout Session, one line per bill named in words (`price_data` with
        `product_data[name]`: a Price's product name cannot say which child a line is for). The
        metadata goes on the PaymentIntent too, where refunds and disputes are found. `describe`
        names it in errors (never a url: those carry the family page's token)."""
        intent_data: dict[str, Any] = {"metadata": metadata}
        if description:
            intent_data["description"] = description
        params: dict[str, Any] = {
            "mode": "payment",
            "line_items": [
                {
                    "price_data": {
                        "currency": currency,
                        "unit_amount": line.amount_cents,
                        "product_data": {"name": line.name},
                    },
                    "quantity": 1,
                }
                for line in lines
            ],
            "metadata": metadata,
            "payment_intent_data": intent_data,
            "client_reference_id": client_reference_id,
            "success_url": success_url,
            "cancel_url": cancel_url,
            "expires_at": expires_at,
        }
        session = self.call(
            describe,
            lambda: self._client.v1.checkout.sessions.create(
                params=cast("SessionCreateParams", params),
                options=self._options(idempotency_key=idempotency_key),
            ),
        )
        return OpenedCheckout(
            id=session.id,
            url=session.url,
            status=session.status,
            expires_at=session.expires_at,
            livemode=bool(session.livemode),
        )

    # -- what was paid ------------------------------------------------------------------
    def iter_events(self, *, types: list[str], created_gte: int) -> Iterator[Any]:
        """Events of these types since `created_gte`, oldest first."""
        events: list[Any] = []
        starting_after: str | None = None
        while True:
            params: dict[str, Any] = {"types": types, "created": {"gte": created_gte}, "limit": 100}
            if starting_after:
                params["starting_after"] = starting_after
            page = self.call(
                "listing events",
                cast(
                    "Callable[[], stripe.ListObject[stripe.Event]]",
                    lambda params=params: self._client.v1.events.list(params=params, options=self._options()),
                ),
            )
            events.extend(page.data)
            if not page.has_more or not page.data:
                break
            starting_after = page.data[-1].id
        # Stripe lists newest first; apply oldest first so the cursor only moves forward.
        return iter(sorted(events, key=lambda event: (event.created, event.id)))

    def iter_checkout_sessions(
        self, *, payment_link_id: str | None = None, created_gte: int | None = None
    ) -> Iterator[Any]:
        """Checkout sessions of one link, or of the whole account created since `created_gte`,
        100 per request."""
        starting_after: str | None = None
        what = f"of {payment_link_id}" if payment_link_id else "of the account"
        while True:
            params: dict[str, Any] = {"limit": 100}
            if payment_link_id:
                params["payment_link"] = payment_link_id
            if created_gte is not None:
                params["created"] = {"gte": created_gte}
            if starting_after:
                params["starting_after"] = starting_after
            page = self.call(
                f"listing checkout sessions {what}",
                cast(
                    "Callable[[], stripe.ListObject[stripe.checkout.Session]]",
                    lambda params=params: self._client.v1.checkout.sessions.list(
                        params=params, options=self._options()
                    ),
                ),
            )
            yield from page.data
            if not page.has_more or not page.data:
                return
            starting_after = page.data[-1].id


def _minted(link: Any) -> MintedLink:
    restrictions = (link.to_dict().get("restrictions") or {}).get("completed_sessions") or {}
    completed = int(restrictions.get("count") or 0)
    return MintedLink(id=link.id, url=link.url, active=bool(link.active), completed_sessions=completed)


def _error_param(error: stripe.StripeError) -> str | None:
    param = getattr(error, "param", None)
    if param is None and error.error is not None:
        param = getattr(error.error, "param", None)
    return str(param) if param else None


def _safe_message(error: stripe.StripeError) -> str:
    # Stripe's messages mask keys already; keep just the user-facing sentence and code.
    message = " ".join((error.user_message or str(error) or type(error).__name__).split())
    code = getattr(error, "code", None)
    return f"{message} ({code})" if code else message
