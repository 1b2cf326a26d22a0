"""Provider adapters: one class per real service behind `search`, `retrieve` and `llm_complete`.

Adapters build requests, parse responses into the result types of :mod:`providers.types` and map
every failure onto the error types of :mod:`providers.errors`. They know nothing of routing, MCP or
SQLite, so that the same adapter serves the server, the benchmarks and `mcp-router doctor`.
"""

from providers.base import Adapter, ProviderEnv, ProviderSpec, Secret
from providers.errors import BadRequest, BadResponse, ProviderError, RateLimited, Unavailable
from providers.registry import adapter_class, create_adapter, known_types

__all__ = [
    "Adapter",
    "BadRequest",
    "BadResponse",
    "ProviderEnv",
    "ProviderError",
    "ProviderSpec",
    "RateLimited",
    "Secret",
    "Unavailable",
    "adapter_class",
    "create_adapter",
    "known_types",
]
