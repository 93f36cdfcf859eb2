"""`make run`'s demo: a login that works, a key that answers, a balance to spend."""

from io import StringIO

import pytest
from django.core.management import call_command
from django.test import Client

from billing.ledger import balance_of
from console.tenancy.models import Organization
from gateway.keys import find_key

pytestmark = pytest.mark.django_db


def run_demo() -> str:
    out = StringIO()
    call_command("setup_demo", stdout=out)
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
