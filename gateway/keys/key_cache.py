"""The shared tier of the key cache: what a key's secret hash resolves to, for every
process, for GATEWAY_CACHE_SECONDS.

With Redis it lives in the gateway's own Redis pool as JSON. Django's cache would do the
same job, but Django keeps a cache client per thread, and under gevent every greenlet is
a thread: each new connection that missed the process's key memory would open a Redis
connection of its own. Without Redis (the embedded default, one process) it is Django's
in-process cache.
"""

import json
from datetime import datetime
from decimal import Decimal

from django.conf import settings
from django.core.cache import cache

from billing.redis_pool import get_redis

UNKNOWN = "unknown"  # no key has this secret: remembered too, so guessing costs no queries


def _name(secret_hash: str) -> str:
    return f"{settings.BILLING_REDIS_PREFIX}:apikey:{secret_hash}"


def get(secret_hash: str, identity_type):
    """The cached identity, UNKNOWN, or None when nothing is cached."""
    if not settings.REDIS_URL:
        return cache.get(_name(secret_hash))
    raw = get_redis().get(_name(secret_hash))
    if raw is None or raw == UNKNOWN:
        return raw
    fields = json.loads(raw)
    fields["allowed_models"] = tuple(fields["allowed_models"])
    if fields["expires_at"] is not None:
        fields["expires_at"] = datetime.fromisoformat(fields["expires_at"])
    if fields["spend_limit"] is not None:
        fields["spend_limit"] = Decimal(fields["spend_limit"])
    return identity_type(**fields)


def put(secret_hash: str, identity) -> None:
    """Cache an identity (a KeyIdentity) or UNKNOWN."""
    if not settings.REDIS_URL:
        cache.set(_name(secret_hash), identity, settings.GATEWAY_CACHE_SECONDS)
        return
    if identity == UNKNOWN:
        value = UNKNOWN
    else:
        fields = dict(vars(identity))
        fields["allowed_models"] = list(identity.allowed_models)
        fields["expires_at"] = identity.expires_at.isoformat() if identity.expires_at else None
        fields["spend_limit"] = None if identity.spend_limit is None else str(identity.spend_limit)
        value = json.dumps(fields)
    get_redis().set(_name(secret_hash), value, ex=settings.GATEWAY_CACHE_SECONDS)


def forget(secret_hash: str) -> None:
    if not settings.REDIS_URL:
        cache.delete(_name(secret_hash))
        return
    get_redis().delete(_name(secret_hash))
