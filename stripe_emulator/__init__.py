"""A local, stateful stand-in for the part of Stripe's API that paylinks uses.

It speaks Stripe's wire format (form-encoded bracket params in, Stripe-shaped JSON and errors
out), so the real `stripe` SDK works against it unchanged::

    with EmulatorServer() as server:
        client = stripe.StripeClient("sk_test_local", base_addresses={"api": server.url})
        product = client.v1.products.create(params={"name": "Season fee"})

It covers:

- products, prices (with lookup keys), payment links (metadata updates, listing) and their
  hosted pay pages;
- checkout sessions, each completed one with its PaymentIntent and Charge; sessions created in
  payment mode (`POST /v1/checkout/sessions`: line items by price or price_data, metadata,
  success_url, expires_at) with their own pay page, expired by the API or when their time is up;
  slow payments (bank debits) that settle later, succeeded or failed;
- refunds (full or partial), disputes (opened, won, lost), and events for all of it;
- the account (`GET /v1/account`), Connect accounts via `Stripe-Account` with their own objects,
  events, idempotency keys and rate limits; test or live mode by the key's prefix;
- faults: latency, 429s above an account's overall rate or its payment-link creation rate, and
  500s before or after a write (`FaultConfig`);
- signed webhook delivery with retries (`WebhookConfig`), verifiable with
  `stripe.Webhook.construct_event`.

`/_emulator/...` endpoints play the parent and the bank: open a link's checkout and complete
it (card or bank debit), settle a debit, open or close a dispute, connect an account, and show
counts, faults and webhook deliveries. `Emulator` is the in-memory state (an `Account` per
account and mode); `create_app` wraps it in a FastAPI app; `EmulatorServer` and `serve` run it.
With a `StateFile` (`EmulatorServer(state=PATH)`) the state survives a restart: the same
accounts, objects, events and idempotency keys, and links that still pay.
"""

from .app import create_app
from .errors import EmulatorError
from .faults import FaultConfig
from .persistence import IN_MEMORY, EmulatorStateError, StateFile
from .server import EmulatorServer, serve
from .state import Account, DisputeOutcome, Emulator, PaymentMethod, SettleOutcome
from .webhooks import WebhookConfig, signature_header

__all__ = [
    "Account",
    "DisputeOutcome",
    "Emulator",
    "EmulatorError",
    "EmulatorServer",
    "EmulatorStateError",
    "FaultConfig",
    "IN_MEMORY",
    "PaymentMethod",
    "SettleOutcome",
    "StateFile",
    "WebhookConfig",
    "create_app",
    "serve",
    "signature_header",
]
