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
                _check_readiness_without_gevent()
                _client = connect(settings.REDIS_URL, decode_responses=True)
    return _client


def _check_readiness_without_gevent() -> None:
    """Before every command redis-py checks that the pooled connection has nothing unread
    (a readiness poll with a timeout of 0, which never waits). Under gevent that poll is
    gevent's, which builds watchers for waiting it never does: 12 µs a check, two or more
    a request, against 0.6 µs for the C poll this swaps in for the timeout-0 case
    (docs/performance.md, "The second version against the first"). Any other timeout, or
    without gevent, redis-py's own check runs."""
    import select

    from gevent import monkey
    from redis._parsers import hiredis

    if not monkey.is_module_patched("select") or not hasattr(select, "poll"):
        return
    check = getattr(hiredis, "_socket_can_read", None)
    if check is None or getattr(check, "without_gevent", False):
        return  # another redis-py, or already swapped
    poll = monkey.get_original("select", "poll")

    def socket_can_read(sock, timeout: float) -> bool:
        if timeout != 0 or (hasattr(sock, "pending") and sock.pending()):
            return check(sock, timeout)
        poller = poll()
        poller.register(sock, select.POLLIN)
        return bool(poller.poll(0))

    socket_can_read.without_gevent = True
    hiredis._socket_can_read = socket_can_read


def connect(url: str, *, decode_responses: bool, cluster: bool | None = None):
    """A client for `url`: a Redis, or a RedisCluster when `cluster` (default: the
    settings' REDIS_CLUSTER) says it is one."""
    import redis

    # A blocking pool: under gevent a burst of greenlets (a thousand streams opening at
    # once) waits a moment for a connection instead of failing with "Too many
    # connections", and Redis never sees more than the pool's size (per node on a cluster).
    from redis.maint_notifications import MaintNotificationsConfig

    timeout, size = settings.REDIS_POOL_TIMEOUT_SECONDS, settings.REDIS_MAX_CONNECTIONS
    # Maintenance notifications are Redis Cloud's and Enterprise's; left at redis-py's
    # "auto", the pool also stops refusing a connection that still holds an unread reply
    # (one whose greenlet was killed mid-command), and the next command would read it as
    # its own answer: tests/test_redis_readiness.py.
    maintenance = MaintNotificationsConfig(enabled=False)
    if not (settings.REDIS_CLUSTER if cluster is None else cluster):
        return redis.Redis(connection_pool=redis.BlockingConnectionPool.from_url(
            url, max_connections=size, timeout=timeout, decode_responses=decode_responses, health_check_interval=30,
            maint_notifications_config=maintenance))
    from redis.cluster import ClusterNode, RedisCluster

    nodes, options = cluster_nodes(url)
    return RedisCluster(startup_nodes=[ClusterNode(host, port) for host, port in nodes],
                        connection_pool_class=functools.partial(redis.BlockingConnectionPool, timeout=timeout),
                        max_connections=size, decode_responses=decode_responses, maint_notifications_config=maintenance,
                        **options)


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
