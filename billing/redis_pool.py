"""One Redis client per process for the live store (billing) and the gateway's shared state
(keys, cooldowns); Django's cache keeps its own (console.redis_cluster_cache on a cluster).

REDIS_URL names a single Redis, or, with REDIS_CLUSTER (true, or a `redis+cluster://` URL),
one or more nodes of a Redis Cluster: the client learns the rest of the cluster from them
and follows its slots as they move (failover, resharding)."""

import functools
import threading
from urllib.parse import unquote, urlsplit

from django.conf import settings

_client = None
_lock = threading.Lock()


def _unavailable() -> tuple[type[Exception], ...]:
    from redis import exceptions as e

    # A cluster's own ways of being out of reach: slots unserved while a replica takes over
    # a dead master (CLUSTERDOWN, MASTERDOWN, TRYAGAIN), or no node answering at all
    # (RedisClusterException, which redis-py also raises for a cross-slot command: a bug
    # that then shows as an outage in the logs rather than as money lost).
    return (e.ConnectionError, e.TimeoutError, e.ClusterDownError, e.MasterDownError, e.TryAgainError,
            e.SlotNotCoveredError, e.RedisClusterException)


# Redis out of reach, on a single Redis or a cluster.
UNAVAILABLE = _unavailable()


def get_redis():
    global _client
    if _client is None:
        with _lock:
            if _client is None:
                _client = connect(settings.REDIS_URL, decode_responses=True)
    return _client


def connect(url: str, *, decode_responses: bool, cluster: bool | None = None):
    """A client for `url`: a Redis, or a RedisCluster when `cluster` (default: the
    settings' REDIS_CLUSTER) says it is one."""
    import redis

    # A blocking pool: under gevent a burst of greenlets (a thousand streams opening at
    # once) waits a moment for a connection instead of failing with "Too many
    # connections", and Redis never sees more than the pool's size (per node on a cluster).
    timeout, size = settings.REDIS_POOL_TIMEOUT_SECONDS, settings.REDIS_MAX_CONNECTIONS
    if not (settings.REDIS_CLUSTER if cluster is None else cluster):
        return redis.Redis(connection_pool=redis.BlockingConnectionPool.from_url(
            url, max_connections=size, timeout=timeout, decode_responses=decode_responses, health_check_interval=30))
    from redis.cluster import ClusterNode, RedisCluster

    nodes, options = cluster_nodes(url)
    return RedisCluster(startup_nodes=[ClusterNode(host, port) for host, port in nodes],
                        connection_pool_class=functools.partial(redis.BlockingConnectionPool, timeout=timeout),
                        max_connections=size, decode_responses=decode_responses, **options)


def cluster_nodes(url: str) -> tuple[list[tuple[str, int]], dict]:
    """The startup nodes and connection options of a cluster URL: `redis://host:port`, or
    `redis+cluster://host:port[,host:port...]` (`rediss` for TLS), user and password
    as in any Redis URL. Cluster nodes have only database 0."""
    parts = urlsplit(url)
    scheme = parts.scheme.removesuffix("+cluster")
    if scheme not in ("redis", "rediss"):
        raise ValueError(f"a Redis Cluster URL starts with redis:// or redis+cluster://, not {parts.scheme}://")
    credentials, _, hosts = parts.netloc.rpartition("@")
    user, _, password = credentials.partition(":")
    nodes = []
    for node in hosts.split(","):
        address = urlsplit(f"//{node}")
        nodes.append((address.hostname, address.port or 6379))
    options = {"ssl": scheme == "rediss"}
    if user:
        options["username"] = unquote(user)
    if password:
        options["password"] = unquote(password)
    return nodes, options
