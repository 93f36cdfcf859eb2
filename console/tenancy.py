"""Actions that create and change tenants. Views and commands call these; they do not
write tenancy models themselves."""

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils.text import slugify

from billing.ledger import open_account

from .models import Membership, Organization


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
    open_account(org.pk)
    return org
