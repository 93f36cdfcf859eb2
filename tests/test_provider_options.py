"""protocol: openai provider options (auth_header, headers, query_params): Azure OpenAI and
other compatible servers reached without code, against the real loopback OpenAI mock."""

import pytest

from gateway.routing.catalog_loader import CatalogError, load_catalog, parse_catalog
from gateway.models import Provider
from tests.conftest import UPSTREAM_SECRET

pytestmark = pytest.mark.django_db(transaction=True)
HELLO = [{"role": "user", "content": "Say hello"}]


def azure_catalog(upstream_url: str) -> str:
    # An unquoted api-version is a date to YAML: it must still be sent as written.
    return f"""
providers:
  azure:
    protocol: openai
    base_url: {upstream_url}
    api_key_env: MOCK_UPSTREAM_API_KEY
    auth_header: api-key
    headers: {{x-ms-client-request-id: mixgateway, X-Tenant: alpha}}
    query_params: {{api-version: 2024-10-21}}
    models:
      ok: {{input_per_mtok: "0.27", output_per_mtok: "1.10"}}
"""


@pytest.fixture
def azure(catalog):
    load_catalog(azure_catalog(catalog.base_url))
    return catalog


@pytest.mark.parametrize("stream", [False, True])
def test_the_key_goes_in_the_named_header_with_the_query_and_headers(client, azure, stream):
    answer = client.chat.completions.create(model="azure:ok", messages=HELLO, stream=stream)
    if stream:
        assert "".join(c.choices[0].delta.content or "" for c in answer if c.choices) == "Hello from upstream"
    else:
        assert answer.choices[0].message.content == "Hello from upstream"
    sent = azure.requests[-1]
    assert sent["path"] == "/v1/chat/completions?api-version=2024-10-21"
    assert sent["headers"]["api-key"] == UPSTREAM_SECRET
    assert "authorization" not in sent["headers"]
    assert (sent["headers"]["x-ms-client-request-id"], sent["headers"]["x-tenant"]) == ("mixgateway", "alpha")


def test_embeddings_use_the_options_too(client, azure):
    client.embeddings.create(model="azure:ok", input="hello")
    sent = azure.requests[-1]
    assert sent["path"] == "/v1/embeddings?api-version=2024-10-21" and sent["headers"]["api-key"] == UPSTREAM_SECRET


def test_without_options_the_key_is_a_bearer_token(client, catalog):
    client.chat.completions.create(model="mock:ok", messages=HELLO)
    sent = catalog.requests[-1]
    assert sent["path"] == "/v1/chat/completions"
    assert sent["headers"]["authorization"] == f"Bearer {UPSTREAM_SECRET}" and "api-key" not in sent["headers"]


def test_the_options_are_stored_on_the_provider(azure):
    provider = Provider.objects.get(slug="azure")
    assert (provider.auth_header, provider.headers, provider.query_params) == (
        "api-key", {"x-ms-client-request-id": "mixgateway", "X-Tenant": "alpha"}, {"api-version": "2024-10-21"})


@pytest.mark.parametrize("option, error", [
    ("auth_header: 'bad header'", "auth_header: 'bad header' is not an HTTP header name"),
    ("headers: {Content-Type: text/plain}", "headers.Content-Type: set by the gateway itself"),
    ("headers: {Authorization: Bearer x}", "headers.Authorization: set by the gateway itself"),
    ("auth_header: api-key\n    headers: {API-Key: x}", "headers.API-Key: set by the gateway itself"),
    ("headers: {X-Evil: \"a\\r\\nHost: b\"}", "headers.X-Evil: must be one line"),
    ("headers: [x]", "headers: must be a mapping"),
    ("query_params: {api-version: [1]}", "query_params.api-version: must be a string"),
])
def test_bad_options_are_refused_with_their_place(option, error):
    text = f"""
providers:
  azure:
    protocol: openai
    base_url: https://example.openai.azure.com/openai/v1
    {option}
    models: {{}}
"""
    with pytest.raises(CatalogError, match=f"providers.azure.{error}"):
        parse_catalog(text)


def test_the_options_belong_to_the_openai_protocol_only():
    text = """
providers:
  google:
    protocol: gemini
    base_url: https://generativelanguage.googleapis.com/v1beta
    query_params: {alt: json}
    models: {}
"""
    with pytest.raises(CatalogError, match="providers.google.query_params: only for protocol openai"):
        parse_catalog(text)
