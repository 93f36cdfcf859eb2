"""The usage events between settlement and booking: a Redis stream per shard of the live
store (billing.live), read by a consumer group, so a batch a dying worker took is taken
over by another and an event leaves its stream only once the ledger has it
(billing.reconcile)."""

import time

import orjson
import redis

from .live import _live, _shards, layout

GROUP = "reconcilers"  # the usage events' consumer group


def read_events(consumer: str, count: int, claim_idle_ms: int) -> list[tuple[str, dict]]:
    """Usage events to book: first those a dead consumer left unacknowledged for longer
    than claim_idle_ms, then new ones, from each shard in turn. Each stays pending in its
    stream until ack() is given the id returned here (`<shard>/<stream id>`)."""
    return read_batch(consumer, count, claim_idle_ms)[0]


def read_batch(consumer: str, count: int, claim_idle_ms: int) -> tuple[list[tuple[str, dict]], bool]:
    """read_events(), and whether any of them was delivered before (taken over from a
    consumer that may have booked it before it died)."""
    store = _live()
    shards = store.layout.shards
    start, store.next_shard = store.next_shard, (store.next_shard + 1) % shards
    events, redelivered = [], False
    for shard in ((start + i) % shards for i in range(shards)):
        if len(events) >= count:
            break
        try:
            entries, claimed = _take(store, shard, consumer, count - len(events), claim_idle_ms)
        except redis.ResponseError as e:
            if "NOGROUP" not in str(e):
                raise
            # Redis lost the stream (a restart without persistence): make it anew.
            store.groups_ready.discard(shard)
            entries, claimed = _take(store, shard, consumer, count - len(events), claim_idle_ms)
        redelivered = redelivered or claimed
        events.extend((f"{shard}/{event_id}", orjson.loads(fields["e"])) for event_id, fields in entries)
    return events, redelivered


def _take(store, shard: int, consumer: str, count: int, claim_idle_ms: int) -> tuple[list, bool]:
    stream = store.layout.stream(shard)
    if shard not in store.groups_ready:
        try:
            store.redis.xgroup_create(stream, GROUP, id="0", mkstream=True)
        except redis.ResponseError as e:
            if "BUSYGROUP" not in str(e):
                raise
        store.groups_ready.add(shard)
    _, claimed, *_ = store.redis.xautoclaim(stream, GROUP, consumer, claim_idle_ms, "0-0", count=count)
    entries = [e for e in claimed if e[1]]
    redelivered = bool(entries)
    if len(entries) < count:
        fresh = store.redis.xreadgroup(GROUP, consumer, {stream: ">"}, count=count - len(entries))
        for _, items in fresh or ():
            entries.extend(items)
    return entries, redelivered


def ack(event_ids: list[str]) -> None:
    """The events are booked: they leave their streams."""
    by_shard: dict[int, list[str]] = {}
    for event_id in event_ids:
        shard, _, stream_id = event_id.partition("/")
        by_shard.setdefault(int(shard), []).append(stream_id)
    for shard, stream_ids in by_shard.items():
        pipe = _live().redis.pipeline()  # one stream, one slot: on a cluster too
        pipe.xack(layout().stream(shard), GROUP, *stream_ids)
        pipe.xdel(layout().stream(shard), *stream_ids)
        pipe.execute()


def backlog() -> int:
    return sum(_live().redis.xlen(layout().stream(shard)) for shard in _shards())


def oldest_event_age_seconds() -> float:
    """How long the oldest usage event not yet booked has waited (0 if none)."""
    oldest = [entries[0][0] for shard in _shards() if (entries := _live().redis.xrange(
        layout().stream(shard), "-", "+", count=1))]
    if not oldest:
        return 0.0
    # Events leave the stream only once booked, and a stream id starts with its
    # creation time in milliseconds.
    return max(time.time() - min(int(event_id.split("-", 1)[0]) for event_id in oldest) / 1000, 0.0)
