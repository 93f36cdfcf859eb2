"""The operator's provisioning endpoints (ADMIN_API_TOKEN; 404 while it is unset): create
an organization with its owner, credit an organization. Same actions as the
create_tenant and credit commands."""

from drf_spectacular.utils import extend_schema
from rest_framework.response import Response

from billing.ledger import credit
from console.tenancy.actions import create_organization
from console.tenancy.models import Organization

from .base import OperatorView
from .errors import NotFound
from .serializers import CreditSerializer, LedgerEntrySerializer, NewOrganizationCreatedSerializer, NewOrganizationSerializer

TAGS = ["operators"]


class OperatorOrganizationsView(OperatorView):
    @extend_schema(operation_id="admin_organizations_create", tags=TAGS,
                   summary="Create an organization and its owner (made if new)",
                   request=NewOrganizationSerializer, responses={201: NewOrganizationCreatedSerializer})
    def post(self, request):
        wanted = self.valid(NewOrganizationSerializer, request.data).validated_data

        def work():
            org = create_organization(wanted["name"], wanted["owner_email"])
            return Response(NewOrganizationCreatedSerializer(org).data, status=201)

        return self.change(work)


class OperatorCreditsView(OperatorView):
    @extend_schema(operation_id="admin_organizations_credit", tags=TAGS,
                   summary="Credit an organization's balance",
                   description="Send an Idempotency-Key: a retried credit is then booked exactly once.",
                   request=CreditSerializer, responses={201: LedgerEntrySerializer})
    def post(self, request, slug):
        org = Organization.objects.filter(slug=slug).first()
        if org is None:
            raise NotFound("No organization has this slug.", param="slug")
        wanted = self.valid(CreditSerializer, request.data).validated_data

        def work():
            entry = credit(org.pk, wanted["amount_usd"], note=wanted["note"])
            return Response(LedgerEntrySerializer(entry).data, status=201)

        return self.change(work)
