"""A local, stateful stand-in for the part of Stripe's API that paylinks uses.

It speaks Stripe's wire format (form-encoded bracket params in, Stripe-shaped JSON and errors
out), so the real `stripe` SDK works against it unchanged::

    with EmulatorServer() as server:
        client = stripe.StripeClient("sk_test_local", base_addresses={"api": server.url})
        product = client.v1.products.create(params={"name": "Season fee"})

It covers products, prices (with lookup keys), payment links and their hosted pay pages,
checkout sessions, events and idempotency keys, and can inject latency, 429s and failures
(`FaultConfig`). `Emulator` is the in-memory state; `create_app` wraps it in a FastAPI app;
`EmulatorServer` and `serve` run that app.
"""

from .app import create_app
from .errors import EmulatorError
from .faults import FaultConfig
from .server import EmulatorServer, serve
from .state import Emulator

__all__ = ["Emulator", "EmulatorError", "EmulatorServer", "FaultConfig", "create_app", "serve"]
