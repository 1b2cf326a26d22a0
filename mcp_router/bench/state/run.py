"""One run: per backend a warm-up start, each size (generate, then the three restarts, each paired
with an empty-database start), then the propagation between two processes and retention over time;
the bar last. A size
whose generation is predicted (from the previous size's rate) to take longer than the budget is
skipped and reported as such."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from typing import Any

from mcp_router.bench.overhead.machine import load_average, machine
from mcp_router.bench.overhead.setting import Setup
from mcp_router.bench.state.bars import all_bars
from mcp_router.bench.state.params import Params
from mcp_router.bench.state.progress import progress, restart
from mcp_router.bench.state.propagation import bench_propagation
from mcp_router.bench.state.retention import bench_retention
from mcp_router.bench.state.setting import state_setup
from mcp_router.bench.state.startup import Baseline, bench_size
from mcp_router.bench.state.targets import Target, targets, unavailable


async def run_all(params: Params) -> dict[str, Any]:
    started = restart()
    report: dict[str, Any] = {
        "machine": {**machine(), "sqlite": sqlite3.sqlite_version},
        "params": params.describe(),
        "backends": {},
    }
    with state_setup() as setup:
        for backend in params.backends:
            reason = unavailable(backend)
            if reason is not None:
                progress(f"{backend}: skipped ({reason})")
                report["backends"][backend] = {"skipped": reason}
                continue
            with targets(backend, setup.workdir) as new_target:
                report["backends"][backend] = await bench_backend(setup, new_target, params)
    report["machine"]["load_average_at_end"] = load_average()
    report["bars"] = [b.to_json() for b in all_bars(report["backends"])]
    report["wall_s"] = round(time.monotonic() - started, 1)
    return report


async def bench_backend(setup: Setup, new_target: Callable[[str], Target], params: Params) -> dict[str, Any]:
    backend = new_target("version_probe")
    result: dict[str, Any] = {"server_version": server_version(backend)}
    baseline = Baseline(setup, new_target)
    progress(f"{backend.backend}: a warm-up start, not recorded")
    await baseline.start()
    result["sizes"], result["skipped_sizes"] = [], []
    rate = None  # seconds per generated call, from the previous size
    for calls in params.sizes:
        if rate is not None and rate * calls > params.generate_budget_s:
            reason = (
                f"generating it would take about {rate * calls:.0f} s, over the "
                f"{params.generate_budget_s:.0f} s budget"
            )
            progress(f"{backend.backend} {calls:,}: skipped ({reason})")
            result["skipped_sizes"].append({"calls": calls, "reason": reason})
            continue
        row = await bench_size(setup, new_target(f"calls_{calls}"), calls, params, baseline)
        rate = row["generated"]["seconds"] / calls
        result["sizes"].append(row)
    result["empty"] = baseline.summary()
    progress(f"{backend.backend}: propagation between two processes ({params.trials} trials)")
    result["propagation"] = await bench_propagation(setup, new_target("propagation"), params.trials)
    calls, keep, every = params.retention
    progress(f"{backend.backend}: retention, {calls:,} calls written, the newest {keep:,} kept")
    result["retention"] = bench_retention(new_target("retention"), calls, keep, every)
    return result


def server_version(target: Target) -> str:
    if target.backend == "sqlite":
        return f"SQLite {sqlite3.sqlite_version}"
    store = target.open()
    try:
        return "PostgreSQL " + str(store.query("SHOW server_version")[0]["server_version"])
    finally:
        store.close()
