from ...routing.catalog import Route
from ...api.errors import UpstreamError
from .anthropic import AnthropicAdapter
from .base import Completion, ProviderAdapter, Usage, usage_from_openai
from .gemini import GeminiAdapter
from .mock import MockAdapter
from .openai import OpenAIAdapter

ADAPTERS: dict[str, ProviderAdapter] = {
    "openai": OpenAIAdapter(),
    "anthropic": AnthropicAdapter(),
    "gemini": GeminiAdapter(),
    "mock": MockAdapter(),
}


def adapter_for(route: Route) -> ProviderAdapter:
    adapter = ADAPTERS.get(route.protocol)
    if adapter is None:
        raise UpstreamError(f"The '{route.protocol}' protocol of provider '{route.provider}' is not available "
                            "in this version of the gateway.")
    return adapter


__all__ = ["ADAPTERS", "Completion", "ProviderAdapter", "Usage", "adapter_for", "usage_from_openai"]
