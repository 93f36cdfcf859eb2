"""A deep stream is booked in growing batches, up to BILLING_RECONCILE_BATCH_MAX."""

import orjson
import pytest

from billing import live, live_stream
from billing.models import UsageRecord
from billing.reconcile import ledger_is_consistent, reconcile
from tests.test_billing_money import event

pytestmark = pytest.mark.django_db


def queue(events) -> None:
    store, layout = live.client(), live.layout()
    for e in events:
        store.xadd(layout.stream(layout.shard_of(e["organization_id"])), {"e": orjson.dumps(e)})


def test_each_full_batch_is_followed_by_one_twice_as_large_up_to_the_ceiling(org, settings, monkeypatch):
    settings.BILLING_RECONCILE_BATCH, settings.BILLING_RECONCILE_BATCH_MAX = 2, 8
    queue([event(org.pk, 10, i) for i in range(21)])
    asked = []
    read = live_stream.read_batch
    monkeypatch.setattr(live_stream, "read_batch", lambda consumer, count, idle: asked.append(count) or read(
        consumer, count, idle))
    assert reconcile() == 21
    assert asked == [2, 4, 8, 8]  # 2 + 4 + 8 full, then 7 of 8: the stream is empty
    assert UsageRecord.objects.filter(organization=org).count() == 21
    assert ledger_is_consistent(org.pk)


def test_a_shallow_stream_is_booked_at_the_base_size(org, settings, monkeypatch):
    settings.BILLING_RECONCILE_BATCH, settings.BILLING_RECONCILE_BATCH_MAX = 5, 20
    queue([event(org.pk, 10, i) for i in range(3)])
    asked = []
    read = live_stream.read_batch
    monkeypatch.setattr(live_stream, "read_batch", lambda consumer, count, idle: asked.append(count) or read(
        consumer, count, idle))
    assert reconcile() == 3
    assert asked == [5]
