"""/v1/models offers only what can answer, and money messages print plain decimals."""

from decimal import Decimal

import openai
import pytest

from billing.ledger import adjust
from gateway.routing.catalog_loader import load_catalog

pytestmark = pytest.mark.django_db(transaction=True)

UNCONFIGURED = """
providers:
  nokey:
    protocol: openai
    base_url: http://127.0.0.1:9/v1
    api_key_env: MIXGATEWAY_TEST_KEY_NOBODY_SET
    models:
      chat: {input_per_mtok: "1", output_per_mtok: "2"}
"""


def test_models_of_unconfigured_providers_are_left_out(client, monkeypatch):
    monkeypatch.delenv("MIXGATEWAY_TEST_KEY_NOBODY_SET", raising=False)
    load_catalog(UNCONFIGURED)
    listed = {m.id for m in client.models.list()}
    assert "nokey:chat" not in listed
    monkeypatch.setenv("MIXGATEWAY_TEST_KEY_NOBODY_SET", "sk-now-set")
    assert "nokey:chat" in {m.id for m in client.models.list()}


def test_insufficient_quota_prints_plain_decimals(client, org):
    adjust(org.pk, Decimal("-99.9999991"), note="leave 0.0000009")
    with pytest.raises(openai.RateLimitError) as refused:
        client.chat.completions.create(model="mock:ok", messages=[{"role": "user", "content": "hi"}])
    message = refused.value.body["message"]
    assert "0.0000009 USD is available" in message and "E-" not in message
    assert "00000 USD" not in message  # no trailing zeros from the reservation's scale
