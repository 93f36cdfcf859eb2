"""GET and PATCH /api/v1/organization: the caller's organization and its alert settings."""

from django.db import transaction
from drf_spectacular.utils import extend_schema
from rest_framework.response import Response

from billing.ledger import balance_of
from billing.low_balance import set_low_balance_threshold
from billing.money import ZERO
from billing.queries import account_of
from console.tenancy.webhooks import set_webhook_url

from .base import ManagementView
from .serializers import OrganizationSerializer, OrganizationUpdatedSerializer, OrganizationUpdateSerializer


def organization_fields(org) -> dict:
    account = account_of(org)
    return {
        "slug": org.slug,
        "name": org.name,
        "balance_usd": balance_of(org.pk),
        "credit_limit_usd": account.credit_limit if account else ZERO,
        "low_balance_threshold_usd": account.low_balance_threshold if account else None,
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
        org, actor = self.organization, self.caller.actor

        @transaction.atomic  # both settings or neither
        def work():
            secret = None
            if "low_balance_threshold_usd" in wanted:
                set_low_balance_threshold(org.pk, wanted["low_balance_threshold_usd"], actor=actor)
            if "webhook_url" in wanted:
                secret = set_webhook_url(org, wanted["webhook_url"] or "", actor=actor)
            return Response(OrganizationUpdatedSerializer({**organization_fields(org), "webhook_secret": secret}).data)

        return self.change(work)
