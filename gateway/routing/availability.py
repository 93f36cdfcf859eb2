"""Whether a catalog model can answer now, and if not, why: for the console's pages and
for listings such as /v1/models, so that nobody is offered a model that cannot work.

A model is unusable when it (or its provider) is disabled, or when none of its deployments
has an upstream key. Every deployment cooling down leaves it usable (the gateway still
tries them) but worth a warning.
"""

from dataclasses import dataclass, replace

from .catalog import Route, route_from_model
from ..models import CatalogModel
from .resilience import cooldowns
from ..upstream.calls import has_key

AVAILABLE = "available"
COOLING_DOWN = "cooling_down"
NOT_CONFIGURED = "not_configured"
DISABLED = "disabled"

LABELS = {
    AVAILABLE: "Available",
    COOLING_DOWN: "Cooling down",
    NOT_CONFIGURED: "Provider not configured",
    DISABLED: "Disabled",
}


@dataclass(frozen=True)
class Availability:
    status: str
    reason: str = ""  # a sentence for people; empty when the model is available

    @property
    def usable(self) -> bool:
        return self.status in (AVAILABLE, COOLING_DOWN)

    @property
    def label(self) -> str:
        return LABELS[self.status]


def model_availability(model: CatalogModel | Route) -> Availability:
    route = model if isinstance(model, Route) else route_from_model(model)
    if not route.enabled:
        return Availability(DISABLED, f"The model '{route.public_id}' is disabled on this gateway.")
    # Each deployment is tried as a copy of the route with its own place and key (resilience).
    places = [replace(route, base_url=d.base_url, api_key_env=d.api_key_env) for d in route.deployments]
    configured = [place for place in places if has_key(place)]
    if not configured:
        return Availability(NOT_CONFIGURED, (
            f"The provider '{route.provider}' is not configured on this gateway: the operator has not "
            "given it an API key yet."
        ))
    if all(cooldowns().cooling(place.deployment_id) for place in configured):
        return Availability(COOLING_DOWN, (
            f"The provider '{route.provider}' failed several times just now and is cooling down for a "
            "few seconds; requests still reach it, but may fail or go to a fallback model."
        ))
    return Availability(AVAILABLE)


def serves_chat(model: CatalogModel) -> bool:
    """Whether the model takes chat requests. The catalog does not declare surfaces yet, so
    embedding models are known by their name, as every provider names them."""
    return "embed" not in model.name.lower()
