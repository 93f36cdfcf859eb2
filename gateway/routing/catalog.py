"""The model catalog: routes from "provider:modelId" to an upstream, read through a cache."""

import threading
import time
from dataclasses import dataclass
from decimal import Decimal
from functools import cached_property

from django.conf import settings

from billing.charging import Prices

from ..api.errors import ModelNotFound
from ..models import CatalogModel, ModelAlias


@dataclass(frozen=True)
class Deployment:
    base_url: str
    api_key_env: str
    weight: float = 1


@dataclass(frozen=True)
class Route:
    """Everything the request path needs to call and bill one catalog model."""

    model_id: int
    public_id: str
    provider: str
    protocol: str
    base_url: str
    api_key_env: str
    api_key_encrypted: str
    timeout_seconds: float | None
    upstream_model: str
    input_per_mtok: Decimal
    output_per_mtok: Decimal
    cached_input_per_mtok: Decimal | None
    max_output_tokens: int | None
    context_window: int | None
    enabled: bool
    deployments: tuple[Deployment, ...] = ()
    fallbacks: tuple[str, ...] = ()
    # The provider's options for OpenAI-protocol servers: (name, value) pairs, kept immutable.
    auth_header: str = ""
    headers: tuple[tuple[str, str], ...] = ()
    query_params: tuple[tuple[str, str], ...] = ()
    cache_write_per_mtok: Decimal | None = None

    @property
    def deployment_id(self) -> str:
        return f"{self.public_id}@{self.base_url}"

    @cached_property
    def prices(self) -> Prices:
        # Once per route the catalog cache holds, not per request: Prices works out the
        # integers the cost is computed in.
        return Prices(self.input_per_mtok, self.output_per_mtok, self.cached_input_per_mtok, self.cache_write_per_mtok)


def route_from_model(m: CatalogModel) -> Route:
    p = m.provider
    deployments = tuple(
        Deployment((d.get("base_url") or p.base_url).rstrip("/"), d.get("api_key_env") or p.api_key_env,
                   d.get("weight") or 1)
        for d in m.deployments or ()
    ) or (Deployment(p.base_url.rstrip("/"), p.api_key_env, 1),)
    return Route(
        model_id=m.pk,
        public_id=f"{p.slug}:{m.name}",
        provider=p.slug,
        protocol=p.protocol,
        base_url=p.base_url.rstrip("/"),
        api_key_env=p.api_key_env,
        api_key_encrypted=p.api_key_encrypted,
        timeout_seconds=p.timeout_seconds,
        upstream_model=m.upstream_model or m.name,
        input_per_mtok=m.input_per_mtok,
        output_per_mtok=m.output_per_mtok,
        cached_input_per_mtok=m.cached_input_per_mtok,
        cache_write_per_mtok=m.cache_write_per_mtok,
        max_output_tokens=m.max_output_tokens,
        context_window=m.context_window,
        enabled=m.enabled and p.enabled,
        deployments=deployments,
        fallbacks=tuple(m.fallbacks or ()),
        auth_header=p.auth_header,
        headers=tuple((p.headers or {}).items()),
        query_params=tuple((p.query_params or {}).items()),
    )


# Catalog rows change only when an operator loads a file, so each process keeps routes
# in memory for GATEWAY_CACHE_SECONDS instead of asking the database on every request.
_routes: dict[str, tuple[float, Route | None]] = {}
_routes_lock = threading.Lock()


def forget_routes() -> None:
    with _routes_lock:
        _routes.clear()


def lookup_route(public_id: str) -> Route | None:
    now = time.monotonic()
    hit = _routes.get(public_id)
    if hit is not None and hit[0] > now:
        return hit[1]
    target = public_id
    if ":" not in public_id:  # an alias names its model
        alias = ModelAlias.objects.filter(name=public_id, enabled=True).first()
        target = alias.target if alias else None
    row = None
    if target:
        provider, _, name = target.partition(":")
        row = CatalogModel.objects.select_related("provider").filter(provider__slug=provider, name=name).first()
    route = route_from_model(row) if row else None
    with _routes_lock:
        _routes[public_id] = (now + settings.GATEWAY_CACHE_SECONDS, route)
    return route


def resolve_route(public_id: str, key) -> Route:
    """The route for a model (or alias) the caller may use, or model_not_found saying why not."""
    if len(public_id) > 300 or not public_id.isprintable():
        # No catalog name looks like this, and PostgreSQL refuses NUL bytes in a query.
        raise ModelNotFound("The model name is not a catalog model: it is too long or has control characters.")
    provider, sep, name = public_id.partition(":")
    route = lookup_route(public_id) if (provider and name) or not sep else None
    if route is None and not sep:
        raise ModelNotFound(
            f"The model '{public_id}' does not exist. Write models as 'provider:modelId', "
            "for example 'deepseek:deepseek-chat'; GET /v1/models lists them."
        )
    if route is None:
        raise ModelNotFound(f"The model '{public_id}' does not exist. GET /v1/models lists the models you can use.")
    if not route.enabled:
        raise ModelNotFound(f"The model '{public_id}' is disabled on this gateway.")
    if not key.allows(route.public_id):
        raise ModelNotFound(f"The model '{public_id}' is not allowed for this API key.")
    return route


def models_for_key(key) -> list[CatalogModel]:
    rows = CatalogModel.objects.select_related("provider").filter(enabled=True, provider__enabled=True)
    return [m for m in rows if key.allows(m.public_id)]
