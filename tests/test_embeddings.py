"""POST /v1/embeddings through the official SDK, billed on input tokens."""

from decimal import Decimal

import openai
import pytest

from tests.billing_helpers import booked

pytestmark = pytest.mark.django_db(transaction=True)


def test_it_answers_openais_embedding_list_and_bills_input_tokens(client, catalog):
    raw = client.embeddings.with_raw_response.create(model="mock:ok", input=["first text", "second text"])
    answer = raw.parse()
    assert answer.model == "mock:ok"
    assert [d.index for d in answer.data] == [0, 1] and answer.data[0].embedding == [0.1, 0.2, 0.3]
    assert answer.usage.prompt_tokens == 10
    assert catalog.requests[-1]["path"] == "/v1/embeddings"
    assert catalog.requests[-1]["body"]["model"] == "ok"
    assert raw.headers["x-mixgateway-cost-usd"] == "0.0000027"  # 10 tokens at 0.27 per million
    record = booked(raw.headers["x-request-id"])
    assert (record.prompt_tokens, record.completion_tokens, record.cost) == (10, 0, Decimal("0.0000027"))


def test_the_demo_model_embeds_offline_and_deterministically(client):
    first = client.embeddings.create(model="demo:echo", input="hello world")
    again = client.embeddings.create(model="demo:echo", input="hello world")
    assert first.data[0].embedding == again.data[0].embedding and len(first.data[0].embedding) == 8
    assert first.usage.prompt_tokens == 2


@pytest.mark.parametrize("body, code", [
    ({"model": "demo:echo"}, "missing_required_parameter"),
    ({"model": "demo:echo", "input": ""}, "invalid_value"),
    ({"model": "demo:echo", "input": [1.5]}, "invalid_type"),
    ({"input": "x"}, "missing_required_parameter"),
])
def test_it_rejects_bad_input_clearly(client, body, code):
    with pytest.raises(openai.BadRequestError) as err:
        client.post("/embeddings", body=body, cast_to=object)
    assert err.value.code == code


def test_a_chat_only_model_says_so(client, catalog):
    from gateway.routing.catalog_loader import load_catalog
    from tests.anthropic_mock import AnthropicMock
    from tests.conftest import catalog_yaml

    with AnthropicMock() as claude:
        load_catalog(catalog_yaml(catalog.base_url) + f"""  claude:
    protocol: anthropic
    base_url: {claude.base_url}
    models:
      claude-ok: {{input_per_mtok: "3", output_per_mtok: "15"}}
""")
        with pytest.raises(openai.BadRequestError) as err:
            client.embeddings.create(model="claude:claude-ok", input="hi")
    assert err.value.code == "model_not_supported"
