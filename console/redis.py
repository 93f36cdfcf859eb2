"""One Redis connection pool per process, for everything that is not Django's cache."""

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

                _client = redis.Redis.from_url(settings.REDIS_URL, decode_responses=True, health_check_interval=30)
    return _client
