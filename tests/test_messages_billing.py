"""Money on /v1/messages, to the picodollar: the same token counts cost the same as on
/v1/chat/completions, Anthropic's cache writes are priced at cache_write_per_mtok (the input
price without one), and count_tokens is neither held nor charged."""

from decimal import Decimal

import openai
import pytest

from billing import charging
from billing.models import UsageRecord
from gateway.upstream.adapters import Usage
from gateway.upstream.adapters.anthropic_format import anthropic_usage, usage_from_anthropic
from tests.billing_helpers import OK_COST, balance, booked
from tests.messages_support import HELLO, claude_sdk, upstreams  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)


def test_anthropic_usage_maps_to_the_gateways_buckets_and_back():
    # Anthropic's input_tokens leaves out the cache's tokens; the gateway's prompt_tokens has them.
    usage = usage_from_anthropic({"input_tokens": 12, "cache_read_input_tokens": 100,
                                  "cache_creation_input_tokens": 10, "output_tokens": 3})
    assert (usage.prompt_tokens, usage.cached_tokens, usage.cache_write_tokens, usage.completion_tokens) == (
        122, 100, 10, 3)
    assert anthropic_usage(usage) == {"input_tokens": 12, "cache_read_input_tokens": 100,
                                      "cache_creation_input_tokens": 10, "output_tokens": 3}
    # A stream's message_delta: cumulative, and what it leaves out stays as message_start said.
    assert usage_from_anthropic({"output_tokens": 9}, previous=usage) == Usage(122, 9, 100, 0, "provider", 10)
    assert anthropic_usage(Usage(8, 3, cached_tokens=2)) == {"input_tokens": 6, "cache_read_input_tokens": 2,
                                                            "cache_creation_input_tokens": 0, "output_tokens": 3}


def test_cost_of_prices_each_bucket_to_the_picodollar():
    prices = charging.Prices(Decimal("3"), Decimal("15"), Decimal("0.3"), Decimal("3.75"))
    # 12 uncached at 3, 100 read at 0.3, 10 written at 3.75, 3 out at 15: 148.5 USD per million.
    assert charging.cost_of(prices, 122, 3, 100, 10) == Decimal("0.0001485")
    # Without a cache-write price the written tokens cost the input price, as before the bucket.
    unpriced = charging.Prices(Decimal("3"), Decimal("15"), Decimal("0.3"))
    assert charging.cost_of(unpriced, 122, 3, 100, 10) == Decimal("0.000141")
    # Buckets never count a prompt token twice.
    assert charging.cost_of(prices, 5, 0, 4, 10) == (4 * Decimal("0.3") + 1 * Decimal("3.75")) / 1_000_000


@pytest.mark.parametrize("model, cost", [("claude:claude-cached", Decimal("0.0001485")),
                                         ("claude:claude-no-write-price", Decimal("0.000141"))])
def test_cache_writes_are_billed_at_their_price(claude_sdk, upstreams, model, cost):
    raw = claude_sdk.messages.with_raw_response.create(model=model, max_tokens=10, messages=HELLO)
    usage = raw.parse().usage
    assert (usage.input_tokens, usage.cache_read_input_tokens, usage.cache_creation_input_tokens) == (12, 100, 10)
    record = booked(raw.headers["x-request-id"])
    assert (record.prompt_tokens, record.cached_tokens, record.cache_write_tokens) == (122, 100, 10)
    assert record.cost == cost and Decimal(raw.headers["x-mixgateway-cost-usd"]) == cost
    expected_price = Decimal("3.75") if model.endswith("cached") else None
    assert record.cache_write_per_mtok == expected_price


def test_a_streamed_cache_write_is_billed_the_same(claude_sdk, upstreams):
    with claude_sdk.messages.stream(model="claude:claude-cached", max_tokens=10, messages=HELLO) as stream:
        message = stream.get_final_message()
        request_id = stream.response.headers["x-request-id"]
    assert message.usage.cache_creation_input_tokens == 10 and message.usage.cache_read_input_tokens == 100
    assert booked(request_id).cost == Decimal("0.0001485")


@pytest.mark.parametrize("model, tokens, cost", [("mock:ok", (8, 3), OK_COST),  # at 0.27 / 1.10
                                                 ("claude:claude-ok", (12, 3), Decimal("0.000081"))])  # at 3 / 15
def test_the_same_tokens_cost_the_same_on_chat_and_messages(live_server, api_key, claude_sdk, upstreams, model,
                                                            tokens, cost):
    chat = openai.OpenAI(base_url=f"{live_server.url}/v1", api_key=api_key, max_retries=0)
    by_chat = chat.chat.completions.with_raw_response.create(model=model, messages=HELLO, max_tokens=10)
    by_messages = claude_sdk.messages.with_raw_response.create(model=model, max_tokens=10, messages=HELLO)
    records = [booked(raw.headers["x-request-id"]) for raw in (by_chat, by_messages)]
    assert [(r.prompt_tokens, r.completion_tokens) for r in records] == [tokens, tokens]
    assert [r.cost for r in records] == [cost, cost]
    assert [Decimal(raw.headers["x-mixgateway-cost-usd"]) for raw in (by_chat, by_messages)] == [cost, cost]


def test_count_tokens_asks_anthropic_and_estimates_elsewhere(claude_sdk, upstreams, org):
    before = balance(org)
    asked = claude_sdk.messages.count_tokens(model="claude:claude-ok", messages=HELLO, system="Be brief.",
                                             extra_headers={"anthropic-beta": "token-counting-2024-11-01"})
    assert asked.input_tokens == 42
    sent = upstreams[1].requests[-1]
    assert sent["path"] == "/v1/messages/count_tokens" and sent["body"]["model"] == "claude-ok"
    assert sent["body"]["system"] == "Be brief." and sent["headers"]["anthropic-beta"] == "token-counting-2024-11-01"
    # Elsewhere: the estimate the gateway bills by, the same the built-in model counts.
    estimated = claude_sdk.messages.count_tokens(model="demo:echo", messages=HELLO, system="Be brief.")
    raw = claude_sdk.messages.with_raw_response.create(model="demo:echo", max_tokens=10, messages=HELLO,
                                                       system="Be brief.")
    assert estimated.input_tokens == raw.parse().usage.input_tokens > 0
    assert claude_sdk.messages.count_tokens(model="mock:ok", messages=HELLO).input_tokens > 0
    # Only the message was charged: the counts made no record and moved no money.
    record = booked(raw.headers["x-request-id"])
    assert UsageRecord.objects.count() == 1 and balance(org) == before - record.cost
