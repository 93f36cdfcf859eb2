"""Django's cache on a Redis Cluster (REDIS_CLUSTER): Django's RedisCache speaks to one server
and does not follow the cluster's MOVED redirects.

What the product keeps there is allauth's rate limits and TOTP replay guard: single keys,
get/set/add/delete. The many-key calls are spread over the slots they touch, and clear()
deletes this cache's keys only (Django's flushes the database, live money with it)."""

import threading

from django.core.cache.backends.redis import RedisCache, RedisCacheClient

from billing.redis_pool import connect

_clients: dict[str, object] = {}
_lock = threading.Lock()


def _shared_client(url: str):
    # One per process: Django makes a cache per thread, and under gevent every greenlet is
    # one; a RedisCluster per greenlet would map the cluster anew each time.
    if url not in _clients:
        with _lock:
            if url not in _clients:
                _clients[url] = connect(url, decode_responses=False, cluster=True)
    return _clients[url]


class RedisClusterCacheClient(RedisCacheClient):
    def get_client(self, key=None, *, write=False):
        return _shared_client(self._servers[0])

    def get_many(self, keys):
        keys = list(keys)
        values = self.get_client().mget_nonatomic(keys)
        return {k: self._serializer.loads(v) for k, v in zip(keys, values) if v is not None}

    def set_many(self, data, timeout):
        pipeline = self.get_client(write=True).pipeline()  # not a transaction: keys span slots
        for key, value in data.items():
            if timeout == 0:
                pipeline.delete(key)
            else:
                pipeline.set(key, self._serializer.dumps(value), ex=timeout)
        pipeline.execute()

    def delete_many(self, keys):
        pipeline = self.get_client(write=True).pipeline()
        for key in keys:
            pipeline.delete(key)
        pipeline.execute()


class RedisClusterCache(RedisCache):
    def __init__(self, server, params):
        super().__init__(server, params)
        self._servers = [server]  # one URL, its nodes separated by commas: not a list of servers
        self._class = RedisClusterCacheClient

    def clear(self):
        client = self._cache.get_client(write=True)
        pipeline = client.pipeline()
        for key in client.scan_iter(match=f"{self.key_prefix}:*", count=1000):
            pipeline.delete(key)
        pipeline.execute()
        return True
