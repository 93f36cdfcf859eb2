"""What every console page shares: navigation that follows the role, error pages in the
layout (and JSON envelopes for programs), the organization switcher, the favicon, the
product's name in emails and the "ago" filter. In `org` (Alpha Labs) alice is the owner,
dave an admin and bob a member; charlie owns Beta Corp and is an outsider."""

import re
from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied
from django.template import Context, Template
from django.test import Client
from django.utils import timezone

from console.tenancy.actions import create_organization
from console.tenancy.models import Membership

pytestmark = pytest.mark.django_db


def nav_of(page: str) -> list[str]:
    nav = re.search(r'<nav class="sidenav".*?</nav>', page, re.S).group(0)
    return re.findall(r'<a href="[^"]+"[^>]*>([^<]+)</a>', nav)


def test_owners_see_every_section(as_alice):
    assert nav_of(as_alice.get("/dashboard/").content.decode()) == [
        "Dashboard", "API keys", "Usage", "Billing", "Alerts", "Models", "Quickstart", "Playground",
        "Stored responses", "Members", "Audit log"]


@pytest.mark.parametrize("browser", ["as_dave", "as_bob"])
def test_others_see_no_link_that_would_answer_403(request, browser):
    client = request.getfixturevalue(browser)
    links = re.findall(r'<nav class="sidenav".*?</nav>', client.get("/dashboard/").content.decode(), re.S)[0]
    assert "Billing" not in links and "Audit log" not in links
    for href in re.findall(r'href="([^"]+)"', links):
        assert client.get(href).status_code == 200, href


def test_the_current_section_is_marked(as_alice):
    page = as_alice.get("/usage/").content.decode()
    assert re.search(r'<a href="/usage/" aria-current="page">Usage</a>', page)
    assert page.count('aria-current="page"') == 1


def test_a_refusal_is_a_page_in_the_layout_that_says_why(as_dave):
    resp = as_dave.get("/billing/")
    page = resp.content.decode()
    assert resp.status_code == 403 and resp["Content-Type"].startswith("text/html")
    assert "console/console.css" in page and "This needs the owner role in Alpha Labs." in page
    assert nav_of(page)[0] == "Dashboard"


def test_an_unknown_page_is_a_404_in_the_layout(as_bob):
    resp = as_bob.get("/no-such-page/")
    page = resp.content.decode()
    assert resp.status_code == 404 and "There is nothing here" in page and "console/console.css" in page


def test_another_tenants_object_is_the_same_404(as_charlie, org):
    from tests.console.test_usage import usage

    request_id = usage(org)
    resp = as_charlie.get(f"/usage/{request_id}/")
    assert resp.status_code == 404 and "There is nothing here" in resp.content.decode()


def test_the_api_keeps_its_json_envelopes():
    resp = Client().get("/v1/no-such-endpoint")
    assert resp.status_code == 404 and resp.json()["error"]["code"] == "unknown_url"
    resp = Client().get("/api/no-such-endpoint")
    assert resp.status_code == 404 and resp["Content-Type"].startswith("application/json")
    assert "error" in resp.json()


def test_a_crash_is_a_500_page_for_people_and_an_envelope_for_programs(settings):
    from console.pages import errors
    from django.test import RequestFactory

    page = errors.server_error(RequestFactory().get("/dashboard/"))
    assert page.status_code == 500 and b"Something went wrong on our side" in page.content
    assert b"console/console.css" in page.content
    api = errors.server_error(RequestFactory().get("/v1/chat/completions"))
    assert api.status_code == 500 and b'"internal_error"' in api.content


def test_a_refusal_on_the_api_is_an_envelope():
    from console.pages import errors
    from django.test import RequestFactory

    resp = errors.permission_denied(RequestFactory().get("/api/v1/organization"), PermissionDenied("no"))
    assert resp.status_code == 403 and resp["Content-Type"] == "application/json"


def test_the_switcher_tells_organizations_of_the_same_name_apart(as_alice, alice, org):
    twin = create_organization("Alpha Labs", "alice@alpha.example")
    Membership.objects.filter(organization=twin).update(user=alice)
    page = as_alice.get("/dashboard/").content.decode()
    options = re.findall(r"<option [^>]*>([^<]+)</option>", page)
    assert f"Alpha Labs · {org.slug} (owner)" in options and f"Alpha Labs · {twin.slug} (owner)" in options


def test_the_switcher_shows_plain_names_when_they_differ(as_alice):
    options = re.findall(r"<option [^>]*>([^<]+)</option>", as_alice.get("/dashboard/").content.decode())
    assert options == ["Alpha Labs (owner)"]


def test_every_page_has_the_favicon(as_alice):
    page = as_alice.get("/dashboard/").content.decode()
    assert '<link rel="icon" href="/static/console/favicon.svg" type="image/svg+xml">' in page
    assert Client().get("/").content.decode().count("favicon.svg") == 1


def test_the_confirmation_email_names_the_product(mailoutbox):
    Client().post("/accounts/signup/", {"email": "frank@new.example", "password1": "a long passphrase 42",
                                        "password2": "a long passphrase 42"})
    body = mailoutbox[0].body
    assert body.startswith("Hello from MixGateway!") and "testserver!" not in body


@pytest.mark.parametrize("seconds, expected", [(0, "just now"), (59, "just now"), (120, "2\xa0minutes ago")])
def test_ago_says_just_now_under_a_minute(seconds, expected):
    when = timezone.now() - timedelta(seconds=seconds)
    assert Template("{% load console_time %}{{ when|ago }}").render(Context({"when": when})) == expected
