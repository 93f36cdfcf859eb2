"""The request path's guarantees against a live gateway (DESIGN.md "Guarantees under
faults"): the overdraft bound holds against an upstream that honours whichever output cap
it likes, an upstream that answers longer still is charged and counted, and the gateway's
own upstream key never reaches a caller or a log, whatever its shape."""

import logging
from decimal import Decimal

import openai
import pytest

from billing.ledger import credit
from billing.reconcile import reconcile
from console.tenancy.actions import create_organization
from gateway import observability
from gateway.keys.api_keys import mint_api_key
from tests.billing_helpers import balance, booked

HELLO = [{"role": "user", "content": "Say hello"}]


@pytest.fixture
def poor_org(db):
    org = create_organization("Poor Labs", "pat@poor.example")
    credit(org.pk, Decimal("0.0001"), note="almost nothing")
    return org


def sdk(gateway_url, org):
    _, secret = mint_api_key(org, name="test")
    return openai.OpenAI(base_url=gateway_url, api_key=secret, max_retries=0, timeout=20)


def test_the_reservation_covers_the_largest_cap_the_body_carries(gateway_url, catalog, poor_org):
    # On main the reservation trusted max_completion_tokens (5) while max_tokens (8000)
    # went upstream: an upstream honouring max_tokens took 0.0001 USD to -0.15998.
    client = sdk(gateway_url, poor_org)
    with pytest.raises(openai.RateLimitError) as refused:
        client.chat.completions.create(model="mock:honours-max-tokens", messages=HELLO,
                                       max_completion_tokens=5, max_tokens=8000)
    assert refused.value.code == "insufficient_quota"
    assert catalog.requests == []  # refused before any upstream call
    assert balance(poor_org) == Decimal("0.0001")


def test_the_cap_reserved_for_is_the_cap_sent_upstream(gateway_url, catalog, org):
    client = sdk(gateway_url, org)
    answer = client.chat.completions.with_raw_response.create(
        model="mock:honours-max-tokens", messages=HELLO, max_completion_tokens=5, max_tokens=300)
    sent = catalog.requests[-1]["body"]
    assert (sent["max_tokens"], sent["max_completion_tokens"]) == (300, 300)
    assert answer.parse().usage.completion_tokens == 300


def test_an_uncapped_request_is_sent_the_models_cap(gateway_url, catalog, org):
    sdk(gateway_url, org).chat.completions.create(model="mock:honours-max-tokens", messages=HELLO)
    assert catalog.requests[-1]["body"]["max_tokens"] == 4096  # the catalog's max_output_tokens


def test_an_upstream_that_overruns_its_cap_is_charged_what_it_reported_and_counted(gateway_url, catalog, org,
                                                                                     caplog):
    counted = observability.OUTPUT_OVERRUN_TOKENS.labels("mock:overruns")
    before = counted._value.get()
    client = sdk(gateway_url, org)
    with caplog.at_level(logging.WARNING, logger="gateway.metering"):
        answer = client.chat.completions.with_raw_response.create(model="mock:overruns", messages=HELLO,
                                                                  max_tokens=50)
    request_id = answer.headers["x-request-id"]
    assert answer.parse().usage.completion_tokens == 150
    reconcile()
    assert booked(request_id).completion_tokens == 150
    assert counted._value.get() - before == 100
    assert any(request_id in r.getMessage() and "100 over" in r.getMessage() for r in caplog.records)


GROQ_STYLE_KEY = "gsk_Zq8vN3rT5yW7uI9oP1aS3dF5gH7jK9lZ"


def test_the_configured_upstream_key_reaches_neither_caller_nor_log(gateway_url, catalog, org, monkeypatch, caplog):
    monkeypatch.setenv("MOCK_UPSTREAM_API_KEY", GROQ_STYLE_KEY)
    client = sdk(gateway_url, org)
    with caplog.at_level(logging.DEBUG):
        with pytest.raises(openai.BadRequestError) as rejected:
            client.chat.completions.create(model="mock:echoes-key", messages=HELLO)
    assert catalog.requests[-1]["headers"]["authorization"] == f"Bearer {GROQ_STYLE_KEY}"  # it was sent
    assert GROQ_STYLE_KEY not in rejected.value.response.text
    assert "[redacted]" in rejected.value.message
    assert caplog.records and not any(GROQ_STYLE_KEY in r.getMessage() for r in caplog.records)


def test_a_key_of_no_known_shape_is_redacted_too(gateway_url, catalog, org, monkeypatch):
    azure_style = "8f14e45fceea167a5a36dedd4bea2543"
    monkeypatch.setenv("MOCK_UPSTREAM_API_KEY", azure_style)
    with pytest.raises(openai.BadRequestError) as rejected:
        sdk(gateway_url, org).chat.completions.create(model="mock:echoes-key", messages=HELLO)
    assert azure_style not in rejected.value.response.text
