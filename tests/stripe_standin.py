"""A stand-in for the parts of Stripe's API that top-ups use, on loopback, plus Stripe's
side of the webhook: events shaped like Stripe's, signed exactly as Stripe signs them.

The product talks to it through the official `stripe` library (STRIPE_API_BASE), so the
requests it sees are the library's own: form-encoded bodies with bracketed keys.
"""

import hashlib
import hmac
import json
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

SECRET_KEY = "sk_test_standin_0123456789"
WEBHOOK_SECRET = "whsec_standin_0123456789abcdef"


def sign(payload: str, secret: str = WEBHOOK_SECRET, timestamp: int | None = None) -> str:
    """The Stripe-Signature header: HMAC-SHA256 of "{t}.{payload}", hex, as scheme v1."""
    t = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{t}.{payload}".encode(), hashlib.sha256).hexdigest()
    return f"t={t},v1={digest}"


def event(kind: str, obj: dict, event_id: str | None = None) -> str:
    return json.dumps({
        "id": event_id or f"evt_{secrets.token_hex(12)}", "object": "event", "api_version": "2026-10-28.endive",
        "created": int(time.time()), "livemode": False, "pending_webhooks": 1, "type": kind,
        "data": {"object": obj},
    })


class StripeStandIn:
    def __init__(self):
        self.sessions: dict[str, dict] = {}
        self.charges: dict[str, dict] = {}  # by payment intent
        self.requests: list[tuple[str, str, dict]] = []
        self.fail_next = 0
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_port}"

    def __enter__(self):
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self._server.shutdown()
        self._server.server_close()

    def reset(self):
        self.sessions.clear()
        self.charges.clear()
        self.requests.clear()
        self.fail_next = 0

    # What happens on Stripe's side when the payer pays, or the merchant refunds.

    def pay(self, session_id: str) -> dict:
        session = self.sessions[session_id]
        intent = f"pi_{secrets.token_hex(12)}"
        session.update(status="complete", payment_status="paid", payment_intent=intent)
        self.charges[intent] = {
            "id": f"ch_{secrets.token_hex(12)}", "object": "charge", "amount": session["amount_total"],
            "amount_refunded": 0, "currency": "usd", "paid": True, "refunded": False, "payment_intent": intent,
            "receipt_url": f"{self.url}/receipts/{intent}",
        }
        return dict(session)

    def refund(self, session_id: str, cents: int) -> dict:
        charge = self.charges[self.sessions[session_id]["payment_intent"]]
        charge["amount_refunded"] += cents
        charge["refunded"] = charge["amount_refunded"] == charge["amount"]
        return dict(charge)

    def _handler(self):
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _answer(self, status: int, body: dict):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Request-Id", f"req_{secrets.token_hex(6)}")
                self.end_headers()
                self.wfile.write(data)

            def _authorised(self) -> bool:
                if self.headers.get("Authorization") == f"Bearer {SECRET_KEY}":
                    return True
                self._answer(401, {"error": {"type": "invalid_request_error", "message": "Invalid API Key"}})
                return False

            def _failing(self) -> bool:
                if standin.fail_next <= 0:
                    return False
                standin.fail_next -= 1
                self._answer(500, {"error": {"type": "api_error", "message": "stand-in told to fail"}})
                return True

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
                form = {k: v[0] for k, v in parse_qs(body).items()}
                standin.requests.append(("POST", self.path, form))
                if not self._authorised() or self._failing():
                    return
                if self.path != "/v1/checkout/sessions":
                    return self._answer(404, {"error": {"type": "invalid_request_error", "message": "no route"}})
                session_id = f"cs_test_{secrets.token_hex(16)}"
                session = {
                    "id": session_id, "object": "checkout.session", "mode": form["mode"],
                    "amount_total": int(form["line_items[0][price_data][unit_amount]"])
                    * int(form["line_items[0][quantity]"]),
                    "currency": form["line_items[0][price_data][currency]"],
                    "client_reference_id": form.get("client_reference_id"),
                    "customer_email": form.get("customer_email"),
                    "metadata": {k[len("metadata["):-1]: v for k, v in form.items() if k.startswith("metadata[")},
                    "payment_intent": None, "payment_status": "unpaid", "status": "open",
                    "success_url": form["success_url"], "cancel_url": form["cancel_url"],
                    "url": f"{standin.url}/c/pay/{session_id}",
                }
                standin.sessions[session_id] = session
                self._answer(200, session)

            def do_GET(self):
                parts = urlsplit(self.path)
                query = {k: v[0] for k, v in parse_qs(parts.query).items()}
                standin.requests.append(("GET", parts.path, query))
                if not self._authorised() or self._failing():
                    return
                if parts.path == "/v1/checkout/sessions":
                    found = [s for s in standin.sessions.values() if s["payment_intent"] == query.get("payment_intent")]
                    return self._answer(200, {"object": "list", "url": "/v1/checkout/sessions", "has_more": False,
                                              "data": found[: int(query.get("limit", 10))]})
                if parts.path.startswith("/v1/payment_intents/"):
                    intent = parts.path.rsplit("/", 1)[1]
                    charge = standin.charges.get(intent)
                    if charge is None:
                        return self._answer(404, {"error": {"type": "invalid_request_error", "message": "no such"}})
                    expanded = query.get("expand[0]") == "latest_charge"
                    return self._answer(200, {"id": intent, "object": "payment_intent", "status": "succeeded",
                                              "latest_charge": charge if expanded else charge["id"]})
                self._answer(404, {"error": {"type": "invalid_request_error", "message": "no route"}})

        return Handler


@pytest.fixture(scope="session")
def stripe_server():
    with StripeStandIn() as server:
        yield server


@pytest.fixture
def standin(stripe_server, settings):
    """Stripe top-ups on, pointed at the stand-in."""
    stripe_server.reset()
    settings.STRIPE_SECRET_KEY = SECRET_KEY
    settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
    settings.STRIPE_API_BASE = stripe_server.url
    return stripe_server
