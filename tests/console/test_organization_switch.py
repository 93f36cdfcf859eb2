"""Switching organization returns to the page it came from, and only ever to this site."""

import pytest

from console.tenancy.models import Membership

pytestmark = pytest.mark.django_db


@pytest.fixture
def member_of_both(alice, other_org):
    Membership.objects.create(user=alice, organization=other_org, role="member")


def test_it_returns_to_the_page_it_came_from(as_alice, member_of_both, other_org):
    resp = as_alice.post("/orgs/switch/", {"organization": other_org.pk, "next": "/usage/?days=7"})
    assert (resp.status_code, resp["Location"]) == (302, "/usage/?days=7")
    assert as_alice.session["organization_id"] == other_org.pk


@pytest.mark.parametrize("next_url", [
    "https://evil.example/", "//evil.example", "///evil.example", "http://evil.example/dashboard/",
    "https:evil.example", "\\\\evil.example", "/\\evil.example", "javascript:alert(1)",
])
def test_it_never_sends_the_user_to_another_site(as_alice, member_of_both, other_org, next_url):
    resp = as_alice.post("/orgs/switch/", {"organization": other_org.pk, "next": next_url})
    assert (resp.status_code, resp["Location"]) == (302, "/dashboard/")
    assert as_alice.session["organization_id"] == other_org.pk  # the switch itself still happened


def test_an_absolute_url_on_this_host_is_kept(as_alice, member_of_both, other_org):
    resp = as_alice.post("/orgs/switch/", {"organization": other_org.pk, "next": "http://testserver/keys/"})
    assert resp["Location"] == "http://testserver/keys/"
