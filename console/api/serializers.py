"""The management API's JSON: what each object looks like, and what a request may send.

Money is a decimal string both ways ("0.00000326"), exact to the picodollar; a JSON number
is refused rather than rounded. Request bodies may hold only the fields named here, so a
misspelt limit is an error instead of a limit silently not set.
"""

import re

from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.exceptions import ErrorDetail

from billing.ledger import BillingError, parse_amount
from billing.models import LedgerEntry, UsageRecord
from billing.money import usd
from gateway.keys.api_keys import key_status
from gateway.keys.key_usage import period_spend
from gateway.models import ApiKey
from gateway.queries import enabled_models

DECIMAL_STRING = r"^-?[0-9]+(\.[0-9]+)?$"
POSTGRES_INT_MAX = 2**31 - 1
_PLAIN_DECIMAL = re.compile(r"[0-9]+(\.[0-9]+)?")  # what a request may send: positive amounts only


@extend_schema_field({"type": "string", "pattern": DECIMAL_STRING, "example": "0.00000326",
                      "description": "USD as an exact decimal string"})
class UsdField(serializers.Field):
    default_error_messages = {
        "not_a_string": "Send money as a decimal string, e.g. \"12.50\", not a JSON number.",
        "not_plain": "Write money as plain decimal digits, e.g. \"12.50\" (no exponent, sign or spaces).",
    }

    def to_representation(self, value):
        return usd(value)

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("not_a_string")
        if not _PLAIN_DECIMAL.fullmatch(data):
            self.fail("not_plain")
        try:
            return parse_amount(data)
        except BillingError as e:
            raise serializers.ValidationError(str(e))


class StrictSerializer(serializers.Serializer):
    def to_internal_value(self, data):
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError(
                    {unknown[0]: [ErrorDetail(f"Unknown parameter; expected one of {sorted(self.fields)}.",
                                              code="unknown_parameter")]})
        return super().to_internal_value(data)


# -- organization ------------------------------------------------------------------------


class OrganizationSerializer(serializers.Serializer):
    slug = serializers.CharField()
    name = serializers.CharField()
    balance_usd = UsdField()
    credit_limit_usd = UsdField()
    low_balance_threshold_usd = UsdField(allow_null=True)
    webhook_url = serializers.CharField(allow_blank=True)


class OrganizationUpdatedSerializer(OrganizationSerializer):
    webhook_secret = serializers.CharField(
        allow_null=True, help_text="The webhook's signing secret, only in the answer that set or changed the URL.")


class OrganizationUpdateSerializer(StrictSerializer):
    low_balance_threshold_usd = UsdField(required=False, allow_null=True,
                                         help_text="Alert below this balance; null turns the alert off.")
    webhook_url = serializers.URLField(required=False, allow_null=True, allow_blank=True, max_length=500,
                                       help_text="http(s) URL for signed event POSTs; empty or null removes it.")

    def validate_webhook_url(self, value):
        if value and not value.lower().startswith(("http://", "https://")):
            raise serializers.ValidationError("The webhook URL must be http:// or https://.")
        return value or ""


# -- keys --------------------------------------------------------------------------------


class KeySerializer(serializers.ModelSerializer):
    status = serializers.SerializerMethodField()
    spend_limit_usd = UsdField(source="spend_limit", allow_null=True)
    spent_this_period_usd = serializers.SerializerMethodField(
        help_text="USD the ledger has booked for this key in its current budget_period (in all for `none`); "
                  "requests of the last seconds are booked shortly after they end.")
    period_resets_at = serializers.SerializerMethodField(
        help_text="When the current budget_period ends and the spend starts from 0 (UTC); null for `none`.")

    class Meta:
        model = ApiKey
        fields = ["id", "name", "prefix", "status", "created_at", "last_used_at", "expires_at", "revoked_at",
                  "allowed_models", "spend_limit_usd", "budget_period", "spent_this_period_usd", "period_resets_at",
                  "rpm_limit", "tpm_limit"]
        read_only_fields = fields

    def to_representation(self, key):
        key.period_spend = period_spend(key)  # (spent, limit, resets_at), read once for both fields
        return super().to_representation(key)

    @extend_schema_field({"type": "string", "enum": ["active", "revoked", "expired"]})
    def get_status(self, key) -> str:
        return key_status(key)

    @extend_schema_field({"type": "string", "example": "0.00000326"})
    def get_spent_this_period_usd(self, key) -> str:
        return usd(key.period_spend[0])

    @extend_schema_field({"type": "string", "format": "date-time", "nullable": True})
    def get_period_resets_at(self, key) -> str | None:
        resets_at = key.period_spend[2]
        return None if resets_at is None else serializers.DateTimeField().to_representation(resets_at)

    def get_fields(self):
        fields = super().get_fields()
        fields["allowed_models"] = serializers.ListField(child=serializers.CharField(), read_only=True)
        return fields


class KeyCreatedSerializer(KeySerializer):
    secret = serializers.CharField(read_only=True, help_text="The key itself, shown in this answer only.")

    class Meta(KeySerializer.Meta):
        fields = [*KeySerializer.Meta.fields, "secret"]
        read_only_fields = fields


def _limit():
    return serializers.IntegerField(required=False, allow_null=True, min_value=1, max_value=POSTGRES_INT_MAX)


class KeyWriteSerializer(StrictSerializer):
    """POST and PATCH /keys: every field optional (PATCH changes only what it names)."""

    name = serializers.CharField(required=False, allow_blank=True, max_length=100)
    allowed_models = serializers.ListField(child=serializers.CharField(max_length=300), required=False,
                                           max_length=1000,
                                           help_text="`provider:modelId`s this key may call; empty: every model.")
    expires_at = serializers.DateTimeField(required=False, allow_null=True,
                                           help_text="When the key stops working; null: never.")
    spend_limit_usd = UsdField(required=False, allow_null=True,
                               help_text="Most USD this key may spend per budget_period; null: no limit.")
    budget_period = serializers.ChoiceField(choices=ApiKey.BudgetPeriod.choices, required=False)
    rpm_limit = _limit()
    tpm_limit = _limit()

    def validate_allowed_models(self, value):
        known = {model.public_id for model in enabled_models()}
        for public_id in value:
            if public_id not in known:
                raise serializers.ValidationError(f"{public_id!r} is not an enabled model of this gateway.")
        return list(dict.fromkeys(value))

    def validate_expires_at(self, value):
        if value is not None and value <= timezone.now():
            raise serializers.ValidationError("Choose a time in the future (or null for never).")
        return value

    def changes(self) -> dict:
        """The validated fields under the names gateway.keys.api_keys takes."""
        data = dict(self.validated_data)
        if "spend_limit_usd" in data:
            data["spend_limit"] = data.pop("spend_limit_usd")
        return data


# -- usage and the ledger ------------------------------------------------------------------


class UsageSerializer(serializers.ModelSerializer):
    key_id = serializers.IntegerField(source="api_key_id", allow_null=True)
    served_by = serializers.CharField(source="model")
    cost_usd = UsdField(source="cost")

    class Meta:
        model = UsageRecord
        fields = ["request_id", "created_at", "key_id", "model", "served_by", "status", "basis", "prompt_tokens",
                  "completion_tokens", "cost_usd"]
        read_only_fields = fields


class UsageFilterSerializer(StrictSerializer):
    since = serializers.DateTimeField(required=False, help_text="Requests that arrived at or after this time.")
    until = serializers.DateTimeField(required=False, help_text="Requests that arrived before this time.")
    model = serializers.CharField(required=False, max_length=300)
    key = serializers.IntegerField(required=False, min_value=1, max_value=2**63 - 1, help_text="A key id.")
    status = serializers.ChoiceField(choices=UsageRecord.Status.choices, required=False)
    # Pagination's own parameters, read by the paginator.
    cursor = serializers.CharField(required=False)
    limit = serializers.IntegerField(required=False)


class UsageSummaryFilterSerializer(UsageFilterSerializer):
    group_by = serializers.ChoiceField(choices=["day", "model", "key"])
    cursor = None
    limit = None


class UsageTotalsSerializer(serializers.Serializer):
    requests = serializers.IntegerField()
    prompt_tokens = serializers.IntegerField()
    completion_tokens = serializers.IntegerField()
    cost_usd = UsdField()


class UsageGroupSerializer(UsageTotalsSerializer):
    day = serializers.DateField(required=False, help_text="With group_by=day (UTC).")
    model = serializers.CharField(required=False, help_text="With group_by=model.")
    key_id = serializers.IntegerField(required=False, allow_null=True, help_text="With group_by=key.")


class UsageSummarySerializer(serializers.Serializer):
    group_by = serializers.ChoiceField(choices=["day", "model", "key"])
    results = UsageGroupSerializer(many=True)


class LedgerEntrySerializer(serializers.ModelSerializer):
    amount_usd = UsdField(source="amount")
    balance_after_usd = UsdField(source="balance_after")

    class Meta:
        model = LedgerEntry
        fields = ["id", "created_at", "kind", "amount_usd", "balance_after_usd", "reference", "note"]
        read_only_fields = fields


class PageFilterSerializer(StrictSerializer):
    cursor = serializers.CharField(required=False)
    limit = serializers.IntegerField(required=False)


# -- the operator's provisioning -------------------------------------------------------------


class NewOrganizationSerializer(StrictSerializer):
    name = serializers.CharField(max_length=200)
    owner_email = serializers.EmailField(max_length=150)  # it becomes the username too


class NewOrganizationCreatedSerializer(serializers.Serializer):
    slug = serializers.CharField()


class CreditSerializer(StrictSerializer):
    amount_usd = UsdField()
    note = serializers.CharField(required=False, allow_blank=True, max_length=500, default="")
