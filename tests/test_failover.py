"""Answers keep coming when a provider fails: retries, deployments, fallbacks, cooldowns."""

from decimal import Decimal

import openai
import pytest

from gateway.routing.catalog_loader import load_catalog
from gateway.routing.resilience import reset_cooldowns
from tests.billing_helpers import booked
from tests.conftest import catalog_yaml

pytestmark = pytest.mark.django_db(transaction=True)
HELLO = [{"role": "user", "content": "Say hello"}]


@pytest.fixture(autouse=True)
def _fresh_cooldowns(settings):
    settings.GATEWAY_RETRY_BACKOFF_SECONDS = 0.01
    reset_cooldowns()
    yield
    reset_cooldowns()


def with_routing(upstream, yaml_tail: str) -> None:
    load_catalog(catalog_yaml(upstream.base_url) + yaml_tail)


def routed_catalog(upstream, deployments: str, fallbacks: str = "[]") -> None:
    root = upstream.base_url.removesuffix("/v1")
    with_routing(upstream, f"""  routed:
    protocol: openai
    base_url: {upstream.base_url}
    api_key_env: MOCK_UPSTREAM_API_KEY
    models:
      ok:
        input_per_mtok: "0.27"
        output_per_mtok: "1.10"
        deployments: {deployments.replace("ROOT", root)}
        fallbacks: {fallbacks}
      fail-400:
        input_per_mtok: "0.27"
        output_per_mtok: "1.10"
        fallbacks: [demo:echo]
""")


def paths(upstream) -> list[str]:
    return [r["path"] for r in upstream.requests]


def test_a_failing_deployment_hands_over_to_the_next(client, catalog):
    routed_catalog(catalog, "[{base_url: ROOT/down-500/v1, weight: 1000000000}, {base_url: ROOT/v1, weight: 1}]")
    raw = client.chat.completions.with_raw_response.create(model="routed:ok", messages=HELLO)
    assert raw.parse().choices[0].message.content == "Hello from upstream"
    assert raw.headers["x-mixgateway-served-by"] == "routed:ok"
    assert paths(catalog).count("/down-500/v1/chat/completions") == 2  # tried, retried once, then moved on
    assert paths(catalog)[-1] == "/v1/chat/completions"


def test_when_every_deployment_is_down_the_fallback_answers_and_sets_the_price(client, catalog):
    routed_catalog(catalog, "[{base_url: ROOT/down-503/v1}, {base_url: ROOT/down-429/v1}]", "[demo:echo]")
    raw = client.chat.completions.with_raw_response.create(model="routed:ok", messages=HELLO)
    answer = raw.parse()
    assert answer.choices[0].message.content == "Say hello"  # demo:echo's answer
    assert answer.model == "routed:ok"  # the response echoes what the caller sent
    assert raw.headers["x-mixgateway-served-by"] == "demo:echo"
    record = booked(raw.headers["x-request-id"])
    assert record.model == "demo:echo"
    assert (record.input_per_mtok, record.output_per_mtok) == (Decimal("0.1"), Decimal("0.2"))


def test_streams_fail_over_before_the_first_byte(client, catalog):
    routed_catalog(catalog, "[{base_url: ROOT/down-502/v1}]", "[mock:ok]")
    chunks = list(client.chat.completions.create(model="routed:ok", messages=HELLO, stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Hello from upstream"


def test_the_callers_own_mistake_is_not_retried_elsewhere(client, catalog):
    routed_catalog(catalog, "[{base_url: ROOT/v1}]")
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="routed:fail-400", messages=HELLO)
    assert len(catalog.requests) == 1


def test_a_deployment_that_keeps_failing_is_cooled_down(client, catalog, settings):
    settings.GATEWAY_RETRIES = 0
    settings.GATEWAY_COOLDOWN_AFTER_FAILURES = 2
    routed_catalog(catalog, "[{base_url: ROOT/down-500/v1, weight: 1000000000}, {base_url: ROOT/v1, weight: 1}]")
    for _ in range(2):
        client.chat.completions.create(model="routed:ok", messages=HELLO)
    catalog.requests.clear()
    client.chat.completions.create(model="routed:ok", messages=HELLO)
    assert paths(catalog) == ["/v1/chat/completions"]  # the cooled-down deployment was skipped


def test_when_everything_fails_the_caller_gets_the_last_error(client, catalog):
    routed_catalog(catalog, "[{base_url: ROOT/down-500/v1}]")
    with pytest.raises(openai.InternalServerError) as err:
        client.chat.completions.create(model="routed:ok", messages=HELLO)
    assert err.value.status_code == 502 and err.value.code == "upstream_error"


def test_an_alias_routes_to_its_model(client, catalog):
    with_routing(catalog, "aliases:\n  fast: demo:echo\n")
    answer = client.chat.completions.create(model="fast", messages=HELLO)
    assert answer.model == "fast" and answer.choices[0].message.content == "Say hello"
