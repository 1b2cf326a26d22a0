"""Start-up: process start to the first served `search` / `retrieve` over stdio, router and floor.

What a client (Claude Desktop, an IDE) waits for when it launches the server: a fresh router database
each time, and the floor's start-up beside it for what any MCP server over stdio pays.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mcp_router.bench.overhead.calls import timed_call
from mcp_router.bench.overhead.params import Params
from mcp_router.bench.overhead.progress import progress
from mcp_router.bench.overhead.servers import explained, floor_args, serve_args, stdio_client_for
from mcp_router.bench.overhead.setting import Setup, tool_args


async def bench_startup(setup: Setup, params: Params) -> list[dict[str, Any]]:
    """Process start to first served `search` and `retrieve` (bm25), router (fresh database) and floor."""
    rows = []
    for tool in ("search", "retrieve"):
        for target in ("router", "floor"):
            samples = []
            for rep in range(params.startup_reps):
                args = (
                    serve_args(setup, setup.db(f"startup-{tool}-{rep}"))
                    if target == "router"
                    else floor_args(setup, "--transport", "stdio")
                )
                samples.append(await first_call_s(args, setup.env(), tool, setup.workdir / "startup.log"))
            rows.append(startup_row(target, tool, samples))
            progress(f"start-up: {target} {tool} {rows[-1]['median_s']} s")
    return rows


async def first_call_s(args: list[str], env: dict[str, str], tool: str, log: Path) -> float:
    """Seconds from spawning a stdio server to the answer of its first `tool` call."""
    with open(log, "a") as sink:
        async with explained(f"starting `{' '.join(args[:3])}`", log):
            started = time.perf_counter()
            async with stdio_client_for(args, env, sink) as client:
                await timed_call(
                    client, tool, tool_args(tool, "configure the claude desktop client", floor=True)
                )
                return time.perf_counter() - started


def startup_row(target: str, tool: str, samples: Sequence[float]) -> dict[str, Any]:
    return {
        "target": target,
        "tool": tool,
        "transport": "stdio",
        "samples_s": [round(s, 3) for s in samples],
        "median_s": round(float(np.median(samples)), 3),
        "max_s": round(max(samples), 3),
    }
