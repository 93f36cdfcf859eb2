"""The request path of every /v1 surface, top to bottom.

1. authenticate  the door (gateway.api.views, or the console's playground) has the caller's
                 key before anything reads the body: a stranger's 8 MiB is never parsed.
2. parse         the surface's parser checks the body and makes the gateway's request.
3. route         the catalog model, its deployments and fallbacks, for this key.
4. admit         the worst-case cost on any candidate is held on the balance (and the
                 key's spend and rate limits), or the request is refused before any
                 upstream call. Then the database connection goes back to the pool.
5. call          the upstream, failing over along the candidates before the first byte:
                 translated by the route's adapter, or, when the route speaks the surface's
                 own protocol, the caller's body relayed as it came (relay_native).
6. relay         the surface's encoder answers in the caller's shape, whole or streamed.
7. settle        when the server closes the response (gateway.relay.SettlesOnClose): the
                 real cost replaces the hold, once, however the request ended.

Failures before admission raise (the door answers them with gateway.api.errors'
envelope); once admitted, every answer, error or not, is a response that settles.
"""

from functools import partial

from django.conf import settings
from django.db import connections
from django.http import HttpResponse

from billing import charging
from billing.money import usd

from .upstream.adapters import adapter_for
from .routing.catalog import Route, resolve_route
from .parsing.chat_request import read_json_object
from .parsing.embeddings import EmbeddingRequest
from .parsing.encoding import encode
from .api.errors import GatewayError, UpstreamError, envelope_response, gateway_error
from .metering import CapturedText, Charge, Exchange, Outcome, Timing, cost_of, prices_of
from .relay import SettlingResponse, SettlingStream
from .routing.resilience import call_with_failover, candidates
from .surfaces import Surface


def serve(surface: Surface, request, key, body: dict | None = None) -> HttpResponse:
    """Answer one request of `surface` for an authenticated `key`. `body` is the request's
    JSON body unless the caller (the console playground) has already read and shaped it."""
    timing = Timing()
    if body is None:
        body = read_json_object(request, settings.GATEWAY_MAX_BODY_BYTES)
    parsed = surface.parse(body)
    route = resolve_route(parsed.model, key)
    chain = candidates(route, key)
    charge = Charge.admit(request.request_id, key, max(_worst_case(parsed, candidate) for candidate in chain))
    _release_database_connections()
    exchange = Exchange(request.request_id, key, parsed, route, charge, timing, CapturedText(key.log_content))
    try:
        response = _answer(surface, exchange, chain, _native_headers(surface, request))
    except Exception as exc:  # noqa: BLE001 - admitted: whatever happened must still settle
        error = gateway_error(exc, exchange.request_id)
        status = "upstream_error" if isinstance(exc, GatewayError) else "error"
        exchange.outcome = Outcome(status, None, http_status=error.status_code, error_code=error.code)
        response = envelope_response(error, exchange.request_id, SettlingResponse, surface.error_encoding)
        response.exchange = exchange
    for name, value in charge.limit_headers.items():
        response[name] = value
    return response


def _release_database_connections() -> None:
    """Whatever was read cold (key, catalog, account) has been read: hand the database
    connection back to the pool now, not after an upstream call that may take minutes.
    A no-op on a warm request and for persistent connections outside gevent; and inside
    a transaction (the console's, a test's) the connection is not ours to give back."""
    for connection in connections.all(initialized_only=True):
        if not connection.in_atomic_block:
            connection.close_if_unusable_or_obsolete()


def _worst_case(request, route: Route):
    return charging.worst_case_cost(request.prompt_bound(route.context_window),
                                    request.output_bound(route.max_output_tokens), prices_of(route))


def _native_headers(surface: Surface, request) -> dict:
    """The caller's headers meant for an upstream of its own protocol (anthropic-beta)."""
    return {name: request.headers[name] for name in surface.native_headers if name in request.headers}


def _answer(surface: Surface, exchange: Exchange, chain: list[Route], native_headers: dict) -> HttpResponse:
    request = exchange.request
    call = partial(_call, surface, request=request, native_headers=native_headers)
    if request.stream:
        served, (first, chunks) = call_with_failover(chain, lambda route: _first_chunk(route, call(route)))
        exchange.served_by(served)
        response = SettlingStream(surface.encode_stream(exchange, first, chunks), exchange)
    else:
        served, completion = call_with_failover(chain, call)
        exchange.served_by(served)
        body, usage = surface.encode_answer(exchange, completion)
        exchange.timing.first_byte()
        cost = cost_of(usage, served)  # what settling will charge, to the picodollar
        response = SettlingResponse(encode(body, cost), content_type="application/json")
        response["x-mixgateway-cost-usd"] = usd(cost)
        if exchange.charge.booked_balance is not None:
            response["x-mixgateway-balance-usd"] = usd(exchange.charge.booked_balance - cost)
        exchange.outcome = Outcome("completed", usage)
        response.exchange = exchange
    response["x-mixgateway-served-by"] = served.public_id
    return response


def _call(surface: Surface, route: Route, request, native_headers: dict):
    """One upstream call: the caller's own format relayed when the route speaks it, else
    the request translated by the route's adapter. A stream's chunks, or the whole answer."""
    adapter, routed = adapter_for(route), request.for_route(route)
    if surface.relays_natively(route):
        return adapter.relay_native(route, routed, native_headers)
    if request.stream:
        return adapter.stream(route, routed)
    if isinstance(routed, EmbeddingRequest):
        return adapter.embed(route, routed)
    return adapter.complete(route, routed)


def _first_chunk(route: Route, chunks):
    # Wait for the first chunk before answering 200: an upstream that fails at once can
    # still be failed over, or give the caller a proper error status.
    first = next(chunks, None)
    if first is None:
        raise UpstreamError(f"The upstream provider '{route.provider}' sent an empty stream.")
    return first, chunks
