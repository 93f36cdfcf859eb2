from ..catalog import Route
from .base import Completion, ProviderAdapter, Usage, usage_from_openai
from .mock import MockAdapter
from .openai import OpenAIAdapter

ADAPTERS: dict[str, ProviderAdapter] = {
    "openai": OpenAIAdapter(),
    "mock": MockAdapter(),
}


def adapter_for(route: Route) -> ProviderAdapter:
    return ADAPTERS[route.protocol]


__all__ = ["ADAPTERS", "Completion", "ProviderAdapter", "Usage", "adapter_for", "usage_from_openai"]
