"""API keys: list, create (the secret is shown once), rename, change limits and revoke.

Members may create keys and manage the ones they created; admins and owners manage every
key of the organization. Management keys ("mk-", for /api/v1) are made, seen and revoked
by admins and owners only. Playground keys belong to the console itself and are invisible
here, so none of these URLs can reach them.
"""

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect, render
from django.urls import path
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from billing.live import key_spend_booked
from billing.money import from_units
from console.pages.common import org_view
from console.pages.forms_keys import CreateKeyForm, CreateManagementKeyForm, KeyLimitsForm, RenameKeyForm
from console.tenancy.access import get_for_org, has_role
from console.tenancy.models import Membership
from gateway.keys.api_keys import (
    create_api_key,
    create_management_key,
    key_status,
    rename_api_key,
    revoke_api_key,
    update_api_key,
)
from gateway.models import ApiKey
from gateway.queries import managed_keys


# The management key form shares the list page with the inference key form: its own field
# names and ids keep the two apart.
MANAGEMENT_PREFIX = "management"


def can_manage(request, key: ApiKey) -> bool:
    return has_role(request.membership, Membership.Role.ADMIN) or key.created_by_id == request.user.pk


def key_for_view(request, pk: int) -> ApiKey:
    key = get_for_org(managed_keys(), request.org, pk=pk)
    if key.kind == ApiKey.Kind.MANAGEMENT and not has_role(request.membership, Membership.Role.ADMIN):
        raise PermissionDenied("Management keys are for admins and owners.")
    return key


def key_for_change(request, pk: int) -> ApiKey:
    key = key_for_view(request, pk)
    if not can_manage(request, key):
        raise PermissionDenied("Members may change only the keys they created.")
    return key


def with_status(request, key: ApiKey, now) -> ApiKey:
    key.status = key_status(key, now)
    key.manageable = can_manage(request, key)
    label = key.get_budget_period_display()
    key.period_phrase = label[:1].lower() + label[1:]  # "per UTC day", "in all"
    return key


def with_spend(key: ApiKey) -> ApiKey:
    # What the ledger has booked for the key in all. One query per key, and an
    # organization has a handful; the live store's period spend may replace it here.
    key.spent = from_units(key_spend_booked(key.pk))
    return key


@org_view()
def index(request):
    now = timezone.now()
    rows = managed_keys().filter(organization=request.org).order_by("-created_at", "-pk")
    keys = [with_spend(with_status(request, key, now)) for key in rows if key.kind == ApiKey.Kind.STANDARD]
    context = {"title": "API keys", "keys": keys, "form": CreateKeyForm()}
    if has_role(request.membership, Membership.Role.ADMIN):
        context["management_keys"] = [with_status(request, key, now) for key in rows
                                      if key.kind == ApiKey.Kind.MANAGEMENT]
        context["management_form"] = CreateManagementKeyForm(prefix=MANAGEMENT_PREFIX)
    return render(request, "console/keys/index.html", context)


@never_cache
@org_view()
def create(request):
    form = CreateKeyForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        key, secret = create_api_key(
            request.org,
            name=form.cleaned_data["name"],
            created_by=request.user,
            **form.limits,
        )
        # Rendered straight into this response (never redirected, stored or logged), and
        # never_cache keeps it out of the browser's and any proxy's cache.
        return render(request, "console/keys/created.html", {"title": "Key created", "key": key, "secret": secret})
    return render(request, "console/keys/new.html", {"title": "Create API key", "form": form})


@never_cache
@org_view(Membership.Role.ADMIN)
def create_management(request):
    form = CreateManagementKeyForm(request.POST or None, prefix=MANAGEMENT_PREFIX)
    if request.method == "POST" and form.is_valid():
        key, secret = create_management_key(request.org, name=form.cleaned_data["name"], created_by=request.user,
                                            expires_at=form.expires_at)
        # Like an inference key's secret: in this response only, never cached.
        return render(request, "console/keys/created.html", {"title": "Management key created", "key": key,
                                                             "secret": secret, "management": True})
    return render(request, "console/keys/new_management.html", {"title": "Create management key", "form": form})


def render_detail(request, key: ApiKey, *, form=None, limits_form=None, status=200):
    with_status(request, key, timezone.now())
    context = {"title": key.name or "API key", "key": key,
               "form": form or RenameKeyForm(initial={"name": key.name})}
    if key.kind == ApiKey.Kind.STANDARD:
        context["limits_form"] = limits_form or KeyLimitsForm(initial=KeyLimitsForm.initial_for(key), key=key)
        with_spend(key)
    return render(request, "console/keys/detail.html", context, status=status)


@org_view()
def detail(request, pk):
    return render_detail(request, key_for_view(request, pk))


@require_POST
@org_view()
def rename(request, pk):
    key = key_for_change(request, pk)
    form = RenameKeyForm(request.POST)
    if not form.is_valid():
        return render_detail(request, key, form=form, status=400)
    rename_api_key(key, form.cleaned_data["name"], actor=request.user)
    messages.success(request, f"Renamed the key to “{key.name}”.")
    return redirect("key_detail", pk=key.pk)


@require_POST
@org_view()
def change_limits(request, pk):
    key = key_for_change(request, pk)
    if key.kind != ApiKey.Kind.STANDARD:
        raise PermissionDenied("Only API keys have limits.")
    form = KeyLimitsForm(request.POST, key=key)
    if form.is_valid() and key.revoked_at is not None:
        form.add_error(None, "This key is revoked; its limits can no longer change.")
    if not form.is_valid():
        return render_detail(request, key, limits_form=form, status=400)
    update_api_key(key, actor=request.user, **form.limits)  # audited as key.updated
    messages.success(request, f"Saved the limits of “{key.name or key.prefix}”. The gateway applies them "
                              "within seconds.")
    return redirect("key_detail", pk=key.pk)


@require_POST
@org_view()
def revoke(request, pk):
    key = key_for_change(request, pk)
    revoke_api_key(key, actor=request.user)
    messages.success(request, f"Revoked “{key.name or key.prefix}”. The gateway refuses it from now on.")
    return redirect("keys")


urlpatterns = [
    path("keys/", index, name="keys"),
    path("keys/new/", create, name="key_create"),
    path("keys/management/new/", create_management, name="management_key_create"),
    path("keys/<int:pk>/", detail, name="key_detail"),
    path("keys/<int:pk>/rename/", rename, name="key_rename"),
    path("keys/<int:pk>/limits/", change_limits, name="key_limits"),
    path("keys/<int:pk>/revoke/", revoke, name="key_revoke"),
]
