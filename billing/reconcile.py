"""Booking usage events into the ledger, in batches, exactly once per request id.

A batch is taken from the store, booked in one database transaction, pushed back to the
store as new balances, then acknowledged. A worker that dies anywhere in between leaves
its batch unacknowledged; another worker takes it over and books only what the database
does not already have, because request ids and ledger references are unique.
"""

import logging
import os
import socket
from collections import defaultdict
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import Max

from .charging import event_time
from .ledger import account_for, publish
from .models import Account, LedgerEntry, UsageRecord
from .reservations import get_store
from .signals import usage_booked

log = logging.getLogger("mixgateway.billing")


def _record(event: dict) -> UsageRecord:
    return UsageRecord(
        request_id=event["request_id"],
        organization_id=event["organization_id"],
        api_key_id=event["key_id"],
        catalog_model_id=event["model_id"],
        model=event["model"],
        status=event["status"],
        http_status=event["http_status"],
        error_code=event["error_code"] or "",
        stream=event["stream"],
        prompt_tokens=event["prompt_tokens"],
        completion_tokens=event["completion_tokens"],
        cached_tokens=event["cached_tokens"],
        reasoning_tokens=event["reasoning_tokens"],
        basis=event["basis"],
        input_per_mtok=Decimal(event["input_per_mtok"]),
        output_per_mtok=Decimal(event["output_per_mtok"]),
        cached_input_per_mtok=(None if event["cached_input_per_mtok"] is None
                               else Decimal(event["cached_input_per_mtok"])),
        cost=Decimal(event["cost"]),
        latency_ms=event["latency_ms"],
        ttft_ms=event["ttft_ms"],
        created_at=event_time(event),
    )


@transaction.atomic
def book(events: list[dict]) -> dict[int, tuple[Account, list[str]]]:
    """Write the events the ledger does not have yet; return each touched account with
    the request ids now booked for it."""
    by_request = {e["request_id"]: e for e in events}
    org_ids = sorted({e["organization_id"] for e in by_request.values()})
    for org_id in org_ids:
        account_for(org_id)
    # Lock in a fixed order so two workers booking overlapping batches cannot deadlock;
    # only after the lock is the "already booked?" question answered for certain.
    accounts = {a.organization_id: a for a in
                Account.objects.select_for_update().filter(organization_id__in=org_ids).order_by("pk")}
    booked = set(UsageRecord.objects.filter(request_id__in=by_request).values_list("request_id", flat=True))
    records, entries = [], []
    for request_id, event in by_request.items():
        if request_id in booked:
            continue
        record = _record(event)
        if record.cost > 0:
            account = accounts[record.organization_id]
            account.balance -= record.cost
            record.ledger_entry = LedgerEntry(
                account=account, kind=LedgerEntry.Kind.USAGE, amount=-record.cost, balance_after=account.balance,
                reference=f"usage:{request_id}", note=f"{record.model} {record.prompt_tokens}+"
                f"{record.completion_tokens} tokens",
            )
            entries.append(record.ledger_entry)
        records.append(record)
    LedgerEntry.objects.bulk_create(entries)
    for record in records:
        record.ledger_entry_id = record.ledger_entry.pk if record.ledger_entry else None
    UsageRecord.objects.bulk_create(records)
    for entry in entries:
        entry.account.ledger_head = max(entry.account.ledger_head, entry.pk)
    for account in accounts.values():
        account.save(update_fields=["balance", "ledger_head", "updated_at"])
    usage_booked.send(sender=UsageRecord, records=records)
    done = defaultdict(list)
    for event in by_request.values():
        done[event["organization_id"]].append(event["request_id"])
    return {org_id: (accounts[org_id], ids) for org_id, ids in done.items()}


def reconcile(max_batches: int | None = None) -> int:
    """Book everything waiting; returns how many events were processed."""
    store = get_store()
    consumer = f"{socket.gethostname()}-{os.getpid()}"
    size = settings.BILLING_RECONCILE_BATCH
    total = batches = 0
    while max_batches is None or batches < max_batches:
        batch = store.read_events(consumer, size, settings.BILLING_RECLAIM_IDLE_SECONDS * 1000)
        if not batch:
            break
        touched = book([event for _, event in batch])
        for account, request_ids in touched.values():
            publish(account, request_ids)
        store.ack([event_id for event_id, _ in batch])
        total += len(batch)
        batches += 1
        if len(batch) < size:
            break
    if total:
        log.info("reconciled %s usage events", total)
    return total


def ledger_is_consistent(organization_id: int) -> bool:
    """The cached balance equals the sum of the entries up to its head."""
    account = Account.objects.get(organization_id=organization_id)
    entries = LedgerEntry.objects.filter(account=account)
    total = sum((e.amount for e in entries.filter(pk__lte=account.ledger_head)), Decimal(0))
    head = entries.aggregate(head=Max("pk"))["head"] or 0
    return total == account.balance and head == account.ledger_head
