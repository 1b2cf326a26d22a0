"""Event propagation between processes: how soon what one replica learns is in another's router.

Two servers run on one fresh database. Each trial makes a `search` and rates it with `feedback`
through A; from the moment the feedback is acknowledged (committed), B's `router://stats/search` is
polled until B's score decomposition of the rated arm (`arms[arm].router.score`: û, width, latency,
the count of quality observations in the window, V) equals A's. The count changes with every
feedback, so equality means B has folded that very event. The delay includes one resource read
(a few milliseconds) and the polling step.
"""

from __future__ import annotations

import contextlib
import json
import time
from typing import Any

import anyio

from mcp_router.bench.overhead.calls import timed_call
from mcp_router.bench.overhead.servers import mcp_client
from mcp_router.bench.overhead.setting import Setup, queries, tool_args
from mcp_router.bench.overhead.stats import quantile
from mcp_router.bench.state.servers import spawn, stop
from mcp_router.bench.state.targets import Target

POLL_S = 0.01
TRIAL_TIMEOUT_S = 10.0


async def bench_propagation(setup: Setup, target: Target, trials: int) -> dict[str, Any]:
    """`trials` feedbacks through A, each timed until B's router shows it."""
    log = setup.workdir / f"{target.backend}-propagation.log"
    delays: list[float | None] = []
    with contextlib.ExitStack() as stack:
        servers = [spawn(setup, target, log) for _ in range(2)]
        for server in servers:
            stack.callback(stop, server)
        async with mcp_client(servers[0].url) as a, mcp_client(servers[1].url) as b:
            for i, text in enumerate(queries(trials, seed=11)):
                delays.append(await trial(a, b, text, score=(i % 5) / 4))
    return summary(delays)


async def trial(a: Any, b: Any, text: str, score: float) -> float | None:
    """Seconds from A's acknowledged feedback until B's score of the rated arm equals A's; None
    when B has not caught up within `TRIAL_TIMEOUT_S`."""
    _, result = await timed_call(a, "search", tool_args("search", text, floor=True))
    call_id, arm = result.structured_content["call_id"], result.structured_content["provider"]
    await timed_call(a, "feedback", {"call_id": call_id, "score": score})
    acknowledged = time.perf_counter()
    wanted = await arm_score(a, arm)
    while time.perf_counter() - acknowledged < TRIAL_TIMEOUT_S:
        if await arm_score(b, arm) == wanted:
            return time.perf_counter() - acknowledged
        await anyio.sleep(POLL_S)
    return None


async def arm_score(client: Any, arm: str) -> dict[str, Any]:
    stats = json.loads((await client.read_resource("router://stats/search")).contents[0].text)
    return stats["arms"][arm]["router"]["score"]


def summary(delays: list[float | None]) -> dict[str, Any]:
    seen = sorted(d for d in delays if d is not None)
    figures = {"p50_s": quantile(seen, 0.5), "p95_s": quantile(seen, 0.95), "max_s": seen[-1]} if seen else {}
    return {
        "trials": len(delays),
        "timeouts": len(delays) - len(seen),
        **{k: round(v, 3) for k, v in figures.items()},
        "samples_s": [None if d is None else round(d, 3) for d in delays],
        "poll_s": POLL_S,
    }
