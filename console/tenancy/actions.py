"""Actions that create and change tenants. Views and commands call these; they do not
write tenancy models themselves."""

import hashlib
import logging
import secrets
from datetime import timedelta
from typing import Callable

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.text import slugify

from . import audit
from .access import RANK
from .models import Invitation, Membership, Organization
from .signals import organization_created

log = logging.getLogger(__name__)
Role = Membership.Role


class NotAllowed(Exception):
    """A membership rule refused the change; the message is meant for the user."""


def unique_slug(name: str) -> str:
    base = slugify(name)[:50] or "org"
    slug, n = base, 1
    while Organization.objects.filter(slug=slug).exists():
        n += 1
        slug = f"{base}-{n}"
    return slug


@transaction.atomic
def create_organization(name: str, owner_email: str) -> Organization:
    """Create an organization owned by the user with this email (created if new)."""
    User = get_user_model()
    email = User.objects.normalize_email(owner_email.strip())
    user = User.objects.filter(email__iexact=email).first()
    if user is None:
        user = User.objects.create_user(username=email, email=email)
        user.set_unusable_password()
        user.save(update_fields=["password"])
    org = Organization.objects.create(slug=unique_slug(name), name=name.strip())
    Membership.objects.create(user=user, organization=org, role=Membership.Role.OWNER)
    organization_created.send(sender=Organization, organization=org)
    return org


# Members and invitations. Each action takes `actor` (the user doing it) so an audit row
# can name them. Rules are enforced here, not only in the views, so every caller gets them.


def _lock_organization(org: Organization) -> None:
    # Changes to one organization's members run one at a time: two owners demoting each
    # other at once must not leave the organization without an owner.
    Organization.objects.select_for_update().filter(pk=org.pk).first()


def _role_of(user, org: Organization) -> str | None:
    return Membership.objects.filter(organization=org, user=user).values_list("role", flat=True).first()


def _other_owners_exist(membership: Membership) -> bool:
    return (
        Membership.objects.filter(organization_id=membership.organization_id, role=Role.OWNER)
        .exclude(pk=membership.pk)
        .exists()
    )


def may_grant(actor_role: str | None, role: str) -> bool:
    """Admins manage members and admins; only owners make or unmake owners."""
    if actor_role is None or RANK[actor_role] < RANK[Role.ADMIN]:
        return False
    return role != Role.OWNER or actor_role == Role.OWNER


def hash_token(token: str) -> str:
    # 256 random bits: a plain SHA-256 is enough, as for API keys.
    return hashlib.sha256(token.encode()).hexdigest()


def find_invitation(token: str) -> Invitation | None:
    return Invitation.objects.select_related("organization", "invited_by").filter(token_hash=hash_token(token)).first()


def _send_invitation_email(to: str, subject: str, body: str) -> None:
    try:
        send_mail(subject, body, None, [to])
    except Exception:
        # The invitation stays listed as pending; inviting again sends a fresh link.
        log.exception("Could not send the invitation email to %s", to)


@transaction.atomic
def invite_member(
    org: Organization, email: str, role: str, *, actor, accept_url_for: Callable[[str], str]
) -> Invitation:
    """Invite `email` to `org` with `role` and email them a link (after commit).
    An open invitation for the same address is revoked and replaced."""
    _lock_organization(org)
    email = email.strip().lower()
    if not may_grant(_role_of(actor, org), role):
        raise NotAllowed(f"You may not invite someone as {Role(role).label.lower()}.")
    if Membership.objects.filter(organization=org, user__email__iexact=email).exists():
        raise NotAllowed(f"{email} is already a member of {org.name}.")
    now = timezone.now()
    replaced = Invitation.objects.filter(
        organization=org, email=email, accepted_at=None, declined_at=None, revoked_at=None
    ).update(revoked_at=now)
    token = secrets.token_urlsafe(32)
    invitation = Invitation.objects.create(
        organization=org,
        email=email,
        role=role,
        token_hash=hash_token(token),
        invited_by=actor,
        expires_at=now + timedelta(days=settings.INVITATION_DAYS),
    )
    audit.record("member.invited", organization=org, actor=actor, target=email, role=role,
                 invitation_id=invitation.pk, replaced_open_invitation=bool(replaced))
    context = {"invitation": invitation, "organization": org, "inviter": actor, "accept_url": accept_url_for(token),
               "site_name": settings.SITE_NAME}
    subject = " ".join(render_to_string("console/email/invitation_subject.txt", context).split())
    body = render_to_string("console/email/invitation_body.txt", context)
    transaction.on_commit(lambda: _send_invitation_email(email, subject, body))
    return invitation


@transaction.atomic
def revoke_invitation(invitation: Invitation, *, actor) -> None:
    locked = Invitation.objects.select_for_update().get(pk=invitation.pk)
    if not may_grant(_role_of(actor, locked.organization), locked.role):
        raise NotAllowed("You may not revoke this invitation.")
    if locked.is_open:
        locked.revoked_at = timezone.now()
        locked.save(update_fields=["revoked_at"])
        audit.record("invitation.revoked", organization=locked.organization_id, actor=actor, target=locked.email,
                     role=locked.role, invitation_id=locked.pk)


def _lock_open_invitation(invitation: Invitation) -> Invitation:
    locked = Invitation.objects.select_for_update().select_related("organization").get(pk=invitation.pk)
    if not locked.is_open or locked.is_expired:
        raise NotAllowed(f"This invitation is {locked.status} and can no longer be used.")
    return locked


@transaction.atomic
def accept_invitation(invitation: Invitation, *, actor) -> Membership:
    """The invited person joins. `actor` must own the invited email address."""
    locked = _lock_open_invitation(invitation)
    if (actor.email or "").strip().lower() != locked.email:
        raise NotAllowed(
            f"This invitation was sent to {locked.email}, but you are logged in as {actor.email}. "
            "Log in with the invited address to accept it."
        )
    membership, _ = Membership.objects.get_or_create(
        user=actor, organization=locked.organization, defaults={"role": locked.role}
    )
    locked.accepted_at = timezone.now()
    locked.save(update_fields=["accepted_at"])
    audit.record("invitation.accepted", organization=locked.organization_id, actor=actor, target=locked.email,
                 role=membership.role, invitation_id=locked.pk)
    return membership


@transaction.atomic
def decline_invitation(invitation: Invitation, *, actor) -> None:
    locked = _lock_open_invitation(invitation)
    locked.declined_at = timezone.now()
    locked.save(update_fields=["declined_at"])
    audit.record("invitation.declined", organization=locked.organization_id, actor=actor, target=locked.email,
                 role=locked.role, invitation_id=locked.pk)


@transaction.atomic
def change_role(membership: Membership, role: str, *, actor) -> Membership:
    org = membership.organization
    _lock_organization(org)
    target = Membership.objects.get(pk=membership.pk)
    actor_role = _role_of(actor, org)
    if not (may_grant(actor_role, target.role) and may_grant(actor_role, role)):
        raise NotAllowed("Only owners may make or unmake owners." if actor_role == Role.ADMIN else "You may not change roles.")
    if target.role == Role.OWNER and role != Role.OWNER and not _other_owners_exist(target):
        raise NotAllowed(f"{org.name} needs at least one owner. Make someone else an owner first.")
    if target.role != role:
        previous = target.role
        target.role = role
        target.save(update_fields=["role"])
        audit.record("member.role_changed", organization=org, actor=actor, target=target.user.email,
                     user_id=target.user_id, old_role=previous, new_role=role)
    return target


@transaction.atomic
def remove_member(membership: Membership, *, actor) -> None:
    """Remove someone from the organization, or leave it when `actor` is that someone."""
    org = membership.organization
    _lock_organization(org)
    target = Membership.objects.filter(pk=membership.pk).first()
    if target is None:
        return
    leaving = target.user_id == actor.pk
    if not leaving and not may_grant(_role_of(actor, org), target.role):
        raise NotAllowed("Only owners may remove owners." if target.role == Role.OWNER else "You may not remove members.")
    if target.role == Role.OWNER and not _other_owners_exist(target):
        raise NotAllowed(f"{org.name} needs at least one owner. Make someone else an owner first.")
    audit.record("member.removed", organization=org, actor=actor, target=target.user.email,
                 user_id=target.user_id, role=target.role, left=leaving)
    target.delete()
