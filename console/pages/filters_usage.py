"""The usage log's filters, shared by the page and its CSV export so both show the same rows."""

from datetime import datetime, time, timedelta

from django import forms
from django.utils import timezone

from billing.models import UsageRecord
from billing.queries import days_of, models_used, usage_of
from gateway.models import ApiKey
from gateway.queries import keys_of

# The endings a request can have: the one enumeration billing books them by.
STATUSES = UsageRecord.Status.choices


class UsageFilterForm(forms.Form):
    key = forms.ModelChoiceField(queryset=ApiKey.objects.none(), required=False, empty_label="All keys")
    model = forms.ChoiceField(required=False)
    status = forms.ChoiceField(choices=[("", "Any status"), *STATUSES], required=False)
    date_from = forms.DateField(required=False, label="From", widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(required=False, label="To", widget=forms.DateInput(attrs={"type": "date"}))

    def __init__(self, data, *, org):
        super().__init__(data)
        # Only this organization's keys and models are offered, and only they validate:
        # another tenant's key id is an invalid choice, not a way to probe its rows.
        self.fields["key"].queryset = keys_of(org).order_by("name", "prefix")
        self.fields["key"].label_from_instance = lambda k: f"{k.name or 'unnamed'} ({k.prefix}…)"
        self.fields["model"].choices = [("", "All models"), *((m, m) for m in models_used(org))]

    def is_filtering(self) -> bool:
        return any(self.data.get(name) for name in self.fields)


def start_of(day):
    return datetime.combine(day, time.min, tzinfo=timezone.get_current_timezone())


def filtered_usage(org, form: UsageFilterForm):
    """The organization's usage records, newest first, narrowed by the valid filters of
    `form` (an invalid field is shown with its error and ignored)."""
    form.is_valid()
    wanted = form.cleaned_data
    records = usage_of(org).select_related("api_key").order_by("-created_at", "-id")
    if wanted.get("key"):
        records = records.filter(api_key=wanted["key"])
    if wanted.get("model"):
        records = records.filter(model=wanted["model"])
    if wanted.get("status"):
        records = records.filter(status=wanted["status"])
    # Whole days in the console's time zone, both ends included; a range, not __date,
    # so the (organization, -created_at) index still serves it.
    if wanted.get("date_from"):
        records = records.filter(created_at__gte=start_of(wanted["date_from"]))
    if wanted.get("date_to"):
        records = records.filter(created_at__lt=start_of(wanted["date_to"] + timedelta(days=1)))
    return records


def filtered_days(org, form: UsageFilterForm):
    """The per-day sums matching the same filters, or None when they cannot answer exactly:
    they are summed per UTC day, so only a console in UTC can read whole days from them."""
    if timezone.get_current_timezone_name() != "UTC":
        return None
    form.is_valid()
    wanted = form.cleaned_data
    days = days_of(org)
    if wanted.get("key"):
        days = days.filter(key_id=wanted["key"].pk)
    if wanted.get("model"):
        days = days.filter(model=wanted["model"])
    if wanted.get("status"):
        days = days.filter(status=wanted["status"])
    if wanted.get("date_from"):
        days = days.filter(day__gte=wanted["date_from"])
    if wanted.get("date_to"):
        days = days.filter(day__lte=wanted["date_to"])
    return days
