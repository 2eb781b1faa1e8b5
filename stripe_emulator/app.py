"""The emulator over HTTP: Stripe's `/v1` API, the hosted pay pages, and `/_emulator` admin.

A `/v1` request passes, in order: authentication (the key's prefix picks test or live mode),
the account it acts in (`Stripe-Account`, else the platform), that account's rate limit, an
injected early failure, parameter parsing, the account's payment-link creation limit (for that
one endpoint), the idempotency key (replay, mismatch, in-flight conflict), injected latency,
the operation itself (`routes.py` → `state.Account`), and an injected late failure. Faults and
auth apply to `/v1` only: the pay pages are what a parent's browser hits, and `/_emulator` is
how tests and the demo steer the emulator (what a parent or a bank does). With a state file,
every POST or DELETE is written to it before its answer leaves (`_KeepsState`).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from dataclasses import asdict
from typing import Any
from urllib.parse import parse_qsl

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from . import objects, pay_page
from .auth import authenticate
from .errors import EmulatorError
from .faults import FailurePoint, FaultConfig
from .forms import parse_form
from .idempotency import StoredResponse, request_fingerprint
from .params import reject_unknown
from .persistence import EmulatorStateError
from .routes import ApiCall, Route, match_route
from .state import LIVE_KEY_PREFIXES, PAID, Account, CheckoutView, Emulator, PaymentMethod, RequestOrigin

logger = logging.getLogger(__name__)


def create_app(emulator: Emulator) -> FastAPI:
    """A FastAPI app serving `emulator`; mount it anywhere or run it with `EmulatorServer`."""
    app = FastAPI(title="paylinks local Stripe emulator", docs_url=None, redoc_url=None, openapi_url=None)
    api = _StripeApi(emulator)
    app.add_api_route(
        "/v1/{path:path}", api.handle, methods=["GET", "POST", "DELETE"], include_in_schema=False
    )

    pages = _PayPages(emulator)
    app.add_api_route("/pay/{link_id}", pages.show, methods=["GET"], include_in_schema=False)
    app.add_api_route("/pay/{link_id}", pages.pay, methods=["POST"], include_in_schema=False)
    app.add_api_route("/checkout/{session_id}", pages.show_session, methods=["GET"], include_in_schema=False)
    app.add_api_route("/checkout/{session_id}", pages.pay_session, methods=["POST"], include_in_schema=False)

    admin = _Admin(emulator)
    for method, path, handler in (
        ("GET", "/_emulator/counts", admin.counts),
        ("GET", "/_emulator/faults", admin.show_faults),
        ("POST", "/_emulator/faults", admin.set_faults),
        ("POST", "/_emulator/accounts", admin.create_account),
        ("POST", "/_emulator/payment_links/{link_id}/open_session", admin.open_session),
        ("POST", "/_emulator/checkout_sessions/{session_id}/complete", admin.complete),
        ("POST", "/_emulator/checkout_sessions/{session_id}/settle", admin.settle),
        ("POST", "/_emulator/payment_intents/{intent_id}/dispute", admin.dispute),
        ("GET", "/_emulator/webhook_deliveries", admin.webhook_deliveries),
    ):
        app.add_api_route(path, handler, methods=[method], include_in_schema=False)
    app.add_middleware(_KeepsState, emulator=emulator)
    return app


class _KeepsState:
    """After a request that may change the state (any POST or DELETE but the fault settings),
    the emulator writes its state file before the answer's first byte leaves."""

    _NOT_STATE = frozenset({"/_emulator/faults"})

    def __init__(self, app: ASGIApp, emulator: Emulator) -> None:
        self.app = app
        self.emulator = emulator

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] not in ("POST", "DELETE")
            or self.emulator.state_file is None
            or scope["path"] in self._NOT_STATE
        ):
            await self.app(scope, receive, send)
            return

        async def send_after_keeping(message: Message) -> None:
            if message["type"] == "http.response.start":
                try:
                    # In a thread: other requests go on meanwhile, and share the write if they can.
                    await asyncio.to_thread(self.emulator.keep)
                except EmulatorStateError as error:  # the answer still goes; the log says what was not kept
                    logger.error("%s", error)
            await send(message)

        await self.app(scope, receive, send_after_keeping)


# ---------------------------------------------------------------------- Stripe API


class _StripeApi:
    def __init__(self, emulator: Emulator) -> None:
        self.emulator = emulator

    async def handle(self, request: Request) -> Response:
        request_id = objects.new_id("req")
        try:
            return await self._handle(request, request_id)
        except EmulatorError as error:
            return _stripe_response(error.to_body(), error.http_status, request, request_id)
        except Exception:  # a bug here must still reach the SDK as a Stripe-shaped 500
            logger.exception("local Stripe emulator failed on %s %s", request.method, request.url.path)
            internal = EmulatorError(
                500, "An unexpected error occurred in the local Stripe emulator.", type="api_error"
            )
            return _stripe_response(internal.to_body(), 500, request, request_id)

    async def _handle(self, request: Request, request_id: str) -> Response:
        api_key = authenticate(request.headers.get("authorization"), self.emulator.api_key)
        account = self.emulator.account(
            request.headers.get("stripe-account") or None,
            livemode=api_key.startswith(LIVE_KEY_PREFIXES),
            api_key=api_key,
        )
        fails_after_write = self._apply_early_faults(account, is_write=request.method == "POST")
        route, call = await _parse_call(request, request_id)
        if (
            route.template == "/v1/payment_links"
            and route.method == "POST"
            and not account.admit_link_creation()
        ):
            raise _rate_limited()

        idempotency_key = call.origin.idempotency_key
        if idempotency_key:
            fingerprint = request_fingerprint(request.method, request.url.path, call.params)
            replay = account.idempotency.begin(api_key, idempotency_key, fingerprint)
            if replay is not None:
                await self._simulate_latency()
                return _replayed_response(replay, request, request_id)

        body = await self._run(account, route, call, api_key)
        if fails_after_write:
            # The write is committed (and stored under its key): only the response is lost.
            raise _injected_failure()
        return _stripe_response(body, 200, request, request_id)

    def _apply_early_faults(self, account: Account, *, is_write: bool) -> bool:
        """Raise this request's 429 or early 500, if it gets one; True if it must fail after its write."""
        if not account.admit_request():
            raise _rate_limited()
        failure = self.emulator.fault_injector.pick_failure(is_write=is_write)
        if failure is FailurePoint.BEFORE_HANDLING:
            raise _injected_failure()
        return failure is FailurePoint.AFTER_WRITE

    async def _run(self, account: Account, route: Route, call: ApiCall, api_key: str) -> dict[str, Any]:
        """Run the operation after the injected latency, storing its result under its idempotency key.

        The latency passes while the key is claimed, as a slow Stripe request holds its key, so a
        concurrent request with the same key meets the 409 it would meet on Stripe. A failed
        operation releases the key, so a retry runs for real.
        """
        key = call.origin.idempotency_key
        try:
            await self._simulate_latency()
            body = route.operation(account, call)
        except BaseException:
            if key:
                account.idempotency.release(api_key, key)
            raise
        if key:
            account.idempotency.complete(
                api_key, key, StoredResponse(200, body, call.origin.request_id or "")
            )
        return body

    async def _simulate_latency(self) -> None:
        seconds = self.emulator.fault_injector.latency_seconds()
        if seconds > 0:
            await asyncio.sleep(seconds)  # asyncio, so other requests proceed meanwhile


async def _parse_call(request: Request, request_id: str) -> tuple[Route, ApiCall]:
    """The route a request names and its parsed params; Stripe's 404 or 400 if either is wrong."""
    matched = match_route(request.method, request.url.path)
    if matched is None:
        raise _unrecognized_url(request)
    route, path_params = matched
    params = parse_form(await _param_pairs(request))
    reject_unknown(params, route.accepted_params)
    # Stripe honours idempotency keys on POST only.
    idempotency_key = request.headers.get("idempotency-key") if request.method == "POST" else None
    origin = RequestOrigin(request_id, idempotency_key or None, base_url=str(request.base_url))
    return route, ApiCall(params=params, path_params=path_params, origin=origin)


async def _param_pairs(request: Request) -> list[tuple[str, str]]:
    """Query-string params, plus the form body of a POST (Stripe v1 takes both)."""
    pairs = parse_qsl(request.url.query, keep_blank_values=True)
    if request.method == "POST":
        body = await request.body()
        try:
            pairs += parse_qsl(body.decode("utf-8"), keep_blank_values=True)
        except UnicodeDecodeError as error:
            raise EmulatorError(400, "The request body is not valid UTF-8 form data.") from error
    return pairs


def _stripe_response(
    body: dict[str, Any],
    status: int,
    request: Request,
    request_id: str,
    extra_headers: dict[str, str] | None = None,
) -> JSONResponse:
    headers = {
        "Request-Id": request_id,
        "Stripe-Version": request.headers.get("stripe-version", objects.API_VERSION),
        **(extra_headers or {}),
    }
    return JSONResponse(body, status_code=status, headers=headers)


def _replayed_response(stored: StoredResponse, request: Request, request_id: str) -> JSONResponse:
    return _stripe_response(
        stored.body,
        stored.status_code,
        request,
        request_id,
        extra_headers={"Idempotent-Replayed": "true", "Original-Request": stored.request_id},
    )


def _rate_limited() -> EmulatorError:
    return EmulatorError(
        429,
        "Too many requests hit the API too quickly. We recommend an exponential backoff of your requests.",
        code="rate_limit",
    )


def _injected_failure() -> EmulatorError:
    return EmulatorError(
        500,
        "An unexpected error occurred while processing your request (injected by the local Stripe emulator).",
        type="api_error",
    )


def _unrecognized_url(request: Request) -> EmulatorError:
    return EmulatorError(
        404,
        f"Unrecognized request URL ({request.method}: {request.url.path}). "
        "Please see https://stripe.com/docs or we can help at https://support.stripe.com/.",
    )


# ---------------------------------------------------------------------- pay pages


class _PayPages:
    """What a parent's browser sees: a link's page and a checkout session's page.

    `GET /pay/{id}` shows what is owed and `POST /pay/{id}` pays it at once; `GET /checkout/{id}`
    shows an open session (created by the API, or opened on a link by
    `/_emulator/payment_links/{id}/open_session`) and `POST` pays it; an expired session answers
    410 and a complete one 409 to a payment. Each answers HTML, or JSON when asked for.
    """

    def __init__(self, emulator: Emulator) -> None:
        self.emulator = emulator

    async def show(self, link_id: str) -> HTMLResponse:
        try:
            account = self.emulator.holder("payment_links", link_id)
            link = account.retrieve_payment_link(link_id)
            line_items = account.list_payment_link_line_items(link_id, {"limit": 100})["data"]
        except EmulatorError:
            return HTMLResponse(pay_page.unavailable_page("There is no payment link at this address."), 404)
        if not link["active"]:
            message = link["inactive_message"] or "This payment link is no longer active."
            return HTMLResponse(pay_page.unavailable_page(message), 410)
        return HTMLResponse(
            pay_page.checkout_page(
                line_items,
                currency=link["currency"],
                description=pay_page.payment_description(link["payment_intent_data"]),
                submit_text=pay_page.submit_message(link["custom_text"]),
            )
        )

    async def pay(self, link_id: str, request: Request) -> Response:
        """Optional form fields: `payment_status=unpaid`, `amount_total=<cents>`, `email`."""
        form = parse_form(await request.body())
        return await self._answer(
            request,
            lambda: self.emulator.pay(
                link_id,
                payment_status=form.get("payment_status") or PAID,
                amount_total=form.get("amount_total") or None,
                email=form.get("email") or None,
            ),
        )

    async def show_session(self, session_id: str) -> HTMLResponse:
        try:
            view = self.emulator.holder("checkout_sessions", session_id).checkout_page_view(session_id)
        except EmulatorError:
            return HTMLResponse(_no_checkout_page(), 404)
        session = view.session
        if session["status"] == "expired":
            return HTMLResponse(_expired_page(), 410)
        if session["status"] != "open":
            return HTMLResponse(_completed_page(view))
        return HTMLResponse(
            pay_page.checkout_page(
                view.line_items,
                currency=session["currency"],
                description=pay_page.payment_description(view.payment_intent_data),
                submit_text=pay_page.submit_message(session["custom_text"]),
                offer_card="card" in session["payment_method_types"],
                offer_bank_debit="us_bank_account" in session["payment_method_types"],
            )
        )

    async def pay_session(self, session_id: str, request: Request) -> Response:
        """Optional form fields: `payment_method=card|bank_debit`, `email`.

        A session that expired answers 410 and one already complete 409, paying nothing."""
        form = parse_form(await request.body())
        wants_json = "application/json" in request.headers.get("accept", "")
        try:
            status = self.emulator.holder("checkout_sessions", session_id).retrieve_checkout_session(
                session_id
            )["status"]
        except EmulatorError as error:
            if wants_json:
                return JSONResponse(error.to_body(), error.http_status)
            return HTMLResponse(_no_checkout_page(), 404)
        if status != "open":
            refused = _expired_page() if status == "expired" else _already_complete_page()
            code = 410 if status == "expired" else 409
            if wants_json:
                message = (
                    "This checkout has expired." if status == "expired" else "This checkout is complete."
                )
                return JSONResponse(EmulatorError(code, message, param="id").to_body(), code)
            return HTMLResponse(refused, code)
        return await self._answer(
            request,
            lambda: self.emulator.complete_session(
                session_id,
                payment_method=form.get("payment_method") or PaymentMethod.CARD,
                email=form.get("email") or None,
            ),
        )

    async def _answer(self, request: Request, complete: Callable[[], dict[str, Any]]) -> Response:
        wants_json = "application/json" in request.headers.get("accept", "")
        try:
            session = complete()
        except EmulatorError as error:
            if wants_json:
                return JSONResponse(error.to_body(), error.http_status)
            return HTMLResponse(pay_page.unavailable_page(error.message), error.http_status)
        if wants_json:
            return JSONResponse(session)
        view = self.emulator.holder("checkout_sessions", session["id"]).checkout_page_view(session["id"])
        return HTMLResponse(_completed_page(view))


def _completed_page(view: CheckoutView) -> str:
    return pay_page.completed_page(
        view.session,
        description=pay_page.payment_description(view.payment_intent_data),
        continue_url=view.continue_url,
        message=view.confirmation_message,
    )


def _no_checkout_page() -> str:
    return pay_page.unavailable_page("There is no checkout at this address.", title="Checkout unavailable")


def _expired_page() -> str:
    return pay_page.unavailable_page(
        "This checkout has expired, and nothing was paid. Go back and start again.", title="Checkout expired"
    )


def _already_complete_page() -> str:
    return pay_page.unavailable_page(
        "This checkout is already complete: it cannot be paid again.", title="Checkout already complete"
    )


# ---------------------------------------------------------------------- admin


class _Admin:
    """Steering for tests and the demo, not part of Stripe's API: what a parent or a bank does.

    POST bodies are a form or a JSON object. Errors come back Stripe-shaped.
    """

    def __init__(self, emulator: Emulator) -> None:
        self.emulator = emulator

    async def counts(self, account: str | None = None) -> Response:
        """Objects of each kind in one account (`?account=acct_…`; default the platform)."""
        return _admin_answer(lambda: self.emulator.counts(account or None))

    async def show_faults(self) -> dict[str, Any]:
        return asdict(self.emulator.faults)

    async def set_faults(self, request: Request) -> Response:
        """Change any of `latency_ms`, `rate_limit_rps`, `link_create_rps` (blank or null: no limit),
        `fail_rate`, `seed`."""
        try:
            changes = _fault_changes(await _json_or_form(request))
            candidate = FaultConfig(**{**asdict(self.emulator.faults), **changes})
            candidate.validate()
        except EmulatorError as error:
            return JSONResponse(error.to_body(), error.http_status)
        except (ValueError, TypeError) as error:
            return JSONResponse(EmulatorError(400, str(error)).to_body(), 400)
        # Mutate in place: whoever holds `emulator.faults` keeps seeing the live settings.
        for name, value in changes.items():
            setattr(self.emulator.faults, name, value)
        return JSONResponse(asdict(self.emulator.faults))

    async def create_account(self, request: Request) -> Response:
        """Connect an account to the platform; optional `id=acct_…`. Returns the Account object."""
        return await _admin_call(
            request, {"id"}, lambda given: self.emulator.create_connected_account(given.get("id"))
        )

    async def open_session(self, link_id: str, request: Request) -> Response:
        """A parent opens the link's page: an open checkout session. Optional `amount_total`."""
        return await _admin_call(
            request,
            {"amount_total"},
            lambda given: self.emulator.open_session(link_id, given.get("amount_total")),
        )

    async def complete(self, session_id: str, request: Request) -> Response:
        """The parent pays the open session; optional `payment_method=card|bank_debit`, `email`."""
        return await _admin_call(
            request,
            {"payment_method", "email"},
            lambda given: self.emulator.complete_session(
                session_id,
                payment_method=given.get("payment_method") or PaymentMethod.CARD,
                email=given.get("email") or None,
            ),
        )

    async def settle(self, session_id: str, request: Request) -> Response:
        """The bank debit clears or bounces: `outcome=succeeded` (default) or `failed`."""
        return await _admin_call(
            request,
            {"outcome"},
            lambda given: self.emulator.settle(session_id, given.get("outcome") or "succeeded"),
        )

    async def dispute(self, intent_id: str, request: Request) -> Response:
        """The cardholder disputes the payment; `status=won|lost` also closes the dispute."""
        return await _admin_call(
            request, {"status"}, lambda given: self.emulator.dispute(intent_id, given.get("status"))
        )

    async def webhook_deliveries(self) -> dict[str, Any]:
        """Every event handed to webhook delivery, oldest first, with each attempt's answer."""
        return {"object": "list", "data": self.emulator.webhook_deliveries()}


def _admin_answer(operation: Callable[[], Any]) -> Response:
    try:
        return JSONResponse(operation())
    except EmulatorError as error:
        return JSONResponse(error.to_body(), error.http_status)


async def _admin_call(
    request: Request, accepted: set[str], operation: Callable[[dict[str, Any]], Any]
) -> Response:
    """Run `operation` on the submitted form or JSON object; unknown names are refused as Stripe would."""
    try:
        submitted = await _json_or_form(request)
    except ValueError as error:
        return JSONResponse(EmulatorError(400, str(error)).to_body(), 400)

    def checked() -> Any:
        reject_unknown(submitted, accepted)
        return operation(submitted)

    return _admin_answer(checked)


_FAULT_FIELDS: dict[str, Callable[[Any], Any]] = {
    "latency_ms": int,
    "rate_limit_rps": float,
    "link_create_rps": float,
    "fail_rate": float,
    "seed": int,
}
_NULLABLE_FAULT_FIELDS = frozenset({"rate_limit_rps", "link_create_rps", "seed"})


def _fault_changes(submitted: dict[str, Any]) -> dict[str, Any]:
    unknown = set(submitted) - set(_FAULT_FIELDS)
    if unknown:
        raise ValueError(f"Unknown fault settings: {', '.join(sorted(unknown))}")
    changes: dict[str, Any] = {}
    for name, value in submitted.items():
        if value in (None, "") and name in _NULLABLE_FAULT_FIELDS:
            changes[name] = None
        else:
            changes[name] = _FAULT_FIELDS[name](value)
    return changes


async def _json_or_form(request: Request) -> dict[str, Any]:
    body = await request.body()
    if "json" in request.headers.get("content-type", ""):
        submitted = json.loads(body or b"{}")
        if not isinstance(submitted, dict):
            raise ValueError("Send a JSON object.")
        return submitted
    return parse_form(body)
