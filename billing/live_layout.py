"""Where the live store (billing.live) keeps everything in Redis: the one place that names
its keys, so that on a Redis Cluster every script touches one slot."""

import functools
import itertools
from dataclasses import dataclass

from redis.crc import REDIS_CLUSTER_HASH_SLOTS, key_slot


@functools.cache
def shard_tags(count: int) -> tuple[str, ...]:
    """A hash tag per shard, each in its own share of Redis Cluster's 16,384 slots, so the
    shards spread evenly over masters that split the slots evenly (as `redis-cli --cluster
    create` does), however many there are."""
    tags = []
    for shard in range(count):
        low, high = shard * REDIS_CLUSTER_HASH_SLOTS // count, (shard + 1) * REDIS_CLUSTER_HASH_SLOTS // count
        tags.append(next(tag for tag in (f"{shard}.{n}" for n in itertools.count())
                         if low <= key_slot(tag.encode()) < high))
    return tuple(tags)


@dataclass(frozen=True)
class Layout:
    """Where everything lives in Redis, under BILLING_REDIS_PREFIX.

    Organizations are spread over BILLING_REDIS_SHARDS shards, and every key of a shard
    carries the shard's hash tag, `{...}`: on a Redis Cluster each shard is one slot, so
    every script touches one slot (an organization's account, its keys' spend and rate
    windows, and the shard's holds and usage events, which the scripts change together).
    A new key of an organization must start with organization(org_id)."""

    prefix: str
    shards: int = 1

    def shard_of(self, org_id) -> int:
        return int(org_id) % self.shards

    # Both are asked for several times a request: remembered, they are one dictionary
    # lookup (a Layout is frozen, and a process has one or two for its whole life).
    @functools.lru_cache(maxsize=None)  # noqa: B019
    def _shard(self, shard: int) -> str:
        return f"{self.prefix}:{{{shard_tags(self.shards)[shard]}}}"

    @functools.lru_cache(maxsize=65536)  # noqa: B019
    def organization(self, org_id) -> str:
        """The start of every key the organization has."""
        return f"{self._shard(self.shard_of(org_id))}:o{org_id}"

    def account(self, org_id) -> str:
        return f"{self.organization(org_id)}:acct"

    def holds(self, shard: int) -> str:
        return f"{self._shard(shard)}:holds"

    def stream(self, shard: int) -> str:
        return f"{self._shard(shard)}:usage-events"

    def intents(self, shard: int) -> str:
        """Admitted requests' intents by request id (billing.abandoned)."""
        return f"{self._shard(shard)}:intents"

    def intents_by_time(self, shard: int) -> str:
        """The same requests scored by admission time, for the abandoned-request sweep."""
        return f"{self._shard(shard)}:intents-by-time"

    def tombstone(self, org_id, request_id: str) -> str:
        """Marks a request booked as abandoned, so its late settlement changes nothing."""
        return f"{self.organization(org_id)}:abandoned:{request_id}"

    def key_spend(self, org_id, key_id) -> str:
        return f"{self.organization(org_id)}:k{key_id}:spend"

    def window(self, org_id, key_id) -> tuple[str, str]:
        """The key's minute: requests, tokens."""
        key = f"{self.organization(org_id)}:k{key_id}"
        return f"{key}:r", f"{key}:t"

    @staticmethod
    def hold_member(org_id: int, key_id: int, request_id: str) -> str:
        """A request's holds in the holds set, scored by when they expire."""
        return f"{org_id}:{key_id}:{request_id}"
