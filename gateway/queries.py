"""Named reads of the gateway's models for the console pages above it, so the pages ask
for what they show instead of querying gateway tables themselves."""

from django.db.models import Q
from django.utils import timezone

from .models import ApiKey, CatalogModel


def enabled_models():
    """Catalog models callers can use now (model and provider both enabled)."""
    return CatalogModel.objects.select_related("provider").filter(enabled=True, provider__enabled=True)


def managed_keys():
    """Every organization's keys that people manage, with their creator: all but the
    playground keys the console keeps for itself. Scope it with get_for_org or a filter."""
    return ApiKey.objects.exclude(kind=ApiKey.Kind.PLAYGROUND).select_related("created_by")


def keys_of(org):
    """All of the organization's keys, playground keys included (they have usage too)."""
    return ApiKey.objects.filter(organization=org)


def newest_active_key(org):
    now = timezone.now()
    return (
        ApiKey.objects.filter(organization=org, kind=ApiKey.Kind.STANDARD, revoked_at__isnull=True)
        .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
        .order_by("-created_at", "-pk")
        .first()
    )


def catalog_models():
    """Every catalog model, disabled ones too, so pages can say which ones cannot work
    (see gateway.routing.availability)."""
    return CatalogModel.objects.select_related("provider").order_by("provider__slug", "name")
