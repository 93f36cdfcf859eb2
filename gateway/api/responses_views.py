"""/v1/responses: create (gateway.pipeline, with the Responses surface), and the
organization's stored responses, retrieved and deleted by id."""

from django.http import HttpResponse

from .. import pipeline
from ..parsing.encoding import encode
from ..stored_responses import delete_stored_response, find_stored_response
from ..surfaces.responses import stored_answer, surface_for
from . import openapi
from .errors import GatewayError
from .views import ApiView


def _not_found(response_id: str) -> GatewayError:
    # Another organization's response is exactly as unknown as one that never existed.
    return GatewayError(f"No response found with id '{response_id}'.", code="not_found", param="response_id",
                        status=404)


class ResponsesView(ApiView):
    @openapi.responses_create
    def post(self, request):
        return pipeline.serve(surface_for(request.auth), request, request.auth)


class ResponseDetailView(ApiView):
    @openapi.response_retrieve
    def get(self, request, response_id: str):
        stored = find_stored_response(request.auth.organization_id, response_id)
        if stored is None:
            raise _not_found(response_id)
        body, cost = stored_answer(stored)
        return HttpResponse(encode(body, cost), content_type="application/json")

    @openapi.response_delete
    def delete(self, request, response_id: str):
        if not delete_stored_response(request.auth.organization_id, response_id):
            raise _not_found(response_id)
        return HttpResponse(encode({"id": response_id, "object": "response", "deleted": True}),
                            content_type="application/json")
