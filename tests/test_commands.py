"""Operator commands: create_tenant and create_api_key print exactly one thing, store
what they should, and the printed key works against the live gateway."""

import hashlib
import io
import re

import pytest
import requests
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from console.tenancy.models import Membership, Organization
from gateway.models import ApiKey

pytestmark = pytest.mark.django_db

SECRET = re.compile(r"^sk-[A-Za-z0-9_-]{40,}$")


def run(*args, **options) -> str:
    out, err = io.StringIO(), io.StringIO()
    call_command(*args, stdout=out, stderr=err, **options)
    assert err.getvalue() == ""
    return out.getvalue()


# -- create_tenant --------------------------------------------------------------------------


def test_create_tenant_prints_only_the_slug_and_makes_the_owner():
    out = run("create_tenant", "Acme Robotics", "--owner", "Ops@Acme.example")
    assert out == "acme-robotics\n"
    org = Organization.objects.get(slug="acme-robotics")
    assert org.name == "Acme Robotics"
    user = get_user_model().objects.get(email__iexact="ops@acme.example")
    assert not user.has_usable_password()
    membership = Membership.objects.get(organization=org)
    assert membership.user == user and membership.role == Membership.Role.OWNER


def test_create_tenant_reuses_an_existing_user():
    run("create_tenant", "First", "--owner", "dana@example.com")
    run("create_tenant", "Second", "--owner", "DANA@example.com")
    assert get_user_model().objects.filter(email__iexact="dana@example.com").count() == 1
    user = get_user_model().objects.get(email__iexact="dana@example.com")
    assert set(Membership.objects.filter(user=user).values_list("organization__slug", "role")) == {
        ("first", "owner"), ("second", "owner"),
    }


def test_the_same_name_twice_gets_a_different_slug():
    first = run("create_tenant", "Acme", "--owner", "a@acme.example").strip()
    second = run("create_tenant", "Acme", "--owner", "b@acme.example").strip()
    assert first == "acme" and second != first and second.startswith("acme")
    assert Organization.objects.filter(name="Acme").count() == 2


def test_a_name_without_letters_still_gets_a_slug():
    slug = run("create_tenant", "日本", "--owner", "x@example.com").strip()
    assert slug and re.fullmatch(r"[a-z0-9-]+", slug)
    assert Organization.objects.get(slug=slug).name == "日本"


@pytest.mark.parametrize("email", ["not-an-email", "a@", "@example.com", "a b@example.com", ""])
def test_create_tenant_rejects_a_bad_email(email):
    with pytest.raises(CommandError, match="--owner"):
        run("create_tenant", "Acme", "--owner", email)
    assert not Organization.objects.exists()
    assert not get_user_model().objects.exists()


def test_create_tenant_rejects_an_empty_name():
    with pytest.raises(CommandError, match="NAME"):
        run("create_tenant", "   ", "--owner", "a@example.com")
    assert not Organization.objects.exists()


def test_create_tenant_requires_an_owner():
    with pytest.raises(CommandError, match="--owner"):
        run("create_tenant", "Acme")


# -- create_api_key -------------------------------------------------------------------------


@pytest.fixture
def tenant():
    return run("create_tenant", "Acme", "--owner", "ops@acme.example").strip()


def test_create_api_key_prints_only_the_secret_and_stores_only_its_hash(tenant):
    out = run("create_api_key", "--tenant", tenant, "--name", "ci")
    assert out.endswith("\n") and out.count("\n") == 1
    secret = out.strip()
    assert SECRET.match(secret)

    key = ApiKey.objects.get()
    assert key.organization.slug == tenant and key.name == "ci"
    assert key.secret_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert key.prefix == secret[:10] and len(key.prefix) == 10
    for field in ApiKey._meta.concrete_fields:
        value = field.value_from_object(key)
        assert secret not in str(value), f"the secret is stored in ApiKey.{field.name}"
        assert secret[10:30] not in str(value), f"part of the secret is stored in ApiKey.{field.name}"


def test_every_key_is_new(tenant):
    secrets = {run("create_api_key", "--tenant", tenant).strip() for _ in range(3)}
    assert len(secrets) == 3
    assert ApiKey.objects.count() == 3
    assert set(ApiKey.objects.values_list("name", flat=True)) == {""}


def test_create_api_key_rejects_an_unknown_tenant(tenant):
    with pytest.raises(CommandError, match="no-such-org"):
        run("create_api_key", "--tenant", "no-such-org")
    assert not ApiKey.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_the_printed_key_works_against_the_gateway(catalog, gateway_url):
    slug = run("create_tenant", "Acme", "--owner", "ops@acme.example").strip()
    run("credit", "--tenant", slug, "5")
    secret = run("create_api_key", "--tenant", slug, "--name", "live").strip()
    resp = requests.post(
        f"{gateway_url}/chat/completions",
        headers={"Authorization": f"Bearer {secret}"},
        json={"model": "demo:echo", "messages": [{"role": "user", "content": "ping pong"}]},
        timeout=10,
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["choices"][0]["message"]["content"] == "ping pong"
    assert resp.json()["model"] == "demo:echo"

    other = run("create_api_key", "--tenant", slug).strip()
    listed = requests.get(f"{gateway_url}/models", headers={"Authorization": f"Bearer {other}"}, timeout=10)
    assert listed.status_code == 200 and "demo:echo" in {m["id"] for m in listed.json()["data"]}
