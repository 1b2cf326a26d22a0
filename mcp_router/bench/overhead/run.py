"""One run of every measurement, in order, into the report dict that the table and the JSON are made of.

The order is part of the method: the micro-benchmarks first, before any server has run in this
process; the full paths (with throughput over HTTP) next; the long ones (RSS, start-up) last.
"""

from __future__ import annotations

import time
from typing import Any

from mcp_router.bench.overhead.bars import all_bars
from mcp_router.bench.overhead.litellm_row import bench_litellm
from mcp_router.bench.overhead.machine import load_average, machine
from mcp_router.bench.overhead.micro import bench_micro
from mcp_router.bench.overhead.params import Params
from mcp_router.bench.overhead.paths import measure_paths
from mcp_router.bench.overhead.progress import progress, restart
from mcp_router.bench.overhead.rss import bench_rss
from mcp_router.bench.overhead.setting import bench_setup
from mcp_router.bench.overhead.startup import bench_startup
from mcp_router.bench.stubs import stub_stats


async def run_all(params: Params) -> dict[str, Any]:
    """Every measurement, in an order that keeps the long ones (RSS, start-up) last."""
    started = restart()
    report: dict[str, Any] = {"machine": machine(), "params": params.describe()}
    with bench_setup() as setup:
        report["micro"], checkpoint_row = bench_micro(params, setup)
        stub_stats(setup.stub)  # reset: the stub's own time is reported for the full paths on
        rows = await measure_paths(setup, params, checkpoint_row, report)
        report["paths"] = [r.to_json() for r in rows]
        report["stub"] = stub_stats(setup.stub)
        progress("LiteLLM")
        report["litellm"] = await bench_litellm(setup, params)
        progress(f"RSS after {', '.join(map(str, params.rss_points))} routed calls (separate process)")
        report["rss"] = bench_rss(setup, params)
        report["startup"] = await bench_startup(setup, params)
    report["machine"]["load_average_at_end"] = load_average()
    report["bars"] = [b.to_json() for b in all_bars(report, rows)]
    report["wall_s"] = round(time.monotonic() - started, 1)
    return report
