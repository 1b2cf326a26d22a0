"""One timed MCP tool call, and batches of calls that alternate between the sides compared.

Every side of every comparison (router, floors, LiteLLM, raw httpx) is timed by these two functions,
so a difference between two figures is a difference between the sides, not between their timers.
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable
from typing import Any


class CallFailed(RuntimeError):
    """A measured call returned an error: the setting is broken, and a timing of it would mean nothing."""


async def timed_call(client: Any, tool: str, args: dict[str, Any]) -> tuple[float, Any]:
    """(seconds, result) of one tool call seen from the client; an error result raises `CallFailed`."""
    started = time.perf_counter()
    result = await client.call_tool(tool, args)
    elapsed = time.perf_counter() - started
    if result.is_error:
        text = result.content[0].text if result.content else "(no text)"
        raise CallFailed(f"{tool} failed: {text[:500]}")
    return elapsed, result


def model_stage(result: Any) -> Any:
    """The MTRouter stage (prior, checkpoint, ...) an `llm_complete` result reports, or None."""
    return (result.structured_content.get("model_choice") or {}).get("stage")


Caller = Callable[[int], Awaitable[float]]


async def alternate(callers: dict[str, Caller], calls: int, batch: int) -> dict[str, list[float]]:
    """`calls` calls of each caller in batches, the order of the callers reversed every round, so slow
    phases of the machine land on all of them alike."""
    samples: dict[str, list[float]] = {name: [] for name in callers}
    names = list(callers)
    for round_ in range(math.ceil(calls / batch)):
        for name in names if round_ % 2 == 0 else names[::-1]:
            for i in range(round_ * batch, min(calls, (round_ + 1) * batch)):
                samples[name].append(await callers[name](i))
    return samples
