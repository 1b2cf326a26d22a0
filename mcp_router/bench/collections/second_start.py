"""Part 2, the second start: servers on the index the first start left, each timed to its first
served call.

Three servers in turn, each started `warm_starts` times: only `dense`, only `hybrid`, and all three
arms. A one-arm server can only be served by that arm, so its first successful call is that arm's;
the first call is sent as soon as the server is initialized and, if it fails, sent again every
`retry_every_s`. For the three-arm server the resource is also read every `fast_poll_s` from the
start, for the time the dense view is published. Times are since the spawn, and since `initialize`
(what a host that has already connected waits).
"""

from __future__ import annotations

import statistics
from typing import Any

import anyio

from mcp_router.bench.collections.params import Params
from mcp_router.bench.collections.progress import progress
from mcp_router.bench.collections.server import Call, Session, retrieve, started
from mcp_router.bench.collections.setting import ARMS, Workspace
from mcp_router.bench.collections.watch import Watch, watch_until

SERVERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("dense", ("dense",)),
    ("hybrid", ("hybrid",)),
    ("all", ARMS),
)


async def bench_second_start(ws: Workspace, queries: list[str], params: Params) -> list[dict[str, Any]]:
    rows = []
    for label, arms in SERVERS:
        starts = [await one_start(ws, label, arms, queries, params, rep) for rep in range(params.warm_starts)]
        row = {"server": label, "arms": list(arms), **medians(starts), "starts": starts}
        rows.append(row)
        progress(
            f"second start, {label}: first call served {row['median_first_served_s']} s after spawn "
            f"({row['median_after_initialize_s']} s after initialize), by {row['served_by']}"
        )
    return rows


async def one_start(
    ws: Workspace, label: str, arms: tuple[str, ...], queries: list[str], params: Params, rep: int
) -> dict[str, Any]:
    watch = Watch()
    async with started(ws, arms, f"second-start-{label}-{rep}") as session:
        stop = anyio.Event()
        async with anyio.create_task_group() as group:
            if len(arms) > 1:
                group.start_soon(watch_until, session, watch, params.fast_poll_s, stop)
            tries = await first_served(session, queries, params, rep)
            if len(arms) > 1:
                with anyio.move_on_after(max(0.0, params.ready_limit_s - session.since())):
                    while watch.dense_ready_s is None:
                        await anyio.sleep(params.fast_poll_s)
            stop.set()
    served = tries[-1] if tries and tries[-1].ok else None
    start: dict[str, Any] = {
        "initialized_s": session.initialized_s,
        "first_served_s": served.answered_s if served else None,
        "after_initialize_s": round(served.answered_s - session.initialized_s, 3) if served else None,
        "served_by": served.arm if served else None,
        "first_call_latency_s": served.latency_s if served else None,
        "tries": len(tries),
        "failed_tries": [t.to_json() for t in tries if not t.ok],
    }
    if len(arms) > 1:
        start |= {"lexical_ready_s": watch.lexical_ready_s, "dense_ready_s": watch.dense_ready_s}
    return start


async def first_served(session: Session, queries: list[str], params: Params, rep: int) -> list[Call]:
    """Calls until one succeeds (or `ready_limit_s` passes), each sent `retry_every_s` after the last
    failed one; every try, the successful one last."""
    tries: list[Call] = []
    while session.since() < params.ready_limit_s:
        call = await retrieve(session, queries[(rep * 7 + len(tries)) % len(queries)], len(tries))
        tries.append(call)
        if call.ok:
            break
        await anyio.sleep(params.retry_every_s)
    return tries


def medians(starts: list[dict[str, Any]]) -> dict[str, Any]:
    """Median and max of each time over the starts; the arms that served the first calls."""
    out: dict[str, Any] = {}
    for key in ("initialized_s", "first_served_s", "after_initialize_s", "dense_ready_s"):
        values = [s[key] for s in starts if s.get(key) is not None]
        if key in starts[0]:
            out[f"median_{key}"] = round(statistics.median(values), 3) if values else None
            out[f"max_{key}"] = max(values) if len(values) == len(starts) else None
    out["served_by"] = sorted({s["served_by"] or "nothing" for s in starts})
    return out
