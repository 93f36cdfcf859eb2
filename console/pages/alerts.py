"""Alerts: the low-balance threshold, the webhook URL (its signing secret shown once), the
delivery log and a signed test event. Owners and admins; each setting change is audited
by the action that makes it (billing.low_balance, console.tenancy.webhooks)."""

import json
from decimal import Decimal, InvalidOperation

from django import forms
from django.contrib import messages
from django.core.paginator import Paginator
from django.db import transaction
from django.shortcuts import redirect, render
from django.urls import path
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from billing.alerts import deliveries_of, send_test_event
from billing.ledger import BillingError, parse_amount
from billing.low_balance import set_low_balance_threshold
from billing.money import ZERO, usd
from billing.queries import account_of
from console.pages.common import org_view
from console.tenancy.access import get_for_org
from console.tenancy.models import Membership, Organization
from console.tenancy.webhooks import set_webhook_url

DELIVERIES_PER_PAGE = 25
URL_MAX = Organization._meta.get_field("webhook_url").max_length


class AlertSettingsForm(forms.Form):
    threshold = forms.CharField(
        required=False, label="Low-balance threshold (USD)",
        widget=forms.TextInput(attrs={"inputmode": "decimal", "placeholder": "e.g. 5", "autocomplete": "off"}),
        help_text="When the balance falls below this, owners are emailed and the webhook is called, once "
                  "until the balance is back above. Empty: no low-balance alert.")
    webhook_url = forms.URLField(
        required=False, max_length=URL_MAX, label="Webhook URL", assume_scheme="https",
        widget=forms.URLInput(attrs={"placeholder": "https://example.com/hooks/mixgateway",
                                     "style": "width: 100%; max-width: 40em"}),
        help_text="Alerts are POSTed here as signed JSON. Empty: email only.")

    def clean_threshold(self):
        text = self.cleaned_data["threshold"].strip()
        if not text:
            return None
        try:
            if Decimal(text) == 0:
                return ZERO  # alert when the balance goes below zero (credit limit permitting)
            return parse_amount(text)
        except (InvalidOperation, BillingError) as e:
            raise forms.ValidationError(str(e) if isinstance(e, BillingError) else "Enter an amount in USD, e.g. 5.")

    def clean_webhook_url(self):
        url = self.cleaned_data["webhook_url"]
        if url and not url.startswith(("http://", "https://")):
            raise forms.ValidationError("The webhook URL must be http:// or https://.")
        return url


def _initial(org) -> dict:
    account = account_of(org)
    threshold = account.low_balance_threshold if account else None
    return {"threshold": "" if threshold is None else usd(threshold), "webhook_url": org.webhook_url}


def _page(request, form, *, new_secret=None):
    deliveries = Paginator(deliveries_of(request.org), DELIVERIES_PER_PAGE).get_page(request.GET.get("page"))
    return render(request, "console/alerts/index.html", {
        "title": "Alerts", "form": form, "page": deliveries, "new_secret": new_secret,
        "webhook_url": request.org.webhook_url,
    })


@org_view(Membership.Role.ADMIN)
def index(request):
    return _page(request, AlertSettingsForm(initial=_initial(request.org)))


@never_cache  # the answer that shows a new signing secret must not be kept anywhere
@require_POST
@org_view(Membership.Role.ADMIN)
def save_settings(request):
    form = AlertSettingsForm(request.POST)
    if not form.is_valid():
        return _page(request, form)
    with transaction.atomic():  # both settings or neither
        set_low_balance_threshold(request.org.pk, form.cleaned_data["threshold"], actor=request.user)
        new_secret = set_webhook_url(request.org, form.cleaned_data["webhook_url"], actor=request.user)
    if new_secret:
        # Rendered into this response only (never redirected, stored or logged).
        return _page(request, AlertSettingsForm(initial=_initial(request.org)), new_secret=new_secret)
    messages.success(request, "Alert settings saved.")
    return redirect("alerts")


@require_POST
@org_view(Membership.Role.ADMIN)
def send_test(request):
    try:
        send_test_event(request.org)
    except ValueError as e:
        messages.error(request, f"Could not send a test event: {e}.")
    else:
        messages.success(request, "A signed test event is on its way to the webhook URL; its delivery is below.")
    return redirect("alerts")


@org_view(Membership.Role.ADMIN)
def delivery(request, pk):
    shown = get_for_org(deliveries_of(request.org), request.org, pk=pk)
    return render(request, "console/alerts/delivery.html", {"title": "Alert delivery", "delivery": shown,
                                                            "payload_json": json.dumps(shown.payload, indent=2)})


urlpatterns = [
    path("alerts/", index, name="alerts"),
    path("alerts/settings/", save_settings, name="alerts_settings"),
    path("alerts/test/", send_test, name="alerts_test"),
    path("alerts/deliveries/<int:pk>/", delivery, name="alert_delivery"),
]
