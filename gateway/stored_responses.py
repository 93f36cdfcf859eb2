"""Stored /v1/responses answers, always within one organization.

Every read takes the organization: another organization's id is "not found", exactly like
an id that never existed, so an outsider cannot learn that it does.
"""

import logging

from django.db import transaction
from django.db.models import QuerySet

from console.tenancy.audit import record

from .models import StoredResponse

log = logging.getLogger(__name__)


def stored_responses_of(organization_id: int) -> QuerySet:
    return StoredResponse.objects.filter(organization_id=organization_id)


def find_stored_response(organization_id: int, response_id) -> StoredResponse | None:
    if not isinstance(response_id, str):
        return None
    return stored_responses_of(organization_id).filter(response_id=response_id).first()


def store_response(key, input_items: list, response: dict) -> None:
    """Keep a finished answer for its organization. Never raises: the caller has been
    served and is charged either way; a response that could not be kept is only logged
    (a later previous_response_id naming it is then a 404, never a wrong conversation)."""
    body = {name: value for name, value in response.items() if name not in ("output", "usage")}
    try:
        StoredResponse.objects.create(
            response_id=response["id"], organization_id=key.organization_id, api_key_id=key.key_id,
            model=response["model"], status=response["status"], input_items=input_items,
            output_items=response["output"], usage=response.get("usage") or {}, response=body,
        )
    except Exception:
        log.exception("could not store response %s", response.get("id"))


def delete_stored_response(organization_id: int, response_id: str) -> bool:
    deleted, _ = stored_responses_of(organization_id).filter(response_id=response_id).delete()
    return bool(deleted)


def prune_stored_responses(sender=None, *, cutoff, **kwargs) -> int:
    """Stored responses older than usage retention's cutoff go with the usage records
    (billing.signals.usage_pruned)."""
    deleted, _ = StoredResponse.objects.filter(created_at__lt=cutoff).delete()
    return deleted


def stored_responses_with_keys() -> QuerySet:
    """Every organization's stored responses with the key that made each, for the console;
    scope it with get_for_org or a filter."""
    return StoredResponse.objects.select_related("api_key")


def delete_stored_response_by(actor, stored: StoredResponse) -> None:
    """A person deletes a stored response in the console: gone, and the audit log says who."""
    with transaction.atomic():
        stored.delete()
        record("response.deleted", organization=stored.organization_id, actor=actor, target=stored.response_id,
               model=stored.model)
