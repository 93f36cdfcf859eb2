"""`make run`'s demo: a login that works, a key that answers, a balance to spend."""

import tempfile
from io import StringIO

import pytest
from django.core.management import call_command
from django.test import Client

from billing.ledger import balance_of
from console.tenancy.models import Organization
from gateway.keys.api_keys import find_key

pytestmark = pytest.mark.django_db


def run_demo() -> str:
    out = StringIO()
    # Never the checkout's var/: that is where a developer's own `make run` keeps its login.
    call_command("setup_demo", "--state-dir", tempfile.mkdtemp(), stdout=out)
    return out.getvalue()


def test_it_prints_a_working_login_and_key(catalog):
    out = run_demo()
    password = out.split("login demo@example.com / ")[1].split()[0]
    secret = out.split("API key   ")[1].split()[0]
    assert find_key(secret) is not None
    browser = Client()
    resp = browser.post("/accounts/login/", {"login": "demo@example.com", "password": password})
    assert resp.status_code == 302 and resp["Location"] == "/dashboard/"
    assert balance_of(Organization.objects.get(slug="demo").pk) == 10


def test_running_it_again_keeps_one_organization_and_one_credit(catalog):
    run_demo()
    run_demo()
    assert Organization.objects.filter(slug="demo").count() == 1
    assert balance_of(Organization.objects.get(slug="demo").pk) == 10


def run_demo_in(state_dir) -> tuple[str, str]:
    out = StringIO()
    call_command("setup_demo", "--state-dir", str(state_dir), stdout=out)
    text = out.getvalue()
    return text.split("login demo@example.com / ")[1].split()[0], text.split("API key   ")[1].split()[0]


def test_a_restart_prints_the_same_login_and_key(catalog, tmp_path):
    first = run_demo_in(tmp_path)
    assert run_demo_in(tmp_path) == first
    org = Organization.objects.get(slug="demo")
    assert org.api_keys.filter(revoked_at__isnull=True).count() == 1
    assert (tmp_path / "demo-api-key").stat().st_mode & 0o777 == 0o600


def test_a_revoked_demo_key_is_replaced_and_never_two_live_ones(catalog, tmp_path):
    from gateway.keys.api_keys import revoke_api_key

    _, secret = run_demo_in(tmp_path)
    org = Organization.objects.get(slug="demo")
    revoke_api_key(org.api_keys.get())
    _, replacement = run_demo_in(tmp_path)
    assert replacement != secret and find_key(replacement) is not None
    assert org.api_keys.filter(revoked_at__isnull=True).count() == 1
    (tmp_path / "demo-api-key").unlink()  # the file lost: a new key, the old one revoked
    _, third = run_demo_in(tmp_path)
    assert third != replacement
    assert list(org.api_keys.filter(revoked_at__isnull=True).values_list("name", flat=True)) == ["make run"]
