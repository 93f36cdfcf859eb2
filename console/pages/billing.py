"""The organization's money: balance, ledger, top-ups by card and redeeming prepaid codes.
Owners only (statements, for admins too, are in billing_statements)."""

from datetime import date
from decimal import Decimal

from django import forms
from django.conf import settings
from django.contrib import messages
from django.http import Http404, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.views.decorators.http import require_POST

from billing import stripe_topups
from billing.ledger import BillingError, redeem as redeem_code
from billing.money import ZERO, usd
from billing.ledger_lines import day_entries, ledger_lines
from billing.queries import account_of, topups_of
from console.pages.common import org_view
from console.tenancy.access import get_for_org
from console.tenancy.models import Membership
from gateway.api.middleware import content_security_policy

PAGE_SIZE = 50  # entries of one day per page
TOPUPS_SHOWN = 20
# Below this much available credit the page warns before requests start being refused.
LOW_BALANCE_USD = Decimal("1")


class RedeemForm(forms.Form):
    code = forms.CharField(max_length=40, label="Code", widget=forms.TextInput(attrs={
        "placeholder": "MG-XXXXXX-XXXXXX-XXXXXX-XXXXXX", "autocomplete": "off"}))


class TopUpForm(forms.Form):
    # The bounds are billing's rule (stripe_topups.check_amount); the widget only shows them.
    amount = forms.DecimalField(label="Amount (USD)", max_digits=12)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["amount"].widget.attrs.update(min=settings.TOPUP_MIN_USD, max=settings.TOPUP_MAX_USD, step="0.01")


def _signed(amount: Decimal) -> str:
    return f"+{usd(amount)}" if amount > 0 else usd(amount)


def _day_param(request, name) -> date | None:
    """A YYYY-MM-DD query parameter; anything else reads as absent (the first page)."""
    try:
        return date.fromisoformat(request.GET.get(name, ""))
    except ValueError:
        return None


@org_view(Membership.Role.OWNER)
def index(request):
    account = account_of(request.org)
    balance = account.balance if account else ZERO
    credit_limit = account.credit_limit if account else ZERO
    available = balance + credit_limit
    before = _day_param(request, "before")
    ledger = ledger_lines(request.org, before=before)
    for line in ledger.lines:
        line.amount_usd = _signed(line.amount)
        line.balance_after_usd = "" if line.balance_after is None else usd(line.balance_after)
    returned = request.GET.get("topup")  # Stripe sent the payer back (says nothing about payment)
    topups = list(topups_of(request.org)[:TOPUPS_SHOWN])
    for t in topups:
        t.amount_usd, t.refunded_usd = usd(t.amount), usd(t.refunded)
    response = render(request, "console/billing/index.html", {
        "title": "Billing",
        "balance": usd(balance),
        "credit_limit": usd(credit_limit),
        "used_up": available <= 0,
        "low": 0 < available < LOW_BALANCE_USD,
        "ledger": ledger,
        "paged": before is not None,
        "form": RedeemForm(),
        "stripe_enabled": stripe_topups.enabled(),
        "topup_form": TopUpForm(initial={"amount": settings.TOPUP_MIN_USD}),
        "topup_min": settings.TOPUP_MIN_USD,
        "topup_max": settings.TOPUP_MAX_USD,
        "topups": topups,
        "returned_from_stripe": returned if returned in ("success", "cancelled") else None,
    })
    if stripe_topups.enabled():
        # The top-up form's answer redirects to Stripe, which form-action must allow.
        response["Content-Security-Policy"] = content_security_policy().replace(
            "form-action 'self'", f"form-action 'self' {stripe_topups.CHECKOUT_ORIGIN}", 1)
    return response


@org_view(Membership.Role.OWNER)
def ledger_day(request, day):
    """Every entry of one UTC day, newest first, 50 at a time: where a day's usage line of
    the ledger expands to."""
    try:
        wanted = date.fromisoformat(day)
    except ValueError:
        raise Http404("not a day")
    try:
        before = int(request.GET["before"])
    except (KeyError, ValueError):
        before = None
    entries, older = day_entries(request.org, wanted, before_id=before, size=PAGE_SIZE)
    for entry in entries:
        entry.amount_usd = _signed(entry.amount)
        entry.balance_after_usd = usd(entry.balance_after)
    return render(request, "console/billing/ledger_day.html", {
        "title": f"Ledger, {wanted:%Y-%m-%d}", "day": wanted, "entries": entries, "older": older,
        "paged": before is not None,
    })


@require_POST
@org_view(Membership.Role.OWNER)
def topup(request):
    if not stripe_topups.enabled():
        raise Http404("Stripe top-ups are off")
    form = TopUpForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Enter an amount in USD, e.g. 20.")
        return redirect("billing")
    # Built from our own URL and the request's validated host: nothing the caller sends
    # decides where Stripe sends the payer back to.
    return_url = request.build_absolute_uri(reverse("billing"))
    try:
        _, checkout_url = stripe_topups.start_checkout(request.org, form.cleaned_data["amount"], user=request.user,
                                                       return_url=return_url)
    except stripe_topups.TopUpError as e:
        messages.error(request, f"Could not start the top-up: {e}.")
        return redirect("billing")
    return HttpResponseRedirect(checkout_url)


@org_view(Membership.Role.OWNER)
def receipt(request, pk):
    topup = get_for_org(topups_of(request.org, settled_only=True), request.org, pk=pk)
    try:
        url = stripe_topups.receipt_url(topup)
    except stripe_topups.StripeUnavailable:
        url = ""
    if not url:
        messages.error(request, "Stripe has no receipt for this top-up yet; try again in a minute.")
        return redirect("billing")
    return HttpResponseRedirect(url)


@require_POST
@org_view(Membership.Role.OWNER)
def redeem(request):
    form = RedeemForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Enter a code of at most 40 characters to redeem.")
        return redirect("billing")
    try:
        entry = redeem_code(request.org.pk, form.cleaned_data["code"], user=request.user)
    except BillingError as e:
        messages.error(request, f"Could not redeem the code: {e}.")
    else:
        messages.success(request, f"Redeemed {usd(entry.amount)} USD. "
                                  f"The balance is now {usd(entry.balance_after)} USD.")
    return redirect("billing")


urlpatterns = [
    path("billing/", index, name="billing"),
    path("billing/ledger/<str:day>/", ledger_day, name="billing_ledger_day"),
    path("billing/redeem/", redeem, name="billing_redeem"),
    path("billing/topup/", topup, name="billing_topup"),
    path("billing/topups/<int:pk>/receipt/", receipt, name="billing_receipt"),
]
