"""Throughput over streamable HTTP at rising concurrency, router against floor, and its load generator.

The parent side (`bench_throughput`) runs the load generator in a process of its own, so its event loop
and CPU are not the measured ones, against the HTTP router and floor already up for the full path. The
child side is this module run as `python -m mcp_router.bench.overhead.throughput --router URL --floor
URL --levels C:N,...`, which prints one JSON row per (target, concurrency).
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import anyio

from mcp_router.bench.overhead.children import child_main, run_child
from mcp_router.bench.overhead.params import Params
from mcp_router.bench.overhead.servers import mcp_client
from mcp_router.bench.overhead.setting import Setup, queries, tool_args
from mcp_router.bench.overhead.stats import Dist

THROUGHPUT_ROUNDS = 4  # each level alternates router and floor this many times
LOADGEN_SESSIONS = 8


def bench_throughput(setup: Setup, params: Params, urls: tuple[str, str]) -> list[dict[str, Any]]:
    """The load generator in its own process against the running HTTP router and floor (`search`)."""
    levels = ",".join(f"{c}:{n}" for c, n in params.throughput.items())
    rows = run_child(setup, "throughput", "--router", urls[0], "--floor", urls[1], "--levels", levels)
    floor = {r["concurrency"]: r["calls_per_s"] for r in rows if r["target"] == "floor"}
    for r in rows:
        ratio = r["calls_per_s"] / floor[r["concurrency"]] if floor.get(r["concurrency"]) else None
        r["router_over_floor"] = round(ratio, 3) if r["target"] == "router" and ratio is not None else None
    return rows


# ------------------------------------------------------------------ the load generator (child process)


@dataclass
class Tally:
    """What one target's calls at one concurrency came to, summed over the rounds."""

    ok: int = 0
    errors: int = 0
    lost: int = 0
    wall_s: float = 0.0
    latencies: list[float] = field(default_factory=list)

    def to_json(self, target: str, concurrency: int) -> dict[str, Any]:
        answered = self.ok + self.errors
        return {
            "target": target,
            "concurrency": concurrency,
            "sent": answered + self.lost,
            "ok": self.ok,
            "errors": self.errors,
            "lost": self.lost,
            "wall_s": round(self.wall_s, 3),
            "calls_per_s": round(answered / self.wall_s, 1) if self.wall_s > 0 else 0.0,
            **Dist.of(self.latencies).ms(),
        }


async def loadgen(targets: dict[str, str], tool: str, levels: dict[int, int]) -> list[dict[str, Any]]:
    """Every level, in increasing concurrency, for every target."""
    rows = []
    for concurrency, calls in levels.items():
        rows += await run_level(targets, tool, concurrency, calls)
    return rows


async def run_level(targets: dict[str, str], tool: str, concurrency: int, calls: int) -> list[dict[str, Any]]:
    """One concurrency level: up to 8 client sessions per target, connected and warmed first, then
    `calls` calls per target in rounds that alternate the targets, so a busy spell hits both."""
    tallies = {name: Tally() for name in targets}
    async with contextlib.AsyncExitStack() as stack:
        sessions = {
            name: [
                await stack.enter_async_context(mcp_client(url))
                for _ in range(min(concurrency, LOADGEN_SESSIONS))
            ]
            for name, url in targets.items()
        }
        for clients in sessions.values():
            for client in clients:
                await client.call_tool(tool, tool_args(tool, "warm up", floor=True))
        names = list(targets)
        for round_ in range(THROUGHPUT_ROUNDS):
            share = calls // THROUGHPUT_ROUNDS + (round_ < calls % THROUGHPUT_ROUNDS)
            for name in names if round_ % 2 == 0 else names[::-1]:
                await drive(sessions[name], tool, concurrency, share, tallies[name])
    return [tally.to_json(name, concurrency) for name, tally in tallies.items()]


async def drive(sessions: Sequence[Any], tool: str, concurrency: int, calls: int, tally: Tally) -> None:
    """`calls` calls from `concurrency` concurrent workers spread over `sessions`. A call that raises
    (timeout, dropped connection) is lost; an `is_error` result is answered, as an error."""
    texts = queries(256, seed=5)
    counter = itertools.count()

    async def worker(j: int) -> None:
        client = sessions[j % len(sessions)]
        while (i := next(counter)) < calls:
            started = time.perf_counter()
            try:
                result = await client.call_tool(tool, tool_args(tool, texts[i % len(texts)], floor=True))
            except Exception:
                tally.lost += 1
                continue
            tally.latencies.append(time.perf_counter() - started)
            if result.is_error:
                tally.errors += 1
            else:
                tally.ok += 1

    started = time.perf_counter()
    async with anyio.create_task_group() as group:
        for j in range(concurrency):
            group.start_soon(worker, j)
    tally.wall_s += time.perf_counter() - started


def levels_of(text: str) -> dict[int, int]:
    """`C:N,C:N,...` -> {concurrency: calls}."""
    return {int(c): int(n) for c, n in (part.split(":") for part in text.split(","))}


async def _run(args: argparse.Namespace) -> list[dict[str, Any]]:
    return await loadgen({"router": args.router, "floor": args.floor}, args.tool, levels_of(args.levels))


def main(argv: Sequence[str] | None = None) -> None:
    """The load generator's entry in its child process: JSON rows on stdout."""
    parser = argparse.ArgumentParser(prog="python -m mcp_router.bench.overhead.throughput")
    parser.add_argument("--router", required=True)
    parser.add_argument("--floor", required=True)
    parser.add_argument("--tool", default="search")
    parser.add_argument("--levels", required=True, help="concurrency:calls,...")
    child_main(parser, _run, argv)


if __name__ == "__main__":
    main()
