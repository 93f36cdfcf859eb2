import pytest

from console.tenancy.models import Membership, Organization

pytestmark = pytest.mark.django_db


def test_pages_need_a_login(client_anon=None):
    from django.test import Client

    resp = Client().get("/dashboard/")
    assert resp.status_code == 302 and "/accounts/login/" in resp["Location"]


def test_it_creates_an_organization_owned_by_its_creator(as_alice, alice):
    resp = as_alice.post("/orgs/new/", {"name": "Side Project"})
    assert resp.status_code == 302
    org = Organization.objects.get(name="Side Project")
    assert Membership.objects.get(organization=org, user=alice).role == "owner"
    assert as_alice.session["organization_id"] == org.pk


def test_it_switches_only_to_organizations_of_the_user(as_alice, org, other_org):
    as_alice.post("/orgs/switch/", {"organization": other_org.pk})
    assert as_alice.session["organization_id"] == org.pk
    page = as_alice.get("/dashboard/").content.decode()
    assert "Alpha Labs" in page and "Beta Corp" not in page


def test_the_switcher_shows_every_organization_of_the_user(as_alice, alice, other_org):
    Membership.objects.create(user=alice, organization=other_org, role="member")
    as_alice.post("/orgs/switch/", {"organization": other_org.pk})
    assert as_alice.session["organization_id"] == other_org.pk
