"""Router configs for benchmarks, written as TOML from plain values, so every benchmark states its
providers and tool settings as data instead of repeating template text."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

Table = tuple[str, Mapping[str, Any]]  # a header with its brackets ("[x]" or "[[x]]"), its keys


def value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)  # a JSON string is a valid TOML basic string
    if isinstance(v, Mapping):
        return "{ " + ", ".join(f"{k} = {value(x)}" for k, x in v.items()) + " }"
    raise TypeError(f"no TOML form for {type(v).__name__}")


def render(top: Mapping[str, Any], tables: Sequence[Table]) -> str:
    """Top-level keys, then each table in order; keys whose value is None are left out."""
    lines = [f"{k} = {value(v)}" for k, v in top.items() if v is not None]
    for header, keys in tables:
        lines += ["", header, *(f"{k} = {value(v)}" for k, v in keys.items() if v is not None)]
    return "\n".join(lines) + "\n"


def tool(name: str, settings: Mapping[str, Any], providers: Iterable[Mapping[str, Any]]) -> list[Table]:
    return [(f"[tools.{name}]", settings), *((f"[[tools.{name}.providers]]", p) for p in providers)]


def openai_provider(
    name: str, base_url: str, model: str, key_env: str, prices: tuple[float, float], **extra: Any
) -> dict[str, Any]:
    """A priced OpenAI-compatible endpoint (the stub's and the fault server's)."""
    return {
        "name": name,
        "type": "openai",
        "base_url": base_url,
        "model": model,
        "api_key_env": key_env,
        "input_cost_per_token": prices[0],
        "output_cost_per_token": prices[1],
        "context_window": 128000,
        **extra,
    }


JUDGE_OFF: Table = ("[judge]", {"enabled": False})
