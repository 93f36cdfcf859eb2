"""The dead-letter place for usage events the ledger refuses even once clamped.

An event comes here only after booking it on its own failed, so every other event of its
batch is booked. Quarantining lets the stream forget the event, not the money: the row
keeps the event as queued, cost and all, and a replay (billing.reconcile.replay) books
it through the same code once the cause is fixed.
"""

import hashlib
import json
import logging

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from .clamping import fit_text, is_storable_request_id
from .models import QuarantinedUsageEvent

log = logging.getLogger("mixgateway.billing")

MAX_ERROR_CHARS = 2000


def event_json(event) -> str:
    # ASCII with escapes: NUL and lone surrogates survive as text PostgreSQL can store.
    return json.dumps(event, ensure_ascii=True, default=repr)


def event_of(row: QuarantinedUsageEvent):
    return json.loads(row.event)


def quarantine_key(event) -> str:
    """The event's request id, or a digest when the id itself cannot be stored."""
    request_id = event.get("request_id") if isinstance(event, dict) else None
    if is_storable_request_id(request_id):
        return request_id
    unreadable = event_json(request_id if isinstance(event, dict) else event)
    return "sha256:" + hashlib.sha256(unreadable.encode()).hexdigest()


def quarantine(event, error: BaseException, organization_id: int | None) -> None:
    """Keep the event out of the ledger's way, counting the attempts if it was kept before."""
    key = quarantine_key(event)
    reason = fit_text(f"{type(error).__name__}: {error}", MAX_ERROR_CHARS)
    log.warning("usage event %s quarantined: %s", key, reason)
    if _seen_again(key, reason):
        return
    try:
        with transaction.atomic():
            QuarantinedUsageEvent.objects.create(request_id=key, organization_id=organization_id,
                                                 event=event_json(event), error=reason,
                                                 last_seen_at=timezone.now())
    except IntegrityError:
        _seen_again(key, reason)  # another worker quarantined it a moment ago


def _seen_again(key: str, reason: str) -> bool:
    return bool(QuarantinedUsageEvent.objects.filter(request_id=key).update(
        attempts=F("attempts") + 1, last_seen_at=timezone.now(), error=reason))
