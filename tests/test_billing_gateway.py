"""Charging through the live gateway: reservation, settlement, booking, refusals."""

import socket
from decimal import Decimal
from urllib.parse import urlparse

import openai
import pytest
import requests

from billing.ledger import credit
from console.tenancy.actions import create_organization
from gateway.routing.catalog import forget_routes
from gateway.routing.catalog_loader import load_catalog
from gateway.keys.api_keys import mint_api_key
from gateway.models import CatalogModel
from tests.billing_helpers import OK_COST, balance, booked
from tests.conftest import catalog_yaml

pytestmark = pytest.mark.django_db(transaction=True)

HELLO = [{"role": "user", "content": "Say hello"}]


def test_a_non_streamed_answer_carries_its_cost_and_the_balance(client, org):
    raw = client.chat.completions.with_raw_response.create(model="mock:ok", messages=HELLO)
    assert raw.headers["x-mixgateway-cost-usd"] == "0.00000546"
    assert Decimal(raw.headers["x-mixgateway-balance-usd"]) == Decimal("100") - OK_COST
    assert raw.parse().usage.model_extra["cost"] == pytest.approx(0.00000546)
    assert '"cost":0.00000546' in raw.text  # exact digits, not a float's


def test_a_stream_ends_with_its_cost(client, org):
    chunks = list(client.chat.completions.create(model="mock:ok", messages=HELLO, stream=True))
    assert chunks[-1].usage.model_extra["cost"] == pytest.approx(0.00000546)


def test_each_request_is_booked_once_with_its_prices(client, org):
    raw = client.chat.completions.with_raw_response.create(model="mock:ok", messages=HELLO)
    record = booked(raw.headers["x-request-id"])
    assert record.cost == OK_COST
    assert (record.prompt_tokens, record.completion_tokens, record.basis) == (8, 3, "provider")
    assert record.ledger_entry.amount == -OK_COST
    assert record.ledger_entry.reference == f"usage:{record.request_id}"
    assert record.api_key.last_used_at is not None
    # A later price change never re-prices history.
    CatalogModel.objects.filter(name="ok").update(input_per_mtok=Decimal("9"))
    forget_routes()
    record.refresh_from_db()
    assert record.input_per_mtok == Decimal("0.27") and record.cost == OK_COST
    assert balance(org) == Decimal("100") - OK_COST


def test_an_upstream_failure_costs_nothing(client, org):
    with pytest.raises(openai.InternalServerError) as err:
        client.chat.completions.create(model="mock:fail-500", messages=HELLO)
    record = booked(err.value.response.headers["x-request-id"])
    assert (record.status, record.cost, record.http_status) == ("upstream_error", 0, 502)
    assert record.ledger_entry is None
    assert balance(org) == Decimal("100")


def test_a_stream_without_provider_usage_is_charged_on_an_estimate(client, org):
    raw = client.chat.completions.with_raw_response.create(model="mock:no-usage", messages=HELLO, stream=True)
    list(raw.parse())
    record = booked(raw.headers["x-request-id"])
    assert record.basis == "estimated" and record.completion_tokens >= 3 and record.cost > 0


def test_a_stream_cut_by_the_upstream_is_charged_for_what_was_relayed(gateway_url, api_key, catalog, org):
    resp = requests.post(f"{gateway_url}/chat/completions", headers={"Authorization": f"Bearer {api_key}"},
                         json={"model": "mock:cut-mid-stream", "messages": HELLO, "stream": True}, timeout=10)
    assert "upstream_error" in resp.text and "[DONE]" not in resp.text
    record = booked(resp.headers["x-request-id"])
    assert (record.status, record.basis) == ("upstream_error", "partial")
    assert record.completion_tokens == 1  # the one token the caller received
    assert record.cost == (record.prompt_tokens * Decimal("0.27") + Decimal("1.10")) / 1_000_000


def test_a_caller_that_goes_away_mid_stream_pays_for_what_it_received(live_server, api_key, catalog, org):
    load_catalog(catalog_yaml(catalog.base_url, timeout=10))  # outlast slow-stream's 3 s pause
    forget_routes()
    url = urlparse(live_server.url)
    body = ('{"model": "mock:slow-stream", "stream": true, "messages": [{"role": "user", "content": "hi"}]}')
    sock = socket.create_connection((url.hostname, url.port))
    sock.sendall((f"POST /v1/chat/completions HTTP/1.1\r\nHost: {url.netloc}\r\nAuthorization: Bearer {api_key}"
                  f"\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n{body}").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(65536)
    head = head.decode()
    assert " 200 " in head.splitlines()[0]
    request_id = next(line.split(": ")[1] for line in head.splitlines() if line.lower().startswith("x-request-id"))
    sock.close()  # gone after the first chunk, while the upstream is still thinking
    record = booked(request_id)  # the server notices when its next write fails
    assert (record.status, record.basis) == ("client_gone", "partial")
    # Charged for the prompt and for what was handed to the connection before the write
    # failed, never for the whole answer: the upstream's 3 tokens were not all relayed.
    assert 0 <= record.completion_tokens < 3 and record.prompt_tokens > 0
    assert record.cost == (record.prompt_tokens * Decimal("0.27")
                           + record.completion_tokens * Decimal("1.10")) / 1_000_000


def test_an_empty_balance_is_refused_before_any_upstream_call(gateway_url, catalog, db):
    broke = create_organization("Broke Ltd", "carol@broke.example")
    _, secret = mint_api_key(broke)
    sdk = openai.OpenAI(base_url=gateway_url, api_key=secret, max_retries=0)
    with pytest.raises(openai.RateLimitError) as err:
        sdk.chat.completions.create(model="mock:ok", messages=HELLO)
    assert err.value.code == "insufficient_quota"
    assert err.value.type == "insufficient_quota"
    assert err.value.response.headers["x-should-retry"] == "false"
    assert err.value.response.json()["request_id"] == err.value.response.headers["x-request-id"]
    assert catalog.requests == []


def test_crossing_zero_refuses_the_next_request_until_a_credit(gateway_url, catalog, db):
    org = create_organization("Tight Budget", "dan@tight.example")
    _, secret = mint_api_key(org)
    sdk = openai.OpenAI(base_url=gateway_url, api_key=secret, max_retries=0)
    # Enough to reserve one request (prompt bound 16 + max_tokens 10) and pay for it.
    credit(org.pk, Decimal("0.00002"))
    sdk.chat.completions.create(model="mock:ok", messages=HELLO, max_tokens=10)
    assert balance(org) == Decimal("0.00002") - OK_COST
    with pytest.raises(openai.RateLimitError):
        sdk.chat.completions.create(model="mock:ok", messages=HELLO, max_tokens=10)
    credit(org.pk, Decimal("1"))
    sdk.chat.completions.create(model="mock:ok", messages=HELLO, max_tokens=10)
    assert balance(org) == Decimal("1.00002") - 2 * OK_COST


def test_a_credit_limit_lets_the_balance_go_below_zero(gateway_url, catalog, db):
    from billing.ledger import set_credit_limit

    org = create_organization("Trusted Co", "erin@trusted.example")
    _, secret = mint_api_key(org)
    sdk = openai.OpenAI(base_url=gateway_url, api_key=secret, max_retries=0)
    set_credit_limit(org.pk, Decimal("0.001"))
    sdk.chat.completions.create(model="mock:ok", messages=HELLO, max_tokens=10)
    assert balance(org) == -OK_COST
