"""Booking usage events into the ledger, in batches, exactly once per request id.

A batch is taken from the store, booked in one database transaction, pushed back to the
store as new balances, then acknowledged. A worker that dies anywhere in between leaves
its batch unacknowledged; another worker takes it over and books only what the database
does not already have, because request ids and ledger references are unique.

One bad event never holds up the others: each record is first fitted to its columns
(billing.clamping); if the batch is still refused, its events are booked one by one, each
in its own savepoint, and those refused alone are quarantined (billing.quarantine).
"""

import logging
import os
import socket
from collections import defaultdict
from functools import partial
from operator import itemgetter

from django.conf import settings
from django.db import InterfaceError, OperationalError, ProgrammingError, connection, transaction
from django.db.models import Max, Q, Sum
from django.utils import timezone

from console.tenancy.models import Organization

from . import alerts, bulk_copy, daily, live_stream, outbox
from .clamping import forget_missing_references, is_storable_request_id
from .ledger import account_for, publish
from .models import Account, LedgerEntry, QuarantinedUsageEvent, UsageRecord
from .money import ZERO, to_units
from .quarantine import event_of, quarantine
from .signals import usage_booked
from .usage_rows import stamp, usage_entry, usage_row, write_entries_with_orm, write_records_with_orm

log = logging.getLogger("mixgateway.billing")


# Failures that say nothing about the events (the database is unreachable, the schema is
# not migrated): the batch stays unacknowledged and is tried again, nothing is quarantined.
NOT_THE_EVENTS_FAULT = (OperationalError, InterfaceError, ProgrammingError)


@transaction.atomic
def book(events: list[dict], *, maybe_booked: bool = True) -> dict[int, tuple[Account, list[str]]]:
    """Write the events the ledger does not have yet; return each touched account with the
    request ids now settled for it. An event the ledger refuses even clamped is quarantined
    (billing.quarantine) and returned too: the live store must stop holding its cost as
    pending, while the quarantine keeps it owed (docs/billing.md, "Quarantined events").

    maybe_booked=False says the events were delivered for the first time, so the ledger
    almost surely has none of them: the batch is written without asking first, and the
    unique request ids refuse it if one was booked after all (an outboxed settlement that
    Redis had queued too, a stream restored from an older snapshot); it is then written
    again asking, before any event is quarantined."""
    batch = list(_bookable(events).values())
    org_ids = {event["organization_id"] for event in batch}
    _open_accounts(org_ids)
    if connection.vendor == "postgresql":
        # Foreign keys are checked at commit by default, where one bad reference would
        # refuse the whole batch; checked at once, they fail inside the event's savepoint.
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    accounts = None
    for ask in (False, True) if not maybe_booked else (True,):
        try:
            with transaction.atomic():
                accounts = _write(batch, org_ids, already_booked_check=ask)
            break
        except NOT_THE_EVENTS_FAULT:
            raise
        except Exception as exc:
            if not ask:
                log.info("a batch of %s fresh usage events was refused (%s); writing it again, asking which "
                         "are booked already", len(batch), type(exc).__name__)
                continue
            log.warning("a batch of %s usage events was refused (%s: %s); booking them one by one",
                        len(batch), type(exc).__name__, exc)
    if accounts is None:
        accounts = {}
        for event in batch:
            accounts.update(_book_alone(event))
    done = defaultdict(list)
    for event in batch:
        done[event["organization_id"]].append(event["request_id"])
    return {org_id: (accounts[org_id], ids) for org_id, ids in done.items()}


def _bookable(events: list) -> dict[str, dict]:
    """The events by request id, once each; those that name no storable request or no
    existing organization are quarantined at once."""
    by_request = {}
    for event in events:
        if (isinstance(event, dict) and is_storable_request_id(event.get("request_id"))
                and type(event.get("organization_id")) is int):
            by_request.setdefault(event["request_id"], event)
        else:
            quarantine(event, ValueError("not a usage event: no storable request id or no organization id"), None)
    org_ids = set(Organization.objects.filter(pk__in={e["organization_id"] for e in by_request.values()})
                  .values_list("pk", flat=True))
    for request_id, event in list(by_request.items()):
        if event["organization_id"] not in org_ids:
            quarantine(event, LookupError(f"organization {event['organization_id']} does not exist"), None)
            del by_request[request_id]
    return by_request


def _open_accounts(org_ids: set[int]) -> None:
    """Every organization has its account: one query for those that have (all, nearly
    always), get_or_create for the rest, instead of one get_or_create each per batch."""
    have = set(Account.objects.filter(organization_id__in=org_ids).values_list("organization_id", flat=True))
    for org_id in sorted(org_ids - have):
        account_for(org_id)


def _locked_accounts(org_ids) -> dict[int, Account]:
    # Locked in a fixed order so two workers booking overlapping batches cannot deadlock.
    return {a.organization_id: a for a in
            Account.objects.select_for_update().filter(organization_id__in=org_ids).order_by("pk")}


def _book_alone(event: dict) -> dict[int, Account]:
    org_ids = {event["organization_id"]}
    try:
        with transaction.atomic():
            return _write([event], org_ids)
    except NOT_THE_EVENTS_FAULT:
        raise
    except Exception as exc:
        quarantine(event, exc, event["organization_id"])
        return _locked_accounts(org_ids)


def _already_booked(request_ids: list[str]) -> set[str]:
    if connection.vendor == "postgresql":
        # One array parameter rather than 500 placeholders, which psycopg parses per query.
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT request_id FROM {UsageRecord._meta.db_table} WHERE request_id = ANY(%s)",
                           [request_ids])
            return {row[0] for row in cursor.fetchall()}
    return set(UsageRecord.objects.filter(request_id__in=request_ids).values_list("request_id", flat=True))


def _write(events: list[dict], org_ids: set[int], already_booked_check: bool = True) -> dict[int, Account]:
    """Book the events in two steps; returns the organizations' accounts, locked and current.

    First what needs no lock: the usage records (most of the work: fitting them, and the
    database's inserting them with their indexes) and the per-day sums added up. Then the
    accounts are locked, and only what orders the money is done holding the locks until
    commit: each entry's balance_after and id (ids are drawn under the lock, so an
    account's entries are in id order what they are in balance order), the entries, the
    accounts, and the rows every batch of an organization adds to (its per-day sums, its
    keys' last use). So two workers booking one organization overlap in the first step.

    A record written before the lock is safe: a record never says what it was charged by
    id, its entry finds it by reference (UsageRecord.ledger_entry), and if a second booker
    of the same event got there first, the unique request id refuses this batch (waiting
    for that booker's commit), which is then booked again asking."""
    booked = _already_booked([e["request_id"] for e in events]) if already_booked_check else ()
    # Plain rows, not model instances (billing.usage_rows): building those was most of the time.
    records = [usage_row(event) for event in events if event["request_id"] not in booked]
    forget_missing_references(records)
    now = timezone.now()
    if connection.vendor == "postgresql":
        for record in records:
            record["reconciled_at"] = now
        # One insertion order for every booker: two batches holding one event (a
        # redelivery) meet on its unique request id, and in one order neither waits for a
        # row the other has yet to insert, so they cannot deadlock there.
        bulk_copy.copy_rows(UsageRecord, sorted(records, key=itemgetter("request_id")))
    else:
        write_records_with_orm(records)
    usage_sums = daily.usage_sums(records)
    charged = [(record, usage_entry(record)) for record in records if record["cost"] > 0]

    accounts = _locked_accounts(org_ids)
    for record, entry in charged:
        account = accounts[record["organization_id"]]
        account.balance -= record["cost"]
        entry["account_id"], entry["balance_after"] = account.pk, account.balance
    entries = [entry for _, entry in charged]
    if connection.vendor == "postgresql":
        # Timed under the lock too, so an account's entries are in time order what they
        # are in id order (a day's first and last entry, billing.daily).
        stamp(entries, bulk_copy.reserve_ledger_ids(len(entries)), timezone.now())
        bulk_copy.copy_rows(LedgerEntry, entries)
    else:
        write_entries_with_orm(entries)
    daily.add_usage_sums(usage_sums)
    daily.add_ledger_usage(entries)
    heads = {}
    for entry in entries:
        heads[entry["account_id"]] = max(heads.get(entry["account_id"], 0), entry["id"])
    touched = list({record["organization_id"]: accounts[record["organization_id"]] for record in records}.values())
    for account in touched:
        account.ledger_head = max(account.ledger_head, heads.get(account.pk, 0))
    _save_balances(touched)
    for account in touched:
        alerts.balance_changed(account)  # in the savepoint: a refused batch alerts nobody
    usage_booked.send(sender=UsageRecord, records=records)
    return accounts


def _save_balances(accounts: list[Account]) -> None:
    """The accounts' new balances and heads: on PostgreSQL one UPDATE for the batch (three
    array parameters) rather than one per account, which cost as much as the rows when a
    batch spans many organizations."""
    if connection.vendor != "postgresql":
        for account in accounts:
            account.save(update_fields=["balance", "ledger_head", "updated_at"])
        return
    if not accounts:
        return
    now = timezone.now()
    table = connection.ops.quote_name(Account._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} AS a SET balance = v.balance, ledger_head = v.head, updated_at = %s "
            "FROM unnest(%s::bigint[], %s::bigint[], %s::bigint[]) AS v(id, balance, head) WHERE a.id = v.id",
            [now, [a.pk for a in accounts], [to_units(a.balance) for a in accounts], [a.ledger_head for a in accounts]])
    for account in accounts:
        account.updated_at = now


def reconcile(max_batches: int | None = None) -> int:
    """Book everything waiting (the outbox first); returns how many events were processed."""
    total = outbox.drain(book)
    consumer = f"{socket.gethostname()}-{os.getpid()}"
    size = settings.BILLING_RECONCILE_BATCH
    # A full batch says the stream is deep: the next takes twice as many, so a backlog is
    # booked with fewer per-batch queries and round trips per event. The accounts' locks
    # are held for the locked step only (_write), about a third of a batch's time.
    ceiling = max(settings.BILLING_RECONCILE_BATCH_MAX, size)
    batches = 0
    while max_batches is None or batches < max_batches:
        batch, redelivered = live_stream.read_batch(consumer, size, settings.BILLING_RECLAIM_IDLE_SECONDS * 1000)
        if not batch:
            break
        touched = book([event for _, event in batch], maybe_booked=redelivered)
        for account, request_ids in touched.values():
            publish(account, request_ids)
        live_stream.ack([event_id for event_id, _ in batch])
        total += len(batch)
        batches += 1
        if len(batch) < size:
            break
        size = min(2 * size, ceiling)
    if total:
        log.info("reconciled %s usage events", total)
    return total


def replay(quarantined) -> tuple[list[QuarantinedUsageEvent], list[QuarantinedUsageEvent]]:
    """Book quarantined events again, through book(), once their cause is fixed. A row is
    marked replayed once the ledger has its request, and a marked row is skipped. Returns
    the rows booked now and those the ledger still refused."""
    booked, refused = [], []
    for row in quarantined.filter(replayed_at__isnull=True):
        with transaction.atomic():
            # book() locks the accounts before it touches the row, as a booking worker
            # does: the two cannot deadlock over an event delivered again meanwhile.
            touched = book([event_of(row)])
            if not UsageRecord.objects.filter(request_id=row.request_id).exists():
                refused.append(row)  # book() counted the attempt and kept the new error
                continue
            claimed = QuarantinedUsageEvent.objects.filter(pk=row.pk, replayed_at__isnull=True).update(
                replayed_at=timezone.now())
            if claimed != 1:
                continue  # another replay got there first; the ledger booked it once
            booked.append(row)
            for account, request_ids in touched.values():
                transaction.on_commit(partial(publish, account, request_ids))
    return booked, refused


def ledger_is_consistent(organization_id: int) -> bool:
    """The cached balance equals the sum of the entries up to its head, and no entry lies
    beyond the head. Summed by the database: amounts are integer picodollars, so the sum is
    exact on every backend, and a million entries never travel to Python."""
    account = Account.objects.get(organization_id=organization_id)
    entries = LedgerEntry.objects.filter(account_id=account.pk)
    sums = entries.aggregate(head=Max("pk"), total=Sum("amount", filter=Q(pk__lte=account.ledger_head)))
    total = sums["total"] if sums["total"] is not None else ZERO
    return total == account.balance and (sums["head"] or 0) == account.ledger_head
