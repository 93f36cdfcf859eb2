"""One Redis connection pool per process for the live store (billing) and the gateway's shared
state (keys, cooldowns); Django's cache keeps its own."""

import threading

from django.conf import settings

_client = None
_lock = threading.Lock()


def get_redis():
    global _client
    if _client is None:
        with _lock:
            if _client is None:
                import redis

                # A blocking pool: under gevent a burst of greenlets (a thousand streams
                # opening at once) waits a moment for a connection instead of failing with
                # "Too many connections", and Redis never sees more than the pool's size.
                pool = redis.BlockingConnectionPool.from_url(
                    settings.REDIS_URL, max_connections=settings.REDIS_MAX_CONNECTIONS,
                    timeout=settings.REDIS_POOL_TIMEOUT_SECONDS, decode_responses=True, health_check_interval=30,
                )
                _client = redis.Redis(connection_pool=pool)
    return _client
