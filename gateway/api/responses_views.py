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
        return pipeline.serve(surface_for(request.auth), request._request, request.auth)


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


MOST_ITEMS = 100


def _limit(raw) -> int:
    if raw is None:
        return 20
    if not raw.isdigit() or not 1 <= int(raw) <= MOST_ITEMS:
        raise GatewayError(f"Invalid 'limit': must be an integer between 1 and {MOST_ITEMS}.", code="invalid_value",
                           param="limit")
    return int(raw)


class ResponseInputItemsView(ApiView):
    @openapi.response_input_items
    def get(self, request, response_id: str):
        stored = find_stored_response(request.auth.organization_id, response_id)
        if stored is None:
            raise _not_found(response_id)
        order = request.query_params.get("order", "desc")
        if order not in ("asc", "desc"):
            raise GatewayError("Invalid 'order': must be 'asc' or 'desc'.", code="invalid_value", param="order")
        limit = _limit(request.query_params.get("limit"))
        items = list(stored.input_items if order == "asc" else reversed(stored.input_items))
        after = request.query_params.get("after")
        if after is not None:
            ids = [item.get("id") for item in items]
            if after not in ids:
                raise GatewayError(f"No input item with id '{after}' in this response.", code="invalid_value",
                                   param="after")
            items = items[ids.index(after) + 1:]
        page = items[:limit]
        return HttpResponse(encode({
            "object": "list", "data": page, "has_more": len(items) > limit,
            "first_id": page[0]["id"] if page else None, "last_id": page[-1]["id"] if page else None,
        }), content_type="application/json")
