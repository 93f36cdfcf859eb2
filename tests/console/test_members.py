"""Members page, invitations, role changes and removals. In `org` (Alpha Labs) alice is
the owner, dave an admin and bob a member; charlie owns Beta Corp and is an outsider."""

import re
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from console.tenancy import actions as tenancy
from console.tenancy.models import Invitation, Membership
from tests.console.conftest import logged_in, person

pytestmark = pytest.mark.django_db


def invite(org, email, *, actor, role="member"):
    """An invitation made the way the console makes it, with its token."""
    tokens = []
    invitation = tenancy.invite_member(
        org, email, role, actor=actor, accept_url_for=lambda token: tokens.append(token) or f"/invitations/{token}/"
    )
    return invitation, tokens[0]


def role_of(user, org):
    return Membership.objects.filter(user=user, organization=org).values_list("role", flat=True).first()


# Members page


def test_it_lists_members(as_bob, alice, bob, dave):
    page = as_bob.get("/members/").content.decode()
    assert all(email in page for email in [alice.email, bob.email, dave.email])
    assert "Pending invitations" not in page and "Send invitation" not in page


def test_admins_see_pending_invitations(as_dave, org, alice):
    invite(org, "erin@example.com", actor=alice, role="admin")
    page = as_dave.get("/members/").content.decode()
    assert "erin@example.com" in page and "Pending invitations" in page and alice.email in page


# Inviting


def test_it_sends_an_invitation_with_a_working_link(as_dave, dave, org, mailoutbox, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        resp = as_dave.post("/members/invite/", {"email": "Erin@Example.com", "role": "member"})
    assert resp.status_code == 302
    assert len(mailoutbox) == 1 and mailoutbox[0].to == ["erin@example.com"]
    assert "Alpha Labs" in mailoutbox[0].subject
    link = re.search(r"http://testserver(/invitations/[\w-]+/)", mailoutbox[0].body).group(1)
    invitation = Invitation.objects.get(organization=org)
    assert (invitation.email, invitation.role, invitation.invited_by) == ("erin@example.com", "member", dave)
    assert link.split("/")[2] not in invitation.token_hash  # only the hash is stored
    assert invitation.token_hash == tenancy.hash_token(link.split("/")[2])

    erin = logged_in(person("erin@example.com"))
    page = erin.get(link)
    assert page.status_code == 200
    assert all(text in page.content.decode() for text in ["Alpha Labs", "Member", dave.email])


def test_accepting_joins_with_the_role_and_switches_organization(org, alice):
    _, token = invite(org, "ERIN@example.com", actor=alice, role="admin")
    erin = person("erin@example.com")
    browser = logged_in(erin)
    resp = browser.post(f"/invitations/{token}/", {"action": "accept"})
    assert resp.status_code == 302
    assert role_of(erin, org) == "admin"
    assert browser.session["organization_id"] == org.pk
    assert Invitation.objects.get().accepted_at is not None
    assert browser.get(f"/invitations/{token}/").status_code == 410  # used


def test_someone_else_cannot_accept(org, alice, as_charlie, charlie):
    _, token = invite(org, "erin@example.com", actor=alice)
    page = as_charlie.get(f"/invitations/{token}/")
    assert "was sent to erin@example.com" in page.content.decode()
    resp = as_charlie.post(f"/invitations/{token}/", {"action": "accept"})
    assert resp.status_code == 403 and "was sent to erin@example.com" in resp.content.decode()
    assert role_of(charlie, org) is None
    assert Invitation.objects.get().is_open


def test_it_declines(org, alice):
    _, token = invite(org, "erin@example.com", actor=alice)
    erin = person("erin@example.com")
    resp = logged_in(erin).post(f"/invitations/{token}/", {"action": "decline"})
    assert resp.status_code == 302
    assert Invitation.objects.get().declined_at is not None and role_of(erin, org) is None


def test_a_visitor_is_sent_to_sign_up_or_log_in_and_back(org, alice):
    _, token = invite(org, "erin@example.com", actor=alice)
    resp = Client().get(f"/invitations/{token}/")
    assert resp.status_code == 302
    assert resp["Location"].startswith("/accounts/signup/") and f"invitations%2F{token}" in resp["Location"]
    person("erin@example.com")
    assert Client().get(f"/invitations/{token}/")["Location"].startswith("/accounts/login/?next=")


@pytest.mark.parametrize("state", ["expired", "revoked", "declined"])
def test_unusable_links_get_a_clear_page(org, alice, state):
    invitation, token = invite(org, "erin@example.com", actor=alice)
    field = {"expired": "expires_at", "revoked": "revoked_at", "declined": "declined_at"}[state]
    past = timezone.now() - timedelta(seconds=1)
    Invitation.objects.filter(pk=invitation.pk).update(**{field: past})
    browser = logged_in(person("erin@example.com"))
    for resp in [browser.get(f"/invitations/{token}/"), browser.post(f"/invitations/{token}/", {"action": "accept"})]:
        assert resp.status_code == 410 and "can't be used" in resp.content.decode()
        assert state in resp.content.decode()
    assert role_of(person("erin@example.com"), org) is None


def test_unknown_links_get_a_clear_page():
    resp = Client().get("/invitations/not-a-real-token/")
    assert resp.status_code == 404 and "don't know this invitation" in resp.content.decode()


def test_reinviting_replaces_the_open_invitation(as_alice, alice, org, mailoutbox, django_capture_on_commit_callbacks):
    first, first_token = invite(org, "erin@example.com", actor=alice)
    with django_capture_on_commit_callbacks(execute=True):
        as_alice.post("/members/invite/", {"email": "erin@example.com", "role": "admin"})
    first.refresh_from_db()
    assert first.revoked_at is not None
    assert Invitation.objects.filter(revoked_at=None).get().role == "admin"
    assert len(mailoutbox) == 1
    assert Client().get(f"/invitations/{first_token}/").status_code == 410


def test_inviting_a_member_is_a_form_error(as_dave, bob):
    resp = as_dave.post("/members/invite/", {"email": bob.email.upper(), "role": "member"})
    assert resp.status_code == 400 and "already a member" in resp.content.decode()
    assert not Invitation.objects.exists()


def test_admins_cannot_invite_owners_but_owners_can(as_dave, as_alice):
    resp = as_dave.post("/members/invite/", {"email": "erin@example.com", "role": "owner"})
    assert resp.status_code == 400 and not Invitation.objects.exists()
    assert as_alice.post("/members/invite/", {"email": "erin@example.com", "role": "owner"}).status_code == 302
    assert Invitation.objects.get().role == "owner"


def test_it_enforces_csrf_on_invite(dave, org):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(dave)
    assert browser.post("/members/invite/", {"email": "erin@example.com", "role": "member"}).status_code == 403
    browser.get("/members/")
    token = browser.cookies["csrftoken"].value
    resp = browser.post("/members/invite/", {"email": "erin@example.com", "role": "member", "csrfmiddlewaretoken": token})
    assert resp.status_code == 302 and Invitation.objects.exists()


def test_it_revokes(as_dave, org, alice):
    invitation, _ = invite(org, "erin@example.com", actor=alice)
    assert as_dave.post(f"/members/invitations/{invitation.pk}/revoke/").status_code == 302
    invitation.refresh_from_db()
    assert invitation.revoked_at is not None


# Permissions and ownership


def test_members_get_403_on_admin_actions(as_bob, org, alice, dave):
    invitation, _ = invite(org, "erin@example.com", actor=alice)
    dave_membership = Membership.objects.get(user=dave, organization=org)
    assert as_bob.post("/members/invite/", {"email": "x@example.com", "role": "member"}).status_code == 403
    assert as_bob.post(f"/members/invitations/{invitation.pk}/revoke/").status_code == 403
    assert as_bob.post(f"/members/{dave_membership.pk}/role/", {"role": "member"}).status_code == 403
    assert as_bob.post(f"/members/{dave_membership.pk}/remove/").status_code == 403
    assert role_of(dave, org) == "admin" and Invitation.objects.get().is_open


def test_it_checks_ownership(as_charlie, org, alice, bob):
    invitation, _ = invite(org, "erin@example.com", actor=alice)
    bob_membership = Membership.objects.get(user=bob, organization=org)
    assert as_charlie.post(f"/members/{bob_membership.pk}/role/", {"role": "admin"}).status_code == 404
    assert as_charlie.post(f"/members/{bob_membership.pk}/remove/").status_code == 404
    assert as_charlie.post(f"/members/invitations/{invitation.pk}/revoke/").status_code == 404
    assert role_of(bob, org) == "member" and Invitation.objects.get().is_open


# Roles and removal


def test_role_changes(as_alice, as_dave, org, alice, bob, dave):
    bob_m = Membership.objects.get(user=bob, organization=org)
    alice_m = Membership.objects.get(user=alice, organization=org)
    as_dave.post(f"/members/{bob_m.pk}/role/", {"role": "admin"})
    assert role_of(bob, org) == "admin"
    as_dave.post(f"/members/{bob_m.pk}/role/", {"role": "owner"})  # only owners make owners
    as_dave.post(f"/members/{alice_m.pk}/role/", {"role": "member"})  # ... or unmake them
    assert (role_of(bob, org), role_of(alice, org)) == ("admin", "owner")
    as_alice.post(f"/members/{bob_m.pk}/role/", {"role": "owner"})
    assert role_of(bob, org) == "owner"


def test_the_last_owner_stays(as_alice, as_dave, org, alice):
    alice_m = Membership.objects.get(user=alice, organization=org)
    resp = as_alice.post(f"/members/{alice_m.pk}/role/", {"role": "admin"}, follow=True)
    assert "needs at least one owner" in resp.content.decode()
    resp = as_alice.post(f"/members/{alice_m.pk}/remove/", follow=True)  # leaving
    assert "needs at least one owner" in resp.content.decode()
    as_dave.post(f"/members/{alice_m.pk}/remove/")
    assert role_of(alice, org) == "owner"
    with pytest.raises(tenancy.NotAllowed):
        tenancy.remove_member(alice_m, actor=alice)


def test_an_owner_may_step_down_when_another_owner_remains(as_alice, org, alice, dave):
    Membership.objects.filter(user=dave, organization=org).update(role="owner")
    alice_m = Membership.objects.get(user=alice, organization=org)
    as_alice.post(f"/members/{alice_m.pk}/role/", {"role": "member"})
    assert role_of(alice, org) == "member"


def test_admins_remove_members_but_not_owners(as_dave, org, alice, bob):
    as_dave.post(f"/members/{Membership.objects.get(user=alice, organization=org).pk}/remove/")
    as_dave.post(f"/members/{Membership.objects.get(user=bob, organization=org).pk}/remove/")
    assert (role_of(alice, org), role_of(bob, org)) == ("owner", None)


def test_a_member_may_leave_and_work_continues_elsewhere(as_bob, org, other_org, bob):
    Membership.objects.create(user=bob, organization=other_org, role="member")
    resp = as_bob.post(f"/members/{Membership.objects.get(user=bob, organization=org).pk}/remove/")
    assert resp.status_code == 302 and role_of(bob, org) is None
    page = as_bob.get("/members/")
    assert "Beta Corp" in page.content.decode() and as_bob.session["organization_id"] == other_org.pk
