"""A long synthetic history for one organization, written with PostgreSQL COPY.

    .venv/bin/python bench/history.py --records 10000000     # ~90 days, into DATABASE_URL

Makes one organization ("history", owner history@bench.invalid, password "bench-history"),
a few keys, N usage records spread over the last --days days (several models, mostly
completed, some upstream errors and abandoned streams), the matching ledger (a usage charge
per record that cost anything, a credit every ten days) and the per-day sums booking keeps
(billing.daily), all exactly consistent: ledger_is_consistent holds afterwards. Rows go in
with COPY in chunks, not through the ORM, so ten million records take minutes. The
database must be migrated; run it on a database of its own (the benchmark's).
"""

import argparse
import os
import random
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SLUG = "history"
OWNER = "history@bench.invalid"
PASSWORD = "bench-history"
MODELS = [  # (model, input, output USD per million tokens, share of requests)
    ("openai:gpt-4o-mini", Decimal("0.15"), Decimal("0.60"), 0.45),
    ("openai:gpt-4o", Decimal("2.50"), Decimal("10.00"), 0.15),
    ("anthropic:claude-3-5-haiku", Decimal("0.80"), Decimal("4.00"), 0.2),
    ("gemini:gemini-2.0-flash", Decimal("0.10"), Decimal("0.40"), 0.15),
    ("openai:text-embedding-3-small", Decimal("0.02"), Decimal("0"), 0.05),
]
STATUSES = [("completed", 200, "", 0.95), ("upstream_error", 502, "upstream_error", 0.03),
            ("client_gone", 499, "client_gone", 0.015), ("error", 500, "gateway_error", 0.005)]
KEYS = 8
CHUNK = 100_000
CREDIT_EVERY = timedelta(days=10)
PICO = 10**12
USAGE_COPY = ("COPY billing_usagerecord (id, request_id, organization_id, api_key_id, model, status, http_status, "
              "error_code, stream, prompt_tokens, completion_tokens, cached_tokens, reasoning_tokens, cache_write_tokens, "
              "basis, "
              "input_per_mtok, output_per_mtok, cost, latency_ms, ttft_ms, created_at, reconciled_at) FROM STDIN")
LEDGER_COPY = "COPY billing_ledgerentry (id, account_id, kind, amount, balance_after, reference, note, created_at) FROM STDIN"


def setup_django():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")
    os.environ.setdefault("SECRET_KEY", "insecure-bench-only-key-0123456789abcdefghijklmnopqrstuvwxyz")
    import django

    django.setup()


def organization():
    """The benchmark's organization, owner and keys (made once; its history is replaced)."""
    from django.contrib.auth import get_user_model

    from billing.ledger import account_for
    from console.tenancy.models import Membership, Organization
    from gateway.keys.api_keys import mint_api_key
    from gateway.models import ApiKey

    org, _ = Organization.objects.get_or_create(slug=SLUG, defaults={"name": "History bench"})
    user, made = get_user_model().objects.get_or_create(username=OWNER, defaults={"email": OWNER})
    if made:
        user.set_password(PASSWORD)
        user.save()
        from allauth.account.models import EmailAddress
        EmailAddress.objects.get_or_create(user=user, email=OWNER, defaults={"verified": True, "primary": True})
    Membership.objects.get_or_create(user=user, organization=org, defaults={"role": Membership.Role.OWNER})
    inference = ApiKey.objects.filter(organization=org).exclude(kind=ApiKey.Kind.MANAGEMENT)
    while inference.count() < KEYS:
        mint_api_key(org, name=f"bench key {inference.count() + 1}")
    keys = list(inference.order_by("pk").values_list("pk", flat=True))
    return org, user, account_for(org.pk), keys


def wipe(cursor, org_id: int, account_id: int) -> None:
    cursor.execute("DELETE FROM billing_usageday WHERE organization_id = %s", [org_id])
    cursor.execute("DELETE FROM billing_ledgerusageday WHERE account_id = %s", [account_id])
    cursor.execute("DELETE FROM billing_usagerecord WHERE organization_id = %s", [org_id])
    # Ledger rows refuse deletion through the ORM (append-only); a benchmark reset is SQL.
    cursor.execute("DELETE FROM billing_ledgerentry WHERE account_id = %s", [account_id])


def cost_units(prompt: int, completion: int, price_in: int, price_out: int) -> int:
    """Exact picodollars: prices are in picodollars per million tokens, so this is exact
    whenever the catalog's rule is (at most 6 decimals per million tokens)."""
    return (prompt * price_in + completion * price_out) // 1_000_000


def generate(records: int, days: int, seed: int = 7) -> dict:
    from django.db import connection, transaction

    rng = random.Random(seed)
    org, _, account, keys = organization()
    now = datetime.now(UTC).replace(microsecond=0)
    start = now - timedelta(days=days)
    span_us = days * 86_400 * 1_000_000
    model_weights = [m[3] for m in MODELS]
    priced = [(m[0], int(m[1] * PICO), int(m[2] * PICO), str(m[1]), str(m[2])) for m in MODELS]
    status_weights = [s[3] for s in STATUSES]
    key_weights = [1 / (i + 1) for i in range(len(keys))]  # a few busy keys, a long tail
    t0 = time.monotonic()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # nothing pending when the indexes are dropped
        wipe(cursor, org.pk, account.pk)
        cursor.execute("SELECT nextval('billing_ledgerentry_id_seq'), nextval('billing_usagerecord_id_seq')")
        next_entry, next_record = cursor.fetchone()
        first_entry = next_entry
        # Sorted arrival times, a few equal to the microsecond (as real traffic has them).
        times = sorted(rng.randrange(span_us) for _ in range(records))
        balance = 0
        head = 0
        credit_at = start
        pg = connection.connection  # the psycopg connection under Django's
        # The rows are consistent by construction; skipping the per-row foreign key
        # triggers (superuser only) makes COPY several times faster.
        cursor.execute("SET LOCAL session_replication_role = replica")

        def flush(usage_lines, ledger_lines):
            with pg.cursor() as raw:  # one COPY at a time on a connection: ledger, then usage
                with raw.copy(LEDGER_COPY) as copy:
                    copy.write("".join(ledger_lines))
                with raw.copy(USAGE_COPY) as copy:
                    copy.write("".join(usage_lines))

        rebuild = drop_indexes(cursor)
        usage_lines, ledger_lines = [], []
        models = rng.choices(range(len(priced)), model_weights, k=records)
        statuses = rng.choices(range(len(STATUSES)), status_weights, k=records)
        key_of = rng.choices(keys, key_weights, k=records)
        for i, offset in enumerate(times):
            when = start + timedelta(microseconds=offset)
            while when >= credit_at:  # a credit every ten days, before the money runs out
                amount = 5_000 * PICO
                balance += amount
                ledger_lines.append(f"{next_entry}\t{account.pk}\tcredit\t{amount}\t{balance}\t"
                                    f"credit:bench-{uuid.uuid4()}\tbench top-up\t{credit_at.isoformat()}\n")
                head = next_entry
                next_entry += 1
                credit_at += CREDIT_EVERY
            model, price_in, price_out, in_text, out_text = priced[models[i]]
            status, http, error_code, _ = STATUSES[statuses[i]]
            prompt = rng.randrange(20, 4000)
            completion = 0 if out_text == "0" else rng.randrange(0, 1200)
            if status in ("upstream_error", "error"):
                completion = prompt = 0
            elif status == "client_gone":
                completion //= 3
            cost = cost_units(prompt, completion, price_in, price_out)
            stamp = when.isoformat()
            request_id = uuid.UUID(int=rng.getrandbits(128), version=4)
            if cost > 0:
                balance -= cost
                ledger_lines.append(f"{next_entry}\t{account.pk}\tusage\t{-cost}\t{balance}\tusage:{request_id}"
                                    f"\t{model} {prompt}+{completion} tokens\t{stamp}\n")
                head = next_entry
                next_entry += 1
            stream = i % 3 != 0
            latency = 200 + (i * 7919) % 5000
            ttft = latency // 4 if stream else "\\N"
            usage_lines.append(
                f"{next_record}\t{request_id}\t{org.pk}\t{key_of[i]}\t{model}\t{status}\t{http}\t{error_code}\t"
                f"{'t' if stream else 'f'}\t{prompt}\t{completion}\t0\t0\t0\tprovider\t{in_text}\t{out_text}\t{cost}\t"
                f"{latency}\t{ttft}\t{stamp}\t{stamp}\n")
            next_record += 1
            if len(usage_lines) >= CHUNK:
                flush(usage_lines, ledger_lines)
                usage_lines, ledger_lines = [], []
                print(f"  {i + 1:,} records, {time.monotonic() - t0:.0f} s", flush=True)
        flush(usage_lines, ledger_lines)
        print(f"  copied, {time.monotonic() - t0:.0f} s; building the indexes", flush=True)
        cursor.execute("SET LOCAL maintenance_work_mem = '1GB'")
        for statement in rebuild:
            cursor.execute(statement)
        cursor.execute("SELECT setval('billing_ledgerentry_id_seq', %s), setval('billing_usagerecord_id_seq', %s)",
                       [next_entry, next_record])
        cursor.execute("UPDATE billing_account SET balance = %s, ledger_head = %s WHERE id = %s",
                       [balance, head, account.pk])
        sum_days(cursor, org.pk, account.pk)
    copied = time.monotonic() - t0
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE billing_usagerecord; ANALYZE billing_ledgerentry; ANALYZE billing_usageday; "
                       "ANALYZE billing_ledgerusageday")
    return {"records": records, "entries": next_entry - first_entry, "seconds": round(copied, 1), "org": org.pk}


TABLES = ("billing_usagerecord", "billing_ledgerentry")


def drop_indexes(cursor) -> list[str]:
    """Drop the two big tables' secondary indexes and unique constraints (a bulk load builds
    them faster afterwards, by sorting, than row by row); returns what recreates them."""
    cursor.execute("SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint "
                   "WHERE contype = 'u' AND conrelid::regclass::text = ANY(%s)", [list(TABLES)])
    constraints = cursor.fetchall()
    cursor.execute("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = ANY(%s) AND indexname NOT LIKE "
                   "'%%_pkey' AND indexname <> ALL(%s)", [list(TABLES), [name for _, name, _ in constraints]])
    indexes = cursor.fetchall()
    for table, name, _ in constraints:
        cursor.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
    for name, _ in indexes:
        cursor.execute(f'DROP INDEX "{name}"')
    return ([definition for _, definition in indexes]
            + [f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}' for table, name, definition in constraints])


def sum_days(cursor, org_id: int, account_id: int) -> None:
    """The per-day sums booking would have kept, from what was just copied."""
    cursor.execute(
        "INSERT INTO billing_usageday (organization_id, day, model, key_id, status, requests, prompt_tokens, "
        "completion_tokens, cost) SELECT organization_id, (created_at AT TIME ZONE 'UTC')::date, model, "
        "COALESCE(api_key_id, 0), status, count(*), sum(prompt_tokens), sum(completion_tokens), sum(cost) "
        "FROM billing_usagerecord WHERE organization_id = %s GROUP BY 1, 2, 3, 4, 5", [org_id])
    cursor.execute(
        "INSERT INTO billing_ledgerusageday (account_id, day, entries, amount, first_entry_id, last_entry_id) "
        "SELECT account_id, (created_at AT TIME ZONE 'UTC')::date, count(*), sum(amount), min(id), max(id) "
        "FROM billing_ledgerentry WHERE account_id = %s AND kind = 'usage' GROUP BY 1, 2", [account_id])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=10_000_000)
    parser.add_argument("--days", type=int, default=90)
    args = parser.parse_args()
    setup_django()
    from django.db import connection

    if connection.vendor != "postgresql":
        sys.exit("bench/history.py writes with PostgreSQL COPY: set DATABASE_URL to a PostgreSQL database")
    result = generate(args.records, args.days)
    print(result)


if __name__ == "__main__":
    main()
