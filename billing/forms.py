"""Forms for billing staff (the Django admin). They only validate: every money movement
goes through the action functions in billing.ledger, which the admin views call."""

import re
import uuid
from decimal import Decimal, InvalidOperation

from django import forms
from django.utils import timezone

from .ledger import BillingError, parse_amount
from .models import Account, RedeemCode
from .money import ZERO, InexactAmount, from_units, usd

# MoneyField stores picodollars in a signed 64-bit integer.
MAX_USD = from_units(2**63 - 1)
CREDIT_REFERENCE = re.compile(r"^credit:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def clean_usd(text, *, allow_negative=False) -> Decimal:
    """An exact USD amount typed by staff, or a ValidationError saying what is wrong."""
    try:
        amount = parse_amount(text, allow_negative=allow_negative)
    except InexactAmount:
        raise forms.ValidationError("Amounts are exact to the picodollar (12 decimal places) and are never rounded.")
    except BillingError as exc:
        raise forms.ValidationError(f"Enter a valid amount: {exc}.")
    if abs(amount) > MAX_USD:
        raise forms.ValidationError(f"The amount must be at most {MAX_USD} USD.")
    return amount


class BalanceMovementForm(forms.Form):
    """Credit an account, or adjust it (up or down) with a note saying why."""

    KIND_CHOICES = [("credit", "Credit (add prepaid funds)"), ("adjustment", "Adjustment (correction, may be negative)")]

    kind = forms.ChoiceField(choices=KIND_CHOICES, widget=forms.RadioSelect, initial="credit")
    amount = forms.CharField(
        label="Amount (USD)", max_length=40,
        help_text="A decimal number of US dollars, e.g. 25 or 0.50. Adjustments may be negative.",
    )
    note = forms.CharField(
        max_length=500, required=False, widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text="Required for an adjustment: say why.",
    )
    # One token per displayed form, used as the credit's ledger reference: the ledger's
    # unique reference makes a double-submitted credit book only once.
    reference = forms.CharField(widget=forms.HiddenInput, required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not self.is_bound:
            self.initial.setdefault("reference", f"credit:{uuid.uuid4()}")

    def clean_reference(self):
        reference = self.cleaned_data.get("reference", "")
        if reference and not CREDIT_REFERENCE.match(reference):
            # Staff must not be able to claim another kind of reference (usage:…, redeem:…).
            raise forms.ValidationError("This form is out of date; reload it and submit again.")
        return reference or None

    def clean(self):
        cleaned = super().clean()
        kind = cleaned.get("kind")
        if kind is None:
            return cleaned
        if "amount" in cleaned:
            try:
                cleaned["amount"] = clean_usd(cleaned["amount"], allow_negative=(kind == "adjustment"))
            except forms.ValidationError as exc:
                self.add_error("amount", exc)
        if kind == "adjustment" and not cleaned.get("note", "").strip():
            self.add_error("note", "An adjustment needs a note saying why.")
        return cleaned


class AccountForm(forms.ModelForm):
    """Only the credit limit is editable; the admin saves it through ledger.set_credit_limit."""

    credit_limit = forms.CharField(
        label="Credit limit (USD)", max_length=40,
        help_text="How far below zero the balance may go; 0 for none.",
    )

    class Meta:
        model = Account
        fields = ["credit_limit"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk is not None:
            self.initial["credit_limit"] = usd(self.instance.credit_limit)

    def clean_credit_limit(self):
        text = self.cleaned_data["credit_limit"].strip()
        try:
            value = Decimal(text)
        except InvalidOperation:
            value = None
        if value is not None and value.is_finite() and value < 0:
            raise forms.ValidationError("A credit limit is zero or more.")
        if value is not None and value == 0:
            return ZERO
        return clean_usd(text)


class MintCodeForm(forms.ModelForm):
    """What staff choose when minting a code; the admin mints it with ledger.mint_code."""

    amount = forms.CharField(label="Amount (USD)", max_length=40, help_text="What the code credits, e.g. 20.")

    class Meta:
        model = RedeemCode
        fields = ["amount", "note", "expires_at"]

    def clean_amount(self):
        return clean_usd(self.cleaned_data["amount"])

    def clean_expires_at(self):
        expires_at = self.cleaned_data.get("expires_at")
        if expires_at is not None and expires_at <= timezone.now():
            raise forms.ValidationError("The expiry must be in the future.")
        return expires_at
