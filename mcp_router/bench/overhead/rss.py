"""The resident memory of a process serving routed calls, after a few calls and after many.

The parent side (`bench_rss`) runs the probe in a fresh process, so nothing else this benchmark loaded
is in the memory read. The child side is this module run as `python -m mcp_router.bench.overhead.rss
--config F --db F --points N,...`: an in-process router serving `search`, its RSS read after each point.
"""

from __future__ import annotations

import argparse
import gc
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mcp_router.bench.overhead.calls import timed_call
from mcp_router.bench.overhead.children import child_main, run_child
from mcp_router.bench.overhead.params import Params
from mcp_router.bench.overhead.seams import router_server
from mcp_router.bench.overhead.servers import mcp_client
from mcp_router.bench.overhead.setting import Setup, queries, tool_args


def bench_rss(setup: Setup, params: Params) -> dict[str, Any]:
    """The RSS probe in a fresh process, so nothing else this benchmark loaded is in its memory."""
    points = ",".join(str(p) for p in params.rss_points)
    result = run_child(
        setup, "rss", "--config", str(setup.config), "--db", str(setup.db("rss")), "--points", points
    )
    readings = result["readings"]
    first, last = readings[1], readings[-1]
    return {
        "tool": "search",
        "transport": "in-process",
        "readings": readings,
        "from_calls": first["calls"],
        "to_calls": last["calls"],
        "growth_mb": round(last["rss_mb"] - first["rss_mb"], 1),
    }


# ------------------------------------------------------------------------ the probe (child process)


def rss_mb() -> float:
    """This process's resident set: psutil if installed, else /proc/self/status."""
    try:
        import psutil

        return psutil.Process().memory_info().rss / 2**20
    except ImportError:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return math.nan


async def rss_probe(config: Path, db: Path, points: Sequence[int]) -> dict[str, Any]:
    """Routed `search` calls through an in-process server, RSS read after each of `points` calls."""
    texts = queries(1000, seed=6)
    readings = []
    async with mcp_client(router_server(config, db)) as client:
        readings.append({"calls": 0, "rss_mb": round(rss_mb(), 1)})
        done = 0
        for point in sorted(points):
            for i in range(done, point):
                await timed_call(client, "search", tool_args("search", texts[i % len(texts)], floor=False))
                if (i + 1) % max(1, point // 10) == 0:
                    print(f"rss probe: {i + 1} calls", file=sys.stderr, flush=True)
            done = point
            gc.collect()
            readings.append({"calls": point, "rss_mb": round(rss_mb(), 1)})
    return {"readings": readings}


async def _run(args: argparse.Namespace) -> dict[str, Any]:
    return await rss_probe(Path(args.config), Path(args.db), [int(p) for p in args.points.split(",")])


def main(argv: Sequence[str] | None = None) -> None:
    """The probe's entry in its child process: `{"readings": [...]}` on stdout."""
    parser = argparse.ArgumentParser(prog="python -m mcp_router.bench.overhead.rss")
    parser.add_argument("--config", required=True)
    parser.add_argument("--db", required=True)
    parser.add_argument("--points", required=True)
    child_main(parser, _run, argv)


if __name__ == "__main__":
    main()
