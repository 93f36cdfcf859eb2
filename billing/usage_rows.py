"""A usage event as the plain rows booking writes: its usage record and its ledger entry,
column values by attribute name, without Django model instances.

Building a UsageRecord and a LedgerEntry per event was most of booking's time (a model's
__init__ walks every field with its descriptors and signals, ~140 µs an event together);
COPY (billing.bulk_copy) needs only the values. A row reads like the model's instance
(`row.cost`, `row.api_key_id`), so the per-day sums (billing.daily) and the usage_booked
receivers read rows and records alike, and SQLite, which books with bulk_create, makes
its model instances from the same rows: one set of values, one set of fitting rules
(billing.clamping), whichever database books them.
"""

from decimal import Decimal

from .charging import event_time
from .clamping import fit_values
from .models import LedgerEntry, UsageRecord, usage_reference


class Row(dict):
    """Column values by attribute name, readable as attributes."""

    __slots__ = ()

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


def usage_row(event: dict) -> Row:
    """The usage record of the event, fitted to its columns; a malformed event raises here,
    inside the batch's savepoint, exactly as building its model instance did."""
    return fit_values(Row(
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
        # Events queued before the cache-write bucket existed carry neither field.
        cache_write_tokens=event.get("cache_write_tokens") or 0,
        basis=event["basis"],
        input_per_mtok=Decimal(event["input_per_mtok"]),
        output_per_mtok=Decimal(event["output_per_mtok"]),
        cached_input_per_mtok=_price(event["cached_input_per_mtok"]),
        cache_write_per_mtok=_price(event.get("cache_write_per_mtok")),
        cost=Decimal(event["cost"]),
        latency_ms=event["latency_ms"],
        ttft_ms=event["ttft_ms"],
        created_at=event_time(event),
        reconciled_at=None,
    ))


def _price(value: str | None) -> Decimal | None:
    return None if value is None else Decimal(value)


def usage_entry(record: Row) -> Row:
    """The ledger entry charging the record's cost; its account and balance_after are given
    holding the account's lock, its id and time when it is written."""
    return Row(
        id=None, account_id=None, kind=LedgerEntry.Kind.USAGE, amount=-record["cost"],
        balance_after=None, reference=usage_reference(record["request_id"]),
        note=f"{record['model']} {record['prompt_tokens']}+{record['completion_tokens']} tokens",
        created_by_id=None, created_at=None,
    )


def stamp(entries: list[Row], ids, now) -> None:
    """Give each entry its id and time."""
    for entry, pk in zip(entries, ids):
        entry["id"], entry["created_at"] = pk, now


def write_records_with_orm(records: list[Row]) -> None:
    """The usage records written with bulk_create (the embedded SQLite shape), model
    instances made from the same values COPY writes on PostgreSQL."""
    written = UsageRecord.objects.bulk_create(
        [UsageRecord(**{k: v for k, v in record.items() if k != "reconciled_at"}) for record in records])
    for record, obj in zip(records, written):
        record["reconciled_at"] = obj.reconciled_at


def write_entries_with_orm(entries: list[Row]) -> None:
    """The ledger entries written with bulk_create, their ids and times copied back."""
    written = LedgerEntry.objects.bulk_create(
        [LedgerEntry(**{k: v for k, v in entry.items() if k not in ("id", "created_at")}) for entry in entries])
    for entry, obj in zip(entries, written):
        entry["id"], entry["created_at"] = obj.pk, obj.created_at
