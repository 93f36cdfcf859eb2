"""Keeping answers coming when an upstream fails: retries with backoff, the next deployment,
then the model's fallbacks; deployments that keep failing are cooled down for a while.

All of it happens before the first byte reaches the caller; once a stream has started,
a failure ends it with an error event instead.
"""

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import replace

from django.conf import settings

from billing.redis_pool import get_redis

from .. import observability
from .catalog import Route, lookup_route
from ..api.errors import GatewayError, UpstreamTimeout

log = logging.getLogger(__name__)


def retryable(error: GatewayError) -> bool:
    """Worth another try elsewhere: rate limits and upstream failures, not the caller's mistakes."""
    return error.status_code == 429 or error.status_code >= 500


class LocalCooldowns:
    def __init__(self):
        self._lock = threading.Lock()
        self._failures: dict[str, list[float]] = {}
        self._until: dict[str, float] = {}

    def cooling(self, deployment: str) -> bool:
        return self._until.get(deployment, 0) > time.monotonic()

    def failed(self, deployment: str) -> None:
        now = time.monotonic()
        with self._lock:
            recent = [t for t in self._failures.get(deployment, []) if t > now - settings.GATEWAY_COOLDOWN_SECONDS]
            recent.append(now)
            self._failures[deployment] = recent
            if len(recent) >= settings.GATEWAY_COOLDOWN_AFTER_FAILURES:
                self._until[deployment] = now + settings.GATEWAY_COOLDOWN_SECONDS
                self._failures[deployment] = []
                observability.cooled_down(deployment)
                log.warning("deployment %s cooled down for %ss", deployment, settings.GATEWAY_COOLDOWN_SECONDS)

    def succeeded(self, deployment: str) -> None:
        if deployment in self._failures:
            with self._lock:
                self._failures.pop(deployment, None)


class RedisCooldowns:
    """Shared by every process, so one worker's bad experience spares the others.

    A healthy request must not pay a Redis round trip for this: each process remembers a
    deployment's state for COOLING_MEMORY_SECONDS (a cooldown lasts tens of seconds, so
    noticing one a second late costs little), and a success clears the shared failure
    count only when this process has seen that deployment fail."""

    COOLING_MEMORY_SECONDS = 1.0

    def __init__(self, client, prefix: str):
        self.redis = client
        self.prefix = prefix
        self._checked: dict[str, tuple[float, bool]] = {}  # deployment -> (valid until, cooling)
        self._failing: set[str] = set()

    def cooling(self, deployment: str) -> bool:
        now = time.monotonic()
        checked = self._checked.get(deployment)
        if checked is not None and checked[0] > now:
            return checked[1]
        cooling = bool(self.redis.exists(f"{self.prefix}:cool:{deployment}"))
        self._checked[deployment] = (now + self.COOLING_MEMORY_SECONDS, cooling)
        return cooling

    def failed(self, deployment: str) -> None:
        self._failing.add(deployment)
        key = f"{self.prefix}:fails:{deployment}"
        pipe = self.redis.pipeline()
        pipe.incr(key)
        pipe.expire(key, settings.GATEWAY_COOLDOWN_SECONDS, nx=True)
        failures, _ = pipe.execute()
        if failures >= settings.GATEWAY_COOLDOWN_AFTER_FAILURES:
            self.redis.set(f"{self.prefix}:cool:{deployment}", 1, ex=settings.GATEWAY_COOLDOWN_SECONDS)
            self.redis.delete(key)
            self._checked[deployment] = (time.monotonic() + self.COOLING_MEMORY_SECONDS, True)
            observability.cooled_down(deployment)
            log.warning("deployment %s cooled down for %ss", deployment, settings.GATEWAY_COOLDOWN_SECONDS)

    def succeeded(self, deployment: str) -> None:
        if deployment in self._failing:
            self._failing.discard(deployment)
            self.redis.delete(f"{self.prefix}:fails:{deployment}")


_cooldowns = None


def cooldowns():
    global _cooldowns
    if _cooldowns is None:
        _cooldowns = (RedisCooldowns(get_redis(), settings.BILLING_REDIS_PREFIX) if settings.REDIS_URL
                      else LocalCooldowns())
    return _cooldowns


def reset_cooldowns() -> None:
    global _cooldowns
    _cooldowns = None


def _weighted_order(route: Route) -> list[Route]:
    """The model's deployments in a weighted random order, cooled-down ones last."""
    if len(route.deployments) == 1:
        only = route.deployments[0]
        if (only.base_url, only.api_key_env) == (route.base_url, route.api_key_env):
            return [route]  # the common case: nothing to order, nothing to copy
    pool = list(route.deployments)
    ordered = []
    while pool:
        pick = random.choices(pool, weights=[d.weight for d in pool])[0]
        pool.remove(pick)
        ordered.append(replace(route, base_url=pick.base_url, api_key_env=pick.api_key_env))
    fresh = [r for r in ordered if not cooldowns().cooling(r.deployment_id)]
    return fresh + [r for r in ordered if r not in fresh]


def candidates(route: Route, key) -> list[Route]:
    """Every place to try, in order: this model's deployments, then each usable fallback's."""
    chain = _weighted_order(route)
    for public_id in route.fallbacks:
        fallback = lookup_route(public_id)
        if fallback is not None and fallback.enabled and key.allows(fallback.public_id):
            chain.extend(_weighted_order(fallback))
    return chain


def call_with_failover(chain: list[Route], call: Callable[[Route], object]):
    """Run `call` on each candidate until one answers; returns (serving route, result).
    A non-retryable error (the caller's own mistake) is raised at once."""
    last_error = None
    for route in chain:
        for attempt in range(settings.GATEWAY_RETRIES + 1):
            try:
                result = call(route)
            except GatewayError as error:
                if not retryable(error):
                    raise
                last_error = error
                observability.upstream_failed(route.deployment_id)
                cooldowns().failed(route.deployment_id)
                log.warning("upstream %s failed (%s %s), attempt %s", route.deployment_id, error.status_code,
                            error.code, attempt + 1)
                if isinstance(error, UpstreamTimeout) or attempt == settings.GATEWAY_RETRIES:
                    break  # a slow deployment gets no second chance to be slow
                # Exponential backoff with full jitter, so retrying callers do not arrive in step.
                time.sleep(random.uniform(0, settings.GATEWAY_RETRY_BACKOFF_SECONDS * 2 ** attempt))
                continue
            cooldowns().succeeded(route.deployment_id)
            return route, result
    raise last_error
