"""The models page: every catalog model with its exact prices and whether it can answer
now, the reason when it cannot, usable models first."""

import pytest
from django.test import Client

from gateway.routing.catalog_loader import load_catalog
from gateway.models import CatalogModel, Provider
from gateway.routing.resilience import cooldowns
from gateway.upstream.upstream_keys import encrypt
from tests.conftest import catalog_yaml

pytestmark = pytest.mark.django_db

UNCONFIGURED = """
providers:
  openai:
    protocol: openai
    base_url: https://api.openai.example/v1
    api_key_env: MIXGATEWAY_TEST_UNSET_KEY
    models:
      gpt-4o-mini: {input_per_mtok: "0.15", output_per_mtok: "0.60"}
      text-embedding-3-small: {input_per_mtok: "0.02", output_per_mtok: "0"}
"""


def rows_of(resp) -> dict:
    return {m["public_id"]: m for m in resp.context["models"]}


def test_it_lists_models_with_exact_prices(as_bob, catalog):
    CatalogModel.objects.filter(name="ok").update(cached_input_per_mtok="0.07", context_window=64000)
    resp = as_bob.get("/models/")
    assert resp.status_code == 200
    row = rows_of(resp)["mock:ok"]
    assert {k: row[k] for k in ("input", "output", "cached", "max_output_tokens", "context_window")} == {
        "input": "0.27", "output": "1.1", "cached": "0.07", "max_output_tokens": 4096, "context_window": 64000}
    assert row["availability"].status == "available" and row["surface"] == "Chat"
    echo = rows_of(resp)["demo:echo"]
    assert (echo["input"], echo["output"], echo["cached"]) == ("0.1", "0.2", None)
    page = resp.content.decode()
    assert 'data-copy="demo:echo"' in page and "<code>mock:ok</code>" in page


def test_a_provider_without_a_key_is_marked_with_the_reason(as_bob, catalog, monkeypatch):
    monkeypatch.delenv("MIXGATEWAY_TEST_UNSET_KEY", raising=False)
    load_catalog(UNCONFIGURED)
    resp = as_bob.get("/models/")
    rows = rows_of(resp)
    mini = rows["openai:gpt-4o-mini"]["availability"]
    assert mini.status == "not_configured" and not mini.usable
    assert "The provider 'openai' is not configured" in mini.reason
    assert rows["openai:text-embedding-3-small"]["surface"] == "Embeddings"
    page = resp.content.decode()
    assert 'data-model="openai:gpt-4o-mini" data-availability="not_configured"' in page
    assert "Provider not configured" in page and "MIXGATEWAY_TEST_UNSET_KEY" not in page
    order = [m["availability"].usable for m in resp.context["models"]]
    assert order == sorted(order, reverse=True), "usable models come first"


def test_a_key_stored_in_the_admin_counts_as_configured(as_bob, catalog):
    load_catalog(UNCONFIGURED)
    Provider.objects.filter(slug="openai").update(api_key_env="", api_key_encrypted=encrypt("sk-upstream-1234"))
    assert rows_of(as_bob.get("/models/"))["openai:gpt-4o-mini"]["availability"].status == "available"


def test_a_cooled_down_model_is_usable_but_says_so(as_bob, catalog, settings):
    settings.GATEWAY_COOLDOWN_AFTER_FAILURES = 1
    route_id = f"mock:ok@{catalog.base_url.rstrip('/')}"
    cooldowns().failed(route_id)
    availability = rows_of(as_bob.get("/models/"))["mock:ok"]["availability"]
    assert availability.status == "cooling_down" and availability.usable
    assert "cooling down" in availability.reason


def test_disabled_models_are_listed_last_as_disabled(as_bob, catalog):
    CatalogModel.objects.filter(name="fail-500").update(enabled=False)
    Provider.objects.filter(slug="demo").update(enabled=False)
    resp = as_bob.get("/models/")
    rows = rows_of(resp)
    assert rows["mock:fail-500"]["availability"].status == "disabled"
    assert rows["demo:echo"]["availability"].status == "disabled"
    assert list(rows)[-2:] in (["demo:echo", "mock:fail-500"], ["mock:fail-500", "demo:echo"])


def test_without_a_catalog_it_says_so(as_bob):
    assert "No models are in this gateway's catalog yet" in as_bob.get("/models/").content.decode()


def test_it_needs_a_login():
    resp = Client().get("/models/")
    assert resp.status_code == 302 and "/accounts/login/" in resp["Location"]


def test_outside_any_organization_it_sends_people_to_make_one(db):
    from tests.console.conftest import logged_in, person

    resp = logged_in(person("nobody@example.com")).get("/models/")
    assert resp.status_code == 302 and resp["Location"] == "/orgs/new/"


def test_it_shows_each_models_surfaces_and_every_price_column(as_bob, catalog, monkeypatch):
    monkeypatch.delenv("MIXGATEWAY_TEST_UNSET_KEY", raising=False)
    load_catalog(UNCONFIGURED)
    resp = as_bob.get("/models/")
    rows = rows_of(resp)
    assert [label for label, _ in rows["openai:gpt-4o-mini"]["surfaces"]] == ["Chat", "Responses", "Messages"]
    assert [label for label, _ in rows["openai:text-embedding-3-small"]["surfaces"]] == ["Embeddings"]
    page = resp.content.decode()
    for heading in ("Input", "Cached input", "Cache write", "Output", "Max output tokens", "Context window"):
        assert f">{heading}</th>" in page
    assert 'data-surface="messages"' in page and 'data-surface="embeddings"' in page


def test_the_cache_write_price_shows_or_says_it_is_the_input_price(as_bob, catalog):
    load_catalog(catalog_yaml(catalog.base_url) + """  claude:
    protocol: anthropic
    base_url: http://127.0.0.1:9/v1
    models:
      priced: {input_per_mtok: "3", output_per_mtok: "15", cache_write_per_mtok: "3.75"}
      unpriced: {input_per_mtok: "3", output_per_mtok: "15"}
""")
    rows = rows_of(as_bob.get("/models/"))
    assert rows["claude:priced"]["cache_write"] == "3.75"
    assert rows["claude:unpriced"]["cache_write"] is None  # the page says "as input"
