"""The organization's money: balance, ledger and redeeming prepaid codes. Owners only."""

from decimal import Decimal

from django import forms
from django.contrib import messages
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.urls import path
from django.views.decorators.http import require_POST

from billing.ledger import BillingError, redeem as redeem_code
from billing.money import ZERO, usd
from billing.queries import account_of, ledger_of
from console.pages.common import org_view
from console.tenancy.models import Membership

PAGE_SIZE = 50
# Below this much available credit the page warns before requests start being refused.
LOW_BALANCE_USD = Decimal("1")


class RedeemForm(forms.Form):
    code = forms.CharField(max_length=40, label="Code", widget=forms.TextInput(attrs={
        "placeholder": "MG-XXXXXX-XXXXXX-XXXXXX-XXXXXX", "autocomplete": "off"}))


def _signed(amount: Decimal) -> str:
    return f"+{usd(amount)}" if amount > 0 else usd(amount)


@org_view(Membership.Role.OWNER)
def index(request):
    account = account_of(request.org)
    balance = account.balance if account else ZERO
    credit_limit = account.credit_limit if account else ZERO
    available = balance + credit_limit
    entries = ledger_of(request.org)
    page = Paginator(entries, PAGE_SIZE).get_page(request.GET.get("page"))
    for entry in page:
        entry.amount_usd = _signed(entry.amount)
        entry.balance_after_usd = usd(entry.balance_after)
    return render(request, "console/billing/index.html", {
        "title": "Billing",
        "balance": usd(balance),
        "credit_limit": usd(credit_limit),
        "used_up": available <= 0,
        "low": 0 < available < LOW_BALANCE_USD,
        "page": page,
        "form": RedeemForm(),
    })


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
    path("billing/redeem/", redeem, name="billing_redeem"),
]
