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


# The model's column is a PositiveIntegerField; a limit beyond this is no limit at all.
LIMIT_MAX = 2_147_483_647


class PerMinuteField(forms.IntegerField):
    def __init__(self, *, label, unit, **kwargs):
        super().__init__(
            required=False, min_value=1, max_value=LIMIT_MAX, label=label,
            widget=forms.NumberInput(attrs={"placeholder": "no limit", "min": 1, "inputmode": "numeric"}),
            help_text=f"Optional. At most this many {unit} in any one minute of this key's; empty: no limit.",
            error_messages={"invalid": "Enter a whole number, or leave it empty for no limit.",
                            "min_value": "Enter at least 1, or leave it empty for no limit."},
            **kwargs,
        )


class KeyLimitsForm(forms.Form):
    """What may be set on a key besides its name, when it is made and later."""

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
        help_text="Optional. The most this key may spend in its budget period.",
    )
    budget_period = forms.ChoiceField(
        choices=ApiKey.BudgetPeriod.choices,
        initial=ApiKey.BudgetPeriod.NONE,
        required=False,  # left out: "In all"
        label="Budget period",
        help_text="When the spend limit starts again: never (in all), or at 00:00 UTC each day, "
                  "Monday or first of the month.",
    )
    rpm_limit = PerMinuteField(label="Requests per minute", unit="requests")
    tpm_limit = PerMinuteField(label="Tokens per minute", unit="tokens (prompt and completion)")

    def __init__(self, *args, key: ApiKey | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        choices = model_choices()
        # A model the key allows that is no longer enabled stays offered (and ticked): left
        # out, saving would drop it, and a key allowed only such models would allow all.
        offered = {value for value, _ in choices}
        choices += [(m, f"{m} (not enabled)") for m in (key.allowed_models if key else ()) if m not in offered]
        self.fields["allowed_models"].choices = choices

    def clean_expires_on(self):
        day = self.cleaned_data["expires_on"]
        if day is not None and day <= timezone.localdate():
            raise forms.ValidationError("Choose a day after today.")
        return day

    def clean_budget_period(self):
        return self.cleaned_data["budget_period"] or ApiKey.BudgetPeriod.NONE

    def clean_spend_limit(self):
        text = self.cleaned_data["spend_limit"].strip().removeprefix("$").strip()
        if not text:
            return None
        try:
            return parse_amount(text)
        except BillingError as e:
            message = str(e)
            raise forms.ValidationError(message[:1].upper() + message[1:] + ".")

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("budget_period", ApiKey.BudgetPeriod.NONE) != ApiKey.BudgetPeriod.NONE \
                and "spend_limit" in cleaned and cleaned["spend_limit"] is None:
            self.add_error("spend_limit", "A budget period needs a spend limit: enter one, or choose "
                                          "“In all” as the period.")
        return cleaned

    @property
    def expires_at(self):
        day = self.cleaned_data.get("expires_on")
        if day is None:
            return None
        return timezone.make_aware(datetime.combine(day, time.min))

    @property
    def limits(self) -> dict:
        """The cleaned values as gateway.keys.api_keys takes them."""
        data = self.cleaned_data
        return {
            "allowed_models": data["allowed_models"],
            "expires_at": self.expires_at,
            "spend_limit": data["spend_limit"],
            "budget_period": data["budget_period"],
            "rpm_limit": data["rpm_limit"],
            "tpm_limit": data["tpm_limit"],
        }

    @classmethod
    def initial_for(cls, key: ApiKey) -> dict:
        return {
            "allowed_models": list(key.allowed_models or ()),
            "expires_on": key.expires_at.date() if key.expires_at else None,
            "spend_limit": "" if key.spend_limit is None else str(key.spend_limit),
            "budget_period": key.budget_period,
            "rpm_limit": key.rpm_limit,
            "tpm_limit": key.tpm_limit,
        }


class CreateKeyForm(KeyLimitsForm):
    name = KeyNameField()
    field_order = ["name"]


class RenameKeyForm(forms.Form):
    name = KeyNameField()


class CreateManagementKeyForm(forms.Form):
    name = KeyNameField()
    expires_on = KeyLimitsForm.base_fields["expires_on"]
    clean_expires_on = KeyLimitsForm.clean_expires_on
    expires_at = KeyLimitsForm.expires_at
