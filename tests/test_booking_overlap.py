"""Two bookers of one organization at once: the second writes its usage records while the
first holds the account, and every balance stays exact (billing.reconcile, "_write")."""

import threading
import time
from contextlib import contextmanager
from decimal import Decimal

import orjson
import pytest
from django.db import connection, connections

from billing import live, live_stream
from billing.models import Account, LedgerEntry, QuarantinedUsageEvent, UsageRecord
from billing.reconcile import book, ledger_is_consistent, reconcile
from billing.signals import usage_booked
from tests.test_billing_money import event

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks and concurrent writers: PostgreSQL"),
]


def wait_for(predicate, timeout: float = 10):
    deadline = time.monotonic() + timeout
    while not (value := predicate()) and time.monotonic() < deadline:
        time.sleep(0.01)
    return value


def balances_follow_ids(org) -> bool:
    """Every entry's balance_after is the sum of the account's entries up to its id."""
    running = Decimal(0)
    for amount, after in (LedgerEntry.objects.filter(account__organization=org).order_by("pk")
                          .values_list("amount", "balance_after")):
        running += amount
        if after != running:
            return False
    return True


def times_follow_ids(org) -> bool:
    """An account's entries are in time order what they are in id order."""
    times = list(LedgerEntry.objects.filter(account__organization=org).order_by("pk").values_list("created_at", flat=True))
    return times == sorted(times)


def assert_booked_once(org, events, before: Decimal) -> None:
    ids = [e["request_id"] for e in events]
    assert UsageRecord.objects.filter(request_id__in=ids).count() == len(ids)
    assert LedgerEntry.objects.filter(reference__in=[f"usage:{i}" for i in ids]).count() == len(ids)
    assert Account.objects.get(organization=org).balance == before - sum(Decimal(e["cost"]) for e in events)
    assert not QuarantinedUsageEvent.objects.exists()
    assert ledger_is_consistent(org.pk)
    assert balances_follow_ids(org)
    assert times_follow_ids(org)


class Booker(threading.Thread):
    """book() in a thread of its own, on a database connection of its own."""

    def __init__(self, name, events, **kwargs):
        super().__init__(name=name)
        self.events, self.kwargs, self.error, self.pid = events, kwargs, None, None

    def run(self):
        try:
            connection.ensure_connection()
            self.pid = connection.connection.info.backend_pid
            book(self.events, **self.kwargs)
        except Exception as e:  # reported by the test
            self.error = e
        finally:
            connections.close_all()


def waits_for_a_lock_having_written_records(pid) -> bool:
    """The backend waits for a row lock, in the accounts' SELECT ... FOR UPDATE, and its
    transaction has inserted usage records already."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT wait_event_type, query FROM pg_stat_activity WHERE pid = %s", [pid])
        row = cursor.fetchone()
        if not row or row[0] != "Lock" or "FOR UPDATE" not in row[1]:
            return False
        cursor.execute("SELECT 1 FROM pg_locks WHERE pid = %s AND relation = %s::regclass AND mode = 'RowExclusiveLock'",
                       [pid, UsageRecord._meta.db_table])
        return cursor.fetchone() is not None


@contextmanager
def first_holding_the_account(events: list[dict]):
    """A booker of `events`, thread "first", stopped once it has booked them with the
    account locked and not yet committed; it commits when the caller sets the Event."""
    holding, release = threading.Event(), threading.Event()

    def hold_the_lock(sender, records, **kwargs):
        if threading.current_thread().name == "first":  # booked, account locked, not committed
            holding.set()
            release.wait(10)

    usage_booked.connect(hold_the_lock, dispatch_uid="test-hold-the-lock")
    try:
        first = Booker("first", events)
        first.start()
        assert holding.wait(10)
        yield first, release
    finally:
        release.set()
        usage_booked.disconnect(dispatch_uid="test-hold-the-lock")


def test_a_second_booker_writes_its_records_while_the_first_holds_the_account(org):
    before = Account.objects.get(organization=org).balance
    first = [event(org.pk, 800 + i, 200) for i in range(40)]
    second = [event(org.pk, 900 + i, 300) for i in range(40)]
    with first_holding_the_account(first) as (a, release):
        b = Booker("second", second, maybe_booked=False)
        b.start()
        assert wait_for(lambda: b.pid and waits_for_a_lock_having_written_records(b.pid)), \
            "the second booker should have written its records and be waiting for the account"
        release.set()
        a.join(10)
        b.join(10)
    assert (a.error, b.error) == (None, None)
    assert_booked_once(org, first + second, before)


def test_a_redelivered_event_racing_its_first_booking_is_booked_once(org):
    """Both batches hold one event; the second, written without asking (fresh delivery),
    waits on the request id for the first's commit, is refused, and is written again asking."""
    before = Account.objects.get(organization=org).balance
    shared = event(org.pk, 500, 50)
    first = [event(org.pk, 10, 1), shared]
    second = [dict(shared), event(org.pk, 20, 2)]
    with first_holding_the_account(first) as (a, release):
        b = Booker("second", second, maybe_booked=False)
        b.start()
        assert wait_for(lambda: b.pid and _waits_for_a_transaction(b.pid)), "the second waits on the request id"
        release.set()
        a.join(10)
        b.join(10)
    assert (a.error, b.error) == (None, None)
    assert_booked_once(org, [first[0], shared, second[1]], before)


def _waits_for_a_transaction(pid) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT wait_event FROM pg_stat_activity WHERE pid = %s", [pid])
        row = cursor.fetchone()
        return bool(row) and row[0] == "transactionid"


def test_a_fresh_delivery_of_an_event_already_booked_is_not_booked_again(org):
    """An outboxed settlement Redis had queued too arrives fresh in the stream after its
    booking: the batch is refused by the request id, written again asking, booked once."""
    before = Account.objects.get(organization=org).balance
    booked_already = event(org.pk, 8, 1)
    book([booked_already])
    new = event(org.pk, 9, 2)
    store, layout = live.client(), live.layout()
    for e in (booked_already, new):
        store.xadd(layout.stream(layout.shard_of(org.pk)), {"e": orjson.dumps(e)})
    reconcile()
    assert_booked_once(org, [booked_already, new], before)
    assert live_stream.backlog() == 0


def test_two_booking_workers_on_one_organization_keep_every_balance_exact(org, settings):
    """reconcile() in two threads over one stream of one organization's events."""
    settings.BILLING_RECONCILE_BATCH = settings.BILLING_RECONCILE_BATCH_MAX = 25
    before = Account.objects.get(organization=org).balance
    events = [event(org.pk, 100 + i, 10 + i % 7) for i in range(400)]
    store, layout = live.client(), live.layout()
    pipe = store.pipeline(transaction=False)
    for e in events:
        pipe.xadd(layout.stream(layout.shard_of(org.pk)), {"e": orjson.dumps(e)})
    pipe.execute()
    errors = []

    def work():
        try:
            while reconcile(max_batches=4):
                pass
        except Exception as e:
            errors.append(e)
        finally:
            connections.close_all()

    workers = [threading.Thread(target=work) for _ in range(2)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
    assert errors == []
    assert live_stream.backlog() == 0
    assert_booked_once(org, events, before)
