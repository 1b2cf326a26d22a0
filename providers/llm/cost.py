"""Cost of one completion from per-token prices (LiteLLM's field names in config)."""

from __future__ import annotations

from providers.base import ProviderSpec
from providers.types import Usage


def completion_cost(spec: ProviderSpec, usage: Usage) -> float:
    return (
        usage.prompt_tokens * spec.input_cost_per_token + usage.completion_tokens * spec.output_cost_per_token
    )
