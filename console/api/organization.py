"""GET and PATCH /api/v1/organization: the caller's organization and its alert settings."""

from drf_spectacular.utils import extend_schema
from rest_framework.response import Response

from billing.ledger import balance_of
from billing.models import Account
from billing.money import ZERO
from console.organization_settings import set_alert_settings

from .base import ManagementView
from .serializers import OrganizationSerializer, OrganizationUpdatedSerializer, OrganizationUpdateSerializer


def organization_fields(org) -> dict:
    account = Account.objects.filter(organization=org).first()
    return {
        "slug": org.slug,
        "name": org.name,
        "balance_usd": balance_of(org.pk),
        "credit_limit_usd": account.credit_limit if account else ZERO,
        "low_balance_threshold_usd": org.low_balance_threshold,
        "webhook_url": org.webhook_url,
    }


class OrganizationView(ManagementView):
    @extend_schema(operation_id="organization_retrieve", tags=["organization"],
                   summary="The organization of this management key", responses={200: OrganizationSerializer})
    def get(self, request):
        return Response(OrganizationSerializer(organization_fields(self.organization)).data)

    @extend_schema(operation_id="organization_update", tags=["organization"],
                   summary="Set the low-balance threshold and the webhook URL",
                   description="Setting or changing `webhook_url` makes a new signing secret, returned once as "
                               "`webhook_secret` (null in every other answer).",
                   request=OrganizationUpdateSerializer, responses={200: OrganizationUpdatedSerializer})
    def patch(self, request):
        wanted = self.valid(OrganizationUpdateSerializer, request.data).validated_data
        org = self.organization

        def work():
            changes = {}
            if "low_balance_threshold_usd" in wanted:
                changes["low_balance_threshold"] = wanted["low_balance_threshold_usd"]
            if "webhook_url" in wanted:
                changes["webhook_url"] = wanted["webhook_url"] or ""
            secret = set_alert_settings(org, actor=self.caller.actor, **changes)
            return Response(OrganizationUpdatedSerializer({**organization_fields(org), "webhook_secret": secret}).data)

        return self.change(work)
