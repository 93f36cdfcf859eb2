"""Per-day sums kept current at booking time, so reads over a long history touch one row per
day instead of one per request.

Both are added to in the transaction that writes the records and entries (billing.reconcile),
with one INSERT ... ON CONFLICT DO UPDATE per batch: the sums can never disagree with the rows
they sum, and a batch that is rolled back takes its additions with it. Rows are upserted in a
fixed order so two workers adding to the same days cannot deadlock.
"""

from collections import defaultdict
from datetime import UTC

from django.db import connection

from .batch_params import json_rows, rows_param
from .models import LedgerUsageDay, UsageDay
from .money import to_units


CHUNK = 1000


def utc_day(moment):
    return moment.astimezone(UTC).date()


def _upsert(model, columns: list[tuple[str, str]], conflict: list[str], updates: list[str], rows: list[tuple]) -> None:
    """INSERT ... ON CONFLICT DO UPDATE of `rows`; `columns` are (name, PostgreSQL type)."""
    if not rows:
        return
    table = connection.ops.quote_name(model._meta.db_table)
    names = ", ".join(name for name, _ in columns)
    tail = f"ON CONFLICT ({', '.join(conflict)}) DO UPDATE SET {', '.join(updates)}"
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # One parameter however many rows (billing.batch_params), where psycopg would
            # otherwise parse thousands of placeholders, or write arrays value by value.
            cursor.execute(f"INSERT INTO {table} ({names}) {json_rows(columns)} {tail}", [rows_param(rows)])
            return
        one = "(" + ", ".join(["%s"] * len(columns)) + ")"
        for start in range(0, len(rows), CHUNK):  # under SQLite's parameter limit
            chunk = rows[start:start + CHUNK]
            cursor.execute(f"INSERT INTO {table} ({names}) VALUES {', '.join([one] * len(chunk))} {tail}",
                           [value for row in chunk for value in row])


def usage_sums(records) -> list[tuple]:
    """What freshly booked usage records (records or billing.usage_rows rows) add to their
    UsageDay rows, in the order they are upserted. Summed before booking takes the
    accounts' locks: the grouping needs no lock, only the upsert of the rows does."""
    sums = defaultdict(lambda: [0, 0, 0, 0])
    get = dict.__getitem__ if records and isinstance(records[0], dict) else getattr
    for r in records:
        group = (get(r, "organization_id"), utc_day(get(r, "created_at")), get(r, "model"),
                 get(r, "api_key_id") or 0, get(r, "status"))
        row = sums[group]
        row[0] += 1
        row[1] += get(r, "prompt_tokens")
        row[2] += get(r, "completion_tokens")
        row[3] += to_units(get(r, "cost"))
    adapt = connection.ops.adapt_datefield_value
    return [(org, adapt(day), model, key, status, *totals)
            for (org, day, model, key, status), totals in sorted(sums.items())]


def add_usage_sums(rows: list[tuple]) -> None:
    """Add usage_sums() to the UsageDay rows. Two batches of one organization wait here for
    each other (the rows are locked until commit), so booking calls it holding the
    organization's account lock, which already orders them."""
    table = connection.ops.quote_name(UsageDay._meta.db_table)
    _upsert(UsageDay, [("organization_id", "bigint"), ("day", "date"), ("model", "text"), ("key_id", "bigint"),
                       ("status", "text"), ("requests", "bigint"), ("prompt_tokens", "bigint"),
                       ("completion_tokens", "bigint"), ("cost", "bigint")],
            ["organization_id", "day", "model", "key_id", "status"],
            [f"{c} = {table}.{c} + excluded.{c}" for c in ("requests", "prompt_tokens", "completion_tokens", "cost")],
            rows)


def add_usage(records) -> None:
    """Add freshly booked usage records to their UsageDay rows."""
    add_usage_sums(usage_sums(records))


def add_ledger_usage(entries) -> None:
    """Add freshly written usage ledger entries (with their ids; entries or billing.usage_rows
    rows) to their LedgerUsageDay rows."""
    sums = {}
    get = dict.__getitem__ if entries and isinstance(entries[0], dict) else getattr
    for e in entries:
        group = (get(e, "account_id"), utc_day(get(e, "created_at")))
        pk = get(e, "id")
        count, amount, first, last = sums.get(group, (0, 0, pk, pk))
        sums[group] = (count + 1, amount + to_units(get(e, "amount")), min(first, pk), max(last, pk))
    adapt = connection.ops.adapt_datefield_value
    rows = [(account, adapt(day), *totals) for (account, day), totals in sorted(sums.items())]
    table = connection.ops.quote_name(LedgerUsageDay._meta.db_table)
    least, greatest = ("LEAST", "GREATEST") if connection.vendor == "postgresql" else ("MIN", "MAX")
    _upsert(LedgerUsageDay, [("account_id", "bigint"), ("day", "date"), ("entries", "bigint"), ("amount", "bigint"),
                             ("first_entry_id", "bigint"), ("last_entry_id", "bigint")],
            ["account_id", "day"],
            [f"entries = {table}.entries + excluded.entries", f"amount = {table}.amount + excluded.amount",
             f"first_entry_id = {least}({table}.first_entry_id, excluded.first_entry_id)",
             f"last_entry_id = {greatest}({table}.last_entry_id, excluded.last_entry_id)"],
            rows)
