"""Upstream keys pasted into the admin are stored encrypted and used, never shown back."""

import pytest
from django.test import Client

from gateway.routing.catalog import forget_routes
from gateway.models import Provider

pytestmark = pytest.mark.django_db(transaction=True)
PASTED = "sk-pasted-upstream-key-abcdef123456"


def test_a_key_pasted_in_the_admin_is_encrypted_and_used(admin_client, client, catalog, monkeypatch):
    provider = Provider.objects.get(slug="mock")
    monkeypatch.delenv("MOCK_UPSTREAM_API_KEY")
    form = {"slug": "mock", "protocol": "openai", "base_url": provider.base_url, "api_key_env": "",
            "timeout_seconds": "2", "enabled": "on", "api_key": PASTED}
    resp = admin_client.post(f"/admin/gateway/provider/{provider.pk}/change/", form)
    assert resp.status_code == 302
    provider.refresh_from_db()
    assert provider.api_key_encrypted and PASTED not in provider.api_key_encrypted
    forget_routes()
    client.chat.completions.create(model="mock:ok", messages=[{"role": "user", "content": "hi"}])
    assert catalog.requests[-1]["headers"]["authorization"] == f"Bearer {PASTED}"
    page = admin_client.get(f"/admin/gateway/provider/{provider.pk}/change/").content.decode()
    assert PASTED not in page and "••••3456" in page


def test_a_stored_key_from_another_secret_is_not_used(admin_client, settings):
    from gateway.upstream import upstream_keys

    settings.UPSTREAM_KEYS_ENCRYPTION_KEY = "one"
    ciphertext = upstream_keys.encrypt(PASTED)
    settings.UPSTREAM_KEYS_ENCRYPTION_KEY = "another"
    upstream_keys._plain.clear()
    assert upstream_keys.decrypt(ciphertext) is None


def test_the_admin_needs_staff(db):
    assert Client().get("/admin/gateway/provider/").status_code == 302
