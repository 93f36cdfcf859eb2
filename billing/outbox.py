"""The durable outbox of settlements: where a request's usage goes when the live store
(Redis) cannot take it as the request ends, so that nothing served is ever lost.

Rows are written on the request path only in that failure, and drained by booking
(billing.reconcile): the events are booked into the ledger exactly once (request ids are
unique there), then the requests' holds are given back in Redis, then the rows go. A drain
that finds Redis still down has booked the usage all the same; the holds and the rows wait
for the next drain.
"""

import logging
from decimal import Decimal

from django.conf import settings
from django.db import DatabaseError

from . import live
from .ledger import publish
from .models import SettlementOutbox

log = logging.getLogger("mixgateway.billing")


def keep(event: dict, error: Exception) -> None:
    """Keep a settlement the live store refused; never raises."""
    reason = f"{type(error).__name__}: {error}"[:200]
    try:
        SettlementOutbox.objects.get_or_create(request_id=event["request_id"],
                                               defaults={"event": event, "error": reason})
    except DatabaseError:
        # Nothing durable is left: the event in the log is what an operator can replay.
        log.exception("settlement of request %s lost (Redis: %s; the outbox failed too): %s",
                      event["request_id"], reason, event)
        return
    log.warning("request %s settled into the outbox: the live store is unreachable (%s)",
                event["request_id"], reason)


def drain(book) -> int:
    """Book the kept settlements with `book` (billing.reconcile.book) and give back their
    holds; returns how many left the outbox."""
    drained = 0
    size = settings.BILLING_RECONCILE_BATCH
    while rows := list(SettlementOutbox.objects.order_by("pk")[:size]):
        touched = book([row.event for row in rows])
        try:
            for account, request_ids in touched.values():
                publish(account, request_ids)
            for row in rows:
                event = row.event
                live.release(event["organization_id"], event["key_id"], event["request_id"], Decimal(event["cost"]))
        except live.UNREACHABLE as e:
            log.warning("%s outboxed settlements booked; their holds wait for the live store (%s)",
                        len(rows), type(e).__name__)
            break
        SettlementOutbox.objects.filter(pk__in=[row.pk for row in rows]).delete()
        drained += len(rows)
        if len(rows) < size:
            break
    if drained:
        log.info("booked %s settlements from the outbox", drained)
    return drained
