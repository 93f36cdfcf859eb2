"""Forms of the API keys pages. They only validate; gateway.keys.api_keys makes the changes."""

from datetime import datetime, time

from django import forms
from django.utils import timezone

from billing.ledger import BillingError, parse_amount
from gateway.models import ApiKey
from gateway.queries import enabled_models

NAME_MAX = ApiKey._meta.get_field("name").max_length


def model_choices():
    return [(m.public_id, m.public_id) for m in enabled_models()]


class KeyNameField(forms.CharField):
    def __init__(self, **kwargs):
        super().__init__(
            max_length=NAME_MAX,
            widget=forms.TextInput(attrs={"placeholder": "e.g. production backend", "autocomplete": "off"}),
            help_text="So you can tell your keys apart.",
            **kwargs,
        )


class CreateKeyForm(forms.Form):
    name = KeyNameField()
    allowed_models = forms.MultipleChoiceField(
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="Allowed models",
        help_text="Tick none to allow every model, including ones added later.",
    )
    expires_on = forms.DateField(
        required=False,
        label="Expires on",
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text="Optional. The key stops working at 00:00 UTC on this day.",
    )
    spend_limit = forms.CharField(
        required=False,
        label="Spend limit (USD)",
        widget=forms.TextInput(attrs={"inputmode": "decimal", "placeholder": "no limit", "autocomplete": "off"}),
        help_text="Optional. The most this key may spend in total, or per budget period.",
    )
    budget_period = forms.ChoiceField(
        choices=ApiKey.BudgetPeriod.choices,
        initial=ApiKey.BudgetPeriod.NONE,
        required=False,
        label="Budget period",
        help_text="What the spend limit is per: it starts again from 0 at 00:00 UTC each day, on Mondays, "
                  "or on the 1st of each month.",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["allowed_models"].choices = model_choices()

    def clean_expires_on(self):
        day = self.cleaned_data["expires_on"]
        if day is not None and day <= timezone.localdate():
            raise forms.ValidationError("Choose a day after today.")
        return day

    def clean_spend_limit(self):
        text = self.cleaned_data["spend_limit"].strip().removeprefix("$")
        if not text:
            return None
        try:
            return parse_amount(text)
        except BillingError as e:
            message = str(e)
            raise forms.ValidationError(message[:1].upper() + message[1:] + ".")

    def clean_budget_period(self):
        return self.cleaned_data["budget_period"] or ApiKey.BudgetPeriod.NONE

    @property
    def expires_at(self):
        day = self.cleaned_data.get("expires_on")
        if day is None:
            return None
        return timezone.make_aware(datetime.combine(day, time.min))


class RenameKeyForm(forms.Form):
    name = KeyNameField()


class CreateManagementKeyForm(forms.Form):
    name = KeyNameField()
    expires_on = CreateKeyForm.base_fields["expires_on"]
    clean_expires_on = CreateKeyForm.clean_expires_on
    expires_at = CreateKeyForm.expires_at
