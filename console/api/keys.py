"""/api/v1/keys: the organization's inference keys ("sk-"), made, changed and revoked
through gateway.keys.api_keys like the console's keys page. Management and playground keys are
not listed and answer 404 here."""

from drf_spectacular.utils import extend_schema
from rest_framework.response import Response

from gateway.keys.api_keys import create_api_key, revoke_api_key, update_api_key
from gateway.models import ApiKey

from .base import ManagementView
from .errors import NotFound
from .serializers import KeyCreatedSerializer, KeySerializer, KeyWriteSerializer, PageFilterSerializer

TAGS = ["keys"]


class KeysMixin:
    serializer_class = KeySerializer

    def get_queryset(self):
        return ApiKey.objects.filter(organization=self.organization, kind=ApiKey.Kind.STANDARD)

    def key(self, pk) -> ApiKey:
        key = self.get_queryset().filter(pk=pk).first()
        if key is None:
            raise NotFound("No such key in this organization.", param="id")
        return key


class KeyListView(KeysMixin, ManagementView):
    @extend_schema(operation_id="keys_list", tags=TAGS, summary="List the inference keys, newest first",
                   responses={200: KeySerializer(many=True)})
    def get(self, request):
        self.valid(PageFilterSerializer, request.query_params)
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(KeySerializer(page, many=True).data)

    @extend_schema(operation_id="keys_create", tags=TAGS, summary="Create an inference key",
                   description="Answers 201 with the key's `secret`, shown in this answer only.",
                   request=KeyWriteSerializer, responses={201: KeyCreatedSerializer})
    def post(self, request):
        wanted = self.valid(KeyWriteSerializer, request.data).changes()

        def work():
            key, secret = create_api_key(self.organization, name=wanted.pop("name", ""),
                                         created_by=self.caller.actor, **wanted)
            key.secret = secret
            return Response(KeyCreatedSerializer(key).data, status=201)

        return self.change(work)


class KeyDetailView(KeysMixin, ManagementView):
    @extend_schema(operation_id="keys_retrieve", tags=TAGS, summary="One inference key")
    def get(self, request, pk):
        return Response(KeySerializer(self.key(pk)).data)

    @extend_schema(operation_id="keys_update", tags=TAGS, summary="Change a key's name and limits",
                   description="Only the fields sent change. Gateway processes see new limits within the "
                               "key-memory bound (GATEWAY_KEY_MEMORY_SECONDS).",
                   request=KeyWriteSerializer, responses={200: KeySerializer})
    def patch(self, request, pk):
        key = self.key(pk)
        wanted = self.valid(KeyWriteSerializer, request.data, partial=True).changes()

        def work():
            return Response(KeySerializer(update_api_key(key, actor=self.caller.actor, **wanted)).data)

        return self.change(work)

    @extend_schema(operation_id="keys_revoke", tags=TAGS, summary="Revoke a key",
                   description="The gateway refuses it within the key-memory bound; revoking again is harmless.",
                   responses={204: None})
    def delete(self, request, pk):
        key = self.key(pk)

        def work():
            revoke_api_key(key, actor=self.caller.actor)
            return Response(status=204)

        return self.change(work)
