"""Roles and tenant-scoped lookups, the rules every layer above keeps tenants apart by.

Objects are fetched through `get_for_org`, which answers 404 for anything outside the
given organization, so an outsider cannot even learn it exists.
"""

from django.http import Http404

from .models import Membership

RANK = {Membership.Role.MEMBER: 0, Membership.Role.ADMIN: 1, Membership.Role.OWNER: 2}


def memberships_of(user):
    return Membership.objects.filter(user=user).select_related("organization").order_by("organization__name")


def has_role(membership: Membership | None, role: str) -> bool:
    return membership is not None and RANK[membership.role] >= RANK[role]


def get_for_org(queryset, org, **lookup):
    """One object of the current organization, or 404 (also for other tenants' objects)."""
    obj = queryset.filter(organization=org, **lookup).first()
    if obj is None:
        raise Http404("No such object in this organization.")
    return obj
