"""The usage events between settlement and booking: a Redis stream in the live store
(billing.live) read by a consumer group, so a batch a dying worker took is taken over by
another and an event leaves the stream only once the ledger has it (billing.reconcile)."""

import time

import orjson
import redis

from .live import _live, layout

GROUP = "reconcilers"  # the usage events' consumer group


def read_events(consumer: str, count: int, claim_idle_ms: int) -> list[tuple[str, dict]]:
    """Usage events to book: first those a dead consumer left unacknowledged for longer
    than claim_idle_ms, then new ones. Each stays pending in the stream until ack()."""
    store = _live()
    try:
        entries = _take(store, consumer, count, claim_idle_ms)
    except redis.ResponseError as e:
        if "NOGROUP" not in str(e):
            raise
        # Redis lost the stream (a restart without persistence): make it anew.
        store.group_ready = False
        entries = _take(store, consumer, count, claim_idle_ms)
    return [(event_id, orjson.loads(fields["e"])) for event_id, fields in entries]


def _take(store, consumer: str, count: int, claim_idle_ms: int) -> list:
    stream = store.layout.stream
    if not store.group_ready:
        try:
            store.redis.xgroup_create(stream, GROUP, id="0", mkstream=True)
        except redis.ResponseError as e:
            if "BUSYGROUP" not in str(e):
                raise
        store.group_ready = True
    _, claimed, *_ = store.redis.xautoclaim(stream, GROUP, consumer, claim_idle_ms, "0-0", count=count)
    entries = [e for e in claimed if e[1]]
    if len(entries) < count:
        fresh = store.redis.xreadgroup(GROUP, consumer, {stream: ">"}, count=count - len(entries))
        for _, items in fresh or ():
            entries.extend(items)
    return entries


def ack(event_ids: list[str]) -> None:
    """The events are booked: they leave the stream."""
    if event_ids:
        pipe = _live().redis.pipeline()
        pipe.xack(layout().stream, GROUP, *event_ids)
        pipe.xdel(layout().stream, *event_ids)
        pipe.execute()


def backlog() -> int:
    return _live().redis.xlen(layout().stream)


def oldest_event_age_seconds() -> float:
    """How long the oldest usage event not yet booked has waited (0 if none)."""
    oldest = _live().redis.xrange(layout().stream, "-", "+", count=1)
    if not oldest:
        return 0.0
    # Events leave the stream only once booked, and a stream id starts with its
    # creation time in milliseconds.
    return max(time.time() - int(oldest[0][0].split("-", 1)[0]) / 1000, 0.0)
