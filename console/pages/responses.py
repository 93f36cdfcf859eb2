"""Stored responses (/v1/responses with `store`): the organization's list, newest first, one
response's input and output items, and deleting one.

Every member may read them (members see usage too); admins and owners may delete any, a
member only those made with a key they created, as with the keys themselves.
"""

import json

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.urls import path
from django.views.decorators.http import require_POST

from console.pages.common import org_view
from console.tenancy.access import get_for_org, has_role
from console.tenancy.models import Membership
from gateway.stored_responses import delete_stored_response_by, stored_responses_with_keys

PAGE_SIZE = 50


def can_delete(request, stored) -> bool:
    if has_role(request.membership, Membership.Role.ADMIN):
        return True
    return stored.api_key is not None and stored.api_key.created_by_id == request.user.pk


def _text(content) -> str:
    if isinstance(content, str):
        return content
    parts = []
    for part in content if isinstance(content, list) else ():
        if not isinstance(part, dict):
            continue
        if part.get("type") == "input_image":
            parts.append(f"[image {str(part.get('image_url', ''))[:80]}]")
        else:
            parts.append(str(part.get("text") or part.get("refusal") or ""))
    return "\n".join(parts)


def shown_item(item) -> dict:
    """One input or output item as the page shows it: who or what, and its text."""
    if not isinstance(item, dict):
        return {"label": "item", "text": json.dumps(item)}
    kind = item.get("type", "message")
    if kind == "message":
        return {"label": item.get("role", "message"), "text": _text(item.get("content"))}
    if kind == "function_call":
        return {"label": f"call {item.get('name', '')}", "text": str(item.get("arguments", "")),
                "call_id": item.get("call_id")}
    if kind == "function_call_output":
        return {"label": "call output", "text": _text(item.get("output")), "call_id": item.get("call_id")}
    return {"label": kind, "text": json.dumps(item)}


@org_view()
def index(request):
    rows = stored_responses_with_keys().filter(organization=request.org).order_by("-created_at", "-pk")
    page = Paginator(rows, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "console/responses/index.html", {"title": "Stored responses", "page": page})


def _stored(request, response_id: str):
    return get_for_org(stored_responses_with_keys(), request.org, response_id=response_id)


@org_view()
def detail(request, response_id: str):
    stored = _stored(request, response_id)
    return render(request, "console/responses/detail.html", {
        "title": f"Response {stored.response_id}", "stored": stored, "can_delete": can_delete(request, stored),
        "input_items": [shown_item(i) for i in stored.input_items],
        "output_items": [shown_item(i) for i in stored.output_items],
        "instructions": stored.response.get("instructions"),
    })


@require_POST
@org_view()
def delete(request, response_id: str):
    stored = _stored(request, response_id)
    if not can_delete(request, stored):
        raise PermissionDenied("Members may delete only the responses of keys they created.")
    delete_stored_response_by(request.user, stored)
    messages.success(request, f"Deleted stored response {stored.response_id}.")
    return redirect("responses")


urlpatterns = [
    path("responses/", index, name="responses"),
    path("responses/<str:response_id>/", detail, name="responses_detail"),
    path("responses/<str:response_id>/delete", delete, name="responses_delete"),
]
