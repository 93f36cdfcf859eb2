"""The audit log: every action writes one row naming its actor, a refused or rolled-back
change writes none, rows never change, and only owners see their own organization's log.
In `org` (Alpha Labs) alice is the owner, dave an admin and bob a member; charlie owns
Beta Corp and is an outsider."""

import re
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.db import transaction
from django.test import Client
from django.urls import reverse

from billing import ledger
from console.tenancy import actions as tenancy
from console.tenancy.audit import record
from console.tenancy.models import AuditEvent, ImmutableAuditEvent, Membership
from gateway.keys.api_keys import create_api_key, mint_api_key, rename_api_key, revoke_api_key
from gateway.models import ApiKey
from tests.console.conftest import person

pytestmark = pytest.mark.django_db


def invite(org, email, *, actor, role="member"):
    tokens = []
    invitation = tenancy.invite_member(
        org, email, role, actor=actor, accept_url_for=lambda token: tokens.append(token) or f"/invitations/{token}/"
    )
    return invitation, tokens[0]


def the_event(action, **lookup) -> AuditEvent:
    """The one audit row of this action; fails when there are none or several."""
    events = list(AuditEvent.objects.filter(action=action, **lookup))
    assert len(events) == 1, f"{len(events)} {action} rows"
    return events[0]


def assert_no_secret(event, *secrets):
    text = repr(event.details) + event.target
    for secret in secrets:
        assert secret not in text


# Keys


def test_creating_a_key_in_the_console_is_audited(as_alice, org, alice):
    page = as_alice.post("/keys/new/", {"name": "backend", "spend_limit": "5"}).content.decode()
    secret = re.search(r"sk-[\w-]{40,}", page).group(0)
    key = ApiKey.objects.get(organization=org, name="backend")
    event = the_event("key.created")
    assert (event.organization, event.actor, event.target) == (org, alice, key.prefix)
    assert event.details["key_id"] == key.pk and event.details["spend_limit"] == "5"
    assert_no_secret(event, secret, secret[len(key.prefix):], key.secret_hash)


def test_minting_a_key_without_a_person_is_a_system_event(org):
    key, secret = mint_api_key(org, name="cli")
    event = the_event("key.created")
    assert (event.actor, event.target) == (None, key.prefix)
    assert_no_secret(event, secret, key.secret_hash)


def test_renaming_a_key_is_audited(as_alice, org, alice):
    key, _ = create_api_key(org, name="old", created_by=alice)
    assert as_alice.post(f"/keys/{key.pk}/rename/", {"name": "new"}).status_code == 302
    event = the_event("key.renamed")
    assert (event.actor, event.target) == (alice, key.prefix)
    assert (event.details["old_name"], event.details["new_name"]) == ("old", "new")


def test_renaming_to_the_same_name_records_nothing(org, alice):
    key, _ = create_api_key(org, name="same", created_by=alice)
    rename_api_key(key, "same", actor=alice)
    assert not AuditEvent.objects.filter(action="key.renamed").exists()


def test_revoking_a_key_is_audited_once(as_bob, org, bob):
    key, _ = create_api_key(org, name="mine", created_by=bob)
    assert as_bob.post(f"/keys/{key.pk}/revoke/").status_code == 302
    revoke_api_key(ApiKey.objects.get(pk=key.pk), actor=bob)  # again: nothing changes
    event = the_event("key.revoked")
    assert (event.organization, event.actor, event.target) == (org, bob, key.prefix)


# Members and invitations


def test_inviting_is_audited_without_the_token(org, dave):
    invitation, token = invite(org, "Erin@Example.com", actor=dave, role="admin")
    event = the_event("member.invited")
    assert (event.organization, event.actor, event.target) == (org, dave, "erin@example.com")
    assert event.details["role"] == "admin"
    assert_no_secret(event, token, invitation.token_hash)


def test_revoking_an_invitation_is_audited(org, alice, dave):
    invitation, token = invite(org, "erin@example.com", actor=alice)
    tenancy.revoke_invitation(invitation, actor=dave)
    tenancy.revoke_invitation(invitation, actor=dave)  # already revoked: no second row
    event = the_event("invitation.revoked")
    assert (event.organization, event.actor, event.target) == (org, dave, "erin@example.com")
    assert_no_secret(event, token, invitation.token_hash)


def test_accepting_an_invitation_is_audited(org, alice):
    invitation, token = invite(org, "erin@example.com", actor=alice, role="admin")
    erin = person("erin@example.com")
    tenancy.accept_invitation(invitation, actor=erin)
    event = the_event("invitation.accepted")
    assert (event.organization, event.actor, event.target) == (org, erin, "erin@example.com")
    assert event.details["role"] == "admin"
    assert_no_secret(event, token, invitation.token_hash)


def test_declining_an_invitation_is_audited(org, alice):
    invitation, _ = invite(org, "erin@example.com", actor=alice)
    erin = person("erin@example.com")
    tenancy.decline_invitation(invitation, actor=erin)
    event = the_event("invitation.declined")
    assert (event.organization, event.actor, event.target) == (org, erin, "erin@example.com")


def test_a_refused_acceptance_records_nothing(org, alice, charlie):
    invitation, _ = invite(org, "erin@example.com", actor=alice)
    with pytest.raises(tenancy.NotAllowed):
        tenancy.accept_invitation(invitation, actor=charlie)  # not the invited address
    assert not AuditEvent.objects.filter(action="invitation.accepted").exists()


def test_changing_a_role_is_audited(as_alice, org, alice, bob):
    membership = Membership.objects.get(user=bob, organization=org)
    assert as_alice.post(f"/members/{membership.pk}/role/", {"role": "admin"}).status_code == 302
    event = the_event("member.role_changed")
    assert (event.organization, event.actor, event.target) == (org, alice, bob.email)
    assert (event.details["old_role"], event.details["new_role"]) == ("member", "admin")


def test_demoting_the_last_owner_records_nothing(org, alice):
    membership = Membership.objects.get(user=alice, organization=org)
    with pytest.raises(tenancy.NotAllowed):
        tenancy.change_role(membership, "admin", actor=alice)
    with pytest.raises(tenancy.NotAllowed):
        tenancy.remove_member(membership, actor=alice)
    assert not AuditEvent.objects.filter(action__startswith="member.").exists()


def test_a_refused_role_change_records_nothing(org, dave, alice):
    with pytest.raises(tenancy.NotAllowed):
        tenancy.change_role(Membership.objects.get(user=alice, organization=org), "member", actor=dave)
    assert not AuditEvent.objects.filter(action="member.role_changed").exists()


def test_removing_a_member_is_audited(as_dave, org, dave, bob):
    membership = Membership.objects.get(user=bob, organization=org)
    assert as_dave.post(f"/members/{membership.pk}/remove/").status_code == 302
    event = the_event("member.removed")
    assert (event.organization, event.actor, event.target) == (org, dave, bob.email)
    assert event.details == {"user_id": bob.pk, "role": "member", "left": False}


def test_leaving_is_audited_as_a_removal_by_oneself(as_bob, org, bob):
    membership = Membership.objects.get(user=bob, organization=org)
    as_bob.post(f"/members/{membership.pk}/remove/")
    event = the_event("member.removed")
    assert (event.actor, event.target, event.details["left"]) == (bob, bob.email, True)


def test_a_rolled_back_change_leaves_no_audit_row(org, alice, bob):
    membership = Membership.objects.get(user=bob, organization=org)
    with pytest.raises(RuntimeError), transaction.atomic():
        tenancy.change_role(membership, "admin", actor=alice)
        raise RuntimeError("the surrounding work failed")
    assert not AuditEvent.objects.filter(action="member.role_changed").exists()
    assert Membership.objects.get(pk=membership.pk).role == "member"


# Money


def test_crediting_and_adjusting_are_audited(org, admin_user):
    entry = ledger.credit(org.pk, Decimal("12.5"), note="wire", created_by=admin_user)
    event = the_event("balance.credited", actor=admin_user)  # the org fixture's credit has no actor
    assert (event.organization, event.actor, event.target) == (org, admin_user, entry.reference)
    assert (event.details["amount"], event.details["balance_after"]) == ("12.5", "112.5")

    ledger.adjust(org.pk, Decimal("-2.5"), note="goodwill reversed", created_by=admin_user)
    event = the_event("balance.adjusted")
    assert (event.actor, event.details["amount"], event.details["note"]) == (admin_user, "-2.5", "goodwill reversed")


def test_a_refused_adjustment_records_nothing(org, admin_user):
    with pytest.raises(ledger.BillingError):
        ledger.adjust(org.pk, Decimal("1"), note=" ", created_by=admin_user)
    assert not AuditEvent.objects.filter(action="balance.adjusted").exists()


def test_changing_the_credit_limit_is_audited(org, admin_client, admin_user):
    url = reverse("admin:billing_account_change", args=[org.account.pk])
    assert admin_client.post(url, {"credit_limit": "25"}).status_code == 302
    event = the_event("credit_limit.changed")
    assert (event.organization, event.actor) == (org, admin_user)
    assert (event.details["old_limit"], event.details["new_limit"]) == ("0", "25")


def test_minting_and_redeeming_a_code_are_audited_with_a_prefix_only(org, alice, admin_user):
    code = ledger.mint_code(Decimal("5"), created_by=admin_user)
    minted = the_event("code.minted")
    assert (minted.organization, minted.actor, minted.target) == (None, admin_user, code.code[:8])
    ledger.redeem(org.pk, code.code, user=alice)
    with pytest.raises(ledger.BillingError):
        ledger.redeem(org.pk, code.code, user=alice)  # spent: no second row
    redeemed = the_event("code.redeemed")
    assert (redeemed.organization, redeemed.actor, redeemed.target) == (org, alice, code.code[:8])
    assert redeemed.details["amount"] == "5"
    for event in (minted, redeemed):
        assert_no_secret(event, code.code)


# The rows themselves


def test_audit_rows_cannot_be_changed_or_deleted(org, alice):
    create_api_key(org, name="k", created_by=alice)
    event = the_event("key.created")
    event.target = "forged"
    with pytest.raises(ImmutableAuditEvent):
        event.save()
    with pytest.raises(ImmutableAuditEvent):
        event.delete()
    assert AuditEvent.objects.get(pk=event.pk).target != "forged"


def test_an_unknown_action_is_refused(org):
    with pytest.raises(ValueError), transaction.atomic():
        record("key.stolen", organization=org, actor=None)


# The console page


def test_owners_see_their_log_newest_first(as_alice, org, alice):
    key, _ = create_api_key(org, name="first", created_by=alice)
    rename_api_key(key, "second", actor=alice)
    resp = as_alice.get("/audit/")
    assert resp.status_code == 200
    actions = [e.action for e in resp.context["page"]]
    assert actions[:2] == ["key.renamed", "key.created"]
    assert key.prefix in resp.content.decode() and alice.email in resp.content.decode()


def test_it_filters_by_action(as_alice, org, alice):
    key, _ = create_api_key(org, name="k", created_by=alice)
    revoke_api_key(key, actor=alice)
    resp = as_alice.get("/audit/", {"action": "key.revoked"})
    assert [e.action for e in resp.context["page"]] == ["key.revoked"]


def test_it_paginates(as_alice, org, alice):
    for n in range(51):
        mint_api_key(org, name=f"k{n}")
    first = as_alice.get("/audit/", {"action": "key.created"})
    assert len(first.context["page"]) == 50 and first.context["page"].has_next()
    second = as_alice.get("/audit/", {"action": "key.created", "page": 2})
    assert len(second.context["page"]) == 1


@pytest.mark.parametrize("browser", ["as_bob", "as_dave"])
def test_it_requires_the_owner_role(request, browser):
    assert request.getfixturevalue(browser).get("/audit/").status_code == 403


def test_it_shows_only_the_current_organizations_events(as_charlie, org, other_org, alice, charlie):
    create_api_key(org, name="alpha", created_by=alice)
    create_api_key(other_org, name="beta", created_by=charlie)
    resp = as_charlie.get("/audit/")
    assert resp.status_code == 200
    events = list(resp.context["page"])
    assert events and all(e.organization_id == other_org.pk for e in events)
    assert alice.email not in resp.content.decode()


def test_the_nav_link_is_shown_to_owners_only(as_alice, as_dave):
    assert "Audit log" in as_alice.get("/members/").content.decode()
    assert "Audit log" not in as_dave.get("/members/").content.decode()


def test_it_requires_login():
    resp = Client().get("/audit/")
    assert resp.status_code == 302 and "/accounts/login/" in resp["Location"]


# The Django admin


def test_the_admin_shows_events_read_only(admin_client, org, alice):
    create_api_key(org, name="k", created_by=alice)
    event = the_event("key.created")
    changelist = admin_client.get(reverse("admin:console_auditevent_changelist"), {"action": "key.created"})
    assert changelist.status_code == 200 and event.target in changelist.content.decode()
    assert admin_client.get(reverse("admin:console_auditevent_change", args=[event.pk])).status_code == 200
    assert admin_client.get(reverse("admin:console_auditevent_add")).status_code == 403
    delete_url = reverse("admin:console_auditevent_delete", args=[event.pk])
    assert admin_client.post(delete_url, {"post": "yes"}).status_code == 403
    assert AuditEvent.objects.filter(pk=event.pk).exists()


def test_staff_can_see_staff_wide_events(admin_client, admin_user):
    ledger.mint_code(Decimal("1"), created_by=admin_user)
    page = admin_client.get(reverse("admin:console_auditevent_changelist")).content.decode()
    assert "code.minted" in page


def test_deleting_a_user_keeps_their_audit_rows(org, bob):
    create_api_key(org, name="k", created_by=bob)
    get_user_model().objects.filter(pk=bob.pk).delete()
    assert the_event("key.created").actor is None


def test_the_signup_credit_is_a_system_event(settings):
    settings.SIGNUP_CREDIT_USD = "3"
    org = tenancy.create_organization("Gamma", "gina@gamma.example")
    event = the_event("balance.credited", organization=org)
    assert (event.actor, event.target, event.details["amount"]) == (None, f"signup:{org.pk}", "3")


# What the log says


def sentences(resp) -> list[str]:
    return [re.sub(r"\s+", " ", s).strip() for s in re.findall(r'<span class="sentence">(.*?)</span>',
                                                                 resp.content.decode(), re.S)]


def test_the_log_reads_as_sentences(as_alice, org, alice, dave):
    key, _ = create_api_key(org, name="backend", created_by=alice)
    rename_api_key(key, "server", actor=alice)
    invite(org, "erin@example.com", actor=alice, role="admin")
    invite(org, "erin@example.com", actor=alice, role="member")
    tenancy.change_role(Membership.objects.get(user=dave), "member", actor=alice)
    page = as_alice.get("/audit/")
    said = sentences(page)
    assert said[:4] == [
        "Changed the role of dave@alpha.example from admin to member",
        "Invited erin@example.com as member, replacing their earlier invitation",
        "Invited erin@example.com as admin",
        f"Renamed API key {key.prefix}… from “backend” to “server”",
    ]
    assert f"Created API key “backend” ({key.prefix}…)" in said
    assert "replaced_open_invitation" not in page.content.decode()


def test_money_reads_as_plain_usd(as_alice, org, alice):
    ledger.credit(org.pk, Decimal("0.0000009"), note="tiny", created_by=alice)
    said = sentences(as_alice.get("/audit/", {"action": "balance.credited"}))
    assert said[0].startswith("Credited 0.0000009 USD; the balance is now 100.0000009 USD (tiny)")


def test_an_action_without_a_sentence_still_reads(org, alice):
    from console.pages.audit_sentences import describe

    event = AuditEvent(action="alert.sent", target="low-balance", details={"threshold": "5", "webhook_id": 3})
    assert describe(event, "Alert sent") == "Alert sent: threshold: 5 (low-balance)"
