"""The full path: a routed `search`, `retrieve` and `llm_complete` against floors making the same call.

On each transport (in process, stdio, streamable HTTP) the router and its bare-SDK floor
(`floor_server.py`) serve the same tools against the same stub; batches of router, same-call floor and
echo floor calls alternate so machine noise hits all three, and "added" is router minus floor. In
process, `llm_complete` is measured a second time with a promoted MTRouter checkpoint. The HTTP
throughput levels run here too, on the HTTP servers already up.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
from mcp import Client

from mcp_router.bench.floor_server import create_floor_server
from mcp_router.bench.overhead.calls import alternate, model_stage, timed_call
from mcp_router.bench.overhead.params import Params
from mcp_router.bench.overhead.progress import progress
from mcp_router.bench.overhead.seams import promote_checkpoint, router_server
from mcp_router.bench.overhead.servers import (
    explained,
    floor_args,
    floor_config,
    http_server,
    logs_to,
    mcp_client,
    serve_args,
    stdio_client_for,
)
from mcp_router.bench.overhead.setting import Setup, queries, tool_args
from mcp_router.bench.overhead.stats import Dist, rounded
from mcp_router.bench.overhead.throughput import bench_throughput

TRANSPORTS = ("in-process", "stdio", "http")
TOOLS = ("search", "retrieve", "llm_complete")
FEEDBACK_SCORE = 0.7


@dataclass(frozen=True)
class PathRow:
    """One routed tool on one transport, beside the floor that makes the same provider call."""

    tool: str
    transport: str
    variant: str  # "", or for llm_complete: priors | checkpoint, uncached | cached history
    router: Dist
    floor: Dist
    echo: Dist
    stages: dict[str, int] = field(default_factory=dict)  # llm_complete: MTRouter stages seen
    policies: dict[str, Any] = field(default_factory=dict)  # LQM policies of the last calls

    @property
    def added_p50_ms(self) -> float:
        return (self.router.p50_s - self.floor.p50_s) * 1e3

    @property
    def added_p99_ms(self) -> float:
        return (self.router.p99_s - self.floor.p99_s) * 1e3

    def to_json(self) -> dict[str, Any]:
        return {
            "tool": self.tool,
            "transport": self.transport,
            "variant": self.variant,
            "router": self.router.ms(),
            "floor_same_call": self.floor.ms(),
            "floor_echo": self.echo.ms(),
            "added_p50_ms": rounded(self.added_p50_ms),
            "added_p99_ms": rounded(self.added_p99_ms),
            "stages": self.stages,
            "policies": self.policies,
        }


async def measure_paths(
    setup: Setup, params: Params, checkpoint_row: dict[str, Any], report: dict[str, Any]
) -> list[PathRow]:
    """Every transport in turn; right after the in-process rows, the in-process checkpoint rows."""
    rows: list[PathRow] = []
    for transport in TRANSPORTS:
        rows += await measure_transport(transport, setup, params, report)
        if transport == "in-process":
            rows += await measure_checkpoint(setup, params, checkpoint_row)
    return rows


async def measure_transport(
    transport: str, setup: Setup, params: Params, report: dict[str, Any]
) -> list[PathRow]:
    """The three tools on one transport; over http, the throughput levels too, on the same servers."""
    rows = []
    log = setup.workdir / f"{transport}.log"
    async with explained(f"the {transport} measurement", log), open_pair(transport, setup) as pair:
        for tool in TOOLS:
            progress(f"full path: {tool} over {transport}")
            rows.append(await measure_tool(pair.router, pair.floor, tool, transport, params))
        if pair.urls is not None:
            progress("throughput over http (load generator process)")
            report["throughput"] = bench_throughput(setup, params, pair.urls)
    return rows


async def measure_checkpoint(setup: Setup, params: Params, row: dict[str, Any]) -> list[PathRow]:
    """`llm_complete` in process with a promoted checkpoint: a new turn every call (its history is
    embedded) and the same conversation every call (the embedding cache answers)."""
    db = setup.db("router-checkpoint")
    promote_checkpoint(db, row)
    texts = queries(params.path_calls + params.warmup_calls + 200, seed=3)
    rows = []
    with logs_to(setup.workdir / "in-process-checkpoint.log"):
        router_client, floor_client = in_process_clients(setup, db)
        async with router_client as router, floor_client as floor:
            await wait_for_checkpoint(router)
            for variant, history in (
                ("checkpoint, uncached history", lambda i: f"{texts[i % len(texts)]} (turn {i})"),
                ("checkpoint, cached history", lambda i: "And what should I pack for it?"),
            ):
                progress(f"full path: llm_complete in-process, {variant}")
                rows.append(
                    await measure_tool(router, floor, "llm_complete", "in-process", params, variant, history)
                )
    return rows


async def wait_for_checkpoint(client: Any, timeout_s: float = 180.0) -> None:
    """The server loads a promoted checkpoint in the background: wait until decisions use it."""
    deadline = time.monotonic() + timeout_s
    i = 0
    while time.monotonic() < deadline:
        i += 1
        _, result = await timed_call(
            client, "llm_complete", tool_args("llm_complete", f"probe {i}", floor=False)
        )
        if model_stage(result) == "checkpoint":
            return
        await anyio.sleep(0.2)
    raise RuntimeError(f"the server did not start using the promoted checkpoint within {timeout_s:.0f} s")


async def measure_tool(
    router: Any,
    floor: Any,
    tool: str,
    transport: str,
    params: Params,
    variant: str = "",
    history: Callable[[int], str] | None = None,
) -> PathRow:
    """Warm both sides, then alternate batches of router, same-call floor and echo floor calls. Warm-up
    calls use texts past the measured ones, so no measured call repeats one (a cached history would)."""
    calls = params.path_calls
    texts = queries(calls + params.warmup_calls, seed=10 * TOOLS.index(tool) + len(transport))
    pick = history or (lambda i: texts[i % len(texts)])
    await warm_router(router, tool, params.warmup_calls, lambda i: pick(calls + i))
    for i in range(calls, calls + 5):
        await timed_call(floor, tool, tool_args(tool, pick(i), floor=True))
        await timed_call(floor, "echo", {"text": pick(i)})
    stages: Counter = Counter()

    async def call_router(i: int) -> float:
        elapsed, result = await timed_call(router, tool, tool_args(tool, pick(i), floor=False))
        if tool == "llm_complete":
            stages[model_stage(result)] += 1
        return elapsed

    async def call_floor(i: int) -> float:
        return (await timed_call(floor, tool, tool_args(tool, pick(i), floor=True)))[0]

    async def call_echo(i: int) -> float:
        return (await timed_call(floor, "echo", {"text": pick(i)}))[0]

    samples = await alternate(
        {"router": call_router, "floor": call_floor, "echo": call_echo}, calls, params.batch
    )
    return PathRow(
        tool=tool,
        transport=transport,
        variant=variant or ("priors" if tool == "llm_complete" else ""),
        router=Dist.of(samples["router"]),
        floor=Dist.of(samples["floor"]),
        echo=Dist.of(samples["echo"]),
        stages={str(k): v for k, v in stages.items()},
        policies=await recent_policies(router),
    )


async def warm_router(client: Any, tool: str, calls: int, history: Callable[[int], str]) -> None:
    """Calls rated through `feedback`, so every arm leaves LQM's warm-up before anything is timed."""
    for i in range(calls):
        _, result = await timed_call(client, tool, tool_args(tool, history(i), floor=False))
        rating = {"call_id": result.structured_content["call_id"], "score": FEEDBACK_SCORE}
        await timed_call(client, "feedback", rating)


async def recent_policies(client: Any) -> dict[str, Any]:
    """The LQM policy of the server's last calls (`router://calls/recent`), to show that the timed calls
    were past warm-up. Diagnostics only: the resource's shape is the server's business."""
    try:
        body = json.loads((await client.read_resource("router://calls/recent")).contents[0].text)
        return dict(Counter(str(c.get("decision", {}).get("policy")) for c in body.get("calls", [])))
    except Exception as exc:  # a missing or reshaped resource must not end the run
        return {"unavailable": type(exc).__name__}


@dataclass(frozen=True)
class Pair:
    router: Any  # an open mcp.Client on the router
    floor: Any  # an open mcp.Client on the floor server
    urls: tuple[str, str] | None = None  # (router, floor) MCP URLs over http


@contextlib.asynccontextmanager
async def open_pair(transport: str, setup: Setup) -> AsyncIterator[Pair]:
    """Clients of the router and of its floor on `transport`; servers it starts are stopped on exit."""
    db = setup.db(f"router-{transport}")
    urls = None
    async with contextlib.AsyncExitStack() as stack:
        if transport == "in-process":
            stack.enter_context(logs_to(setup.workdir / "in-process.log"))
            router, floor = in_process_clients(setup, db)
        elif transport == "stdio":
            log = stack.enter_context(open(setup.workdir / "stdio.log", "a"))  # noqa: SIM115
            router = stdio_client_for(serve_args(setup, db), setup.env(), log)
            floor = stdio_client_for(floor_args(setup, "--transport", "stdio"), setup.env(), log)
        else:
            log_path = setup.workdir / "http.log"
            urls = (
                stack.enter_context(http_server(serve_args(setup, db), setup.env(), log_path)),
                stack.enter_context(http_server(floor_args(setup), setup.env(), log_path)),
            )
            router, floor = mcp_client(urls[0]), mcp_client(urls[1])
        yield Pair(await stack.enter_async_context(router), await stack.enter_async_context(floor), urls)


def in_process_clients(setup: Setup, db: Path) -> tuple[Client, Client]:
    """Clients (not yet open) of an in-process router over `db` and of an in-process floor."""
    return mcp_client(router_server(setup.config, db)), mcp_client(create_floor_server(floor_config(setup)))
