"""The quickstart (the models page has tests/console/test_models_page.py)."""

import pytest
from django.test import Client

from gateway.keys.api_keys import mint_api_key, playground_key, revoke_api_key

pytestmark = pytest.mark.django_db


def test_quickstart_fills_in_the_base_url_and_a_key_prefix(as_alice, org, catalog):
    _, old = mint_api_key(org, name="old")
    key, secret = mint_api_key(org, name="newest")
    page = as_alice.get("/quickstart/").content.decode()
    assert "http://testserver/v1/chat/completions" in page
    assert 'base_url="http://testserver/v1"' in page
    assert f"{key.prefix}..." in page
    assert secret not in page and secret[:14] not in page and old[:14] not in page
    assert '"model": "demo:echo"' in page.replace("&quot;", '"')


def test_quickstart_uses_the_public_base_url(as_alice, settings):
    settings.PUBLIC_BASE_URL = "https://llm.example.com/"
    page = as_alice.get("/quickstart/").content.decode()
    assert "https://llm.example.com/v1/chat/completions" in page and "testserver" not in page


def test_quickstart_never_shows_revoked_or_playground_keys(as_alice, alice, org):
    key, _ = mint_api_key(org, name="gone")
    revoke_api_key(key)
    hidden = playground_key(org, alice)
    resp = as_alice.get("/quickstart/")
    page = resp.content.decode()
    assert key.prefix not in page and hidden.prefix not in page
    assert "no API key yet" in page and 'href="/keys/"' in page


def test_quickstart_shows_only_the_own_organizations_key(as_charlie, org):
    key, _ = mint_api_key(org, name="alpha")
    page = as_charlie.get("/quickstart/").content.decode()
    assert key.prefix not in page and "no API key yet" in page


@pytest.mark.parametrize("url", ["/models/", "/quickstart/"])
def test_pages_need_a_login(url):
    resp = Client().get(url)
    assert resp.status_code == 302 and "/accounts/login/" in resp["Location"]
