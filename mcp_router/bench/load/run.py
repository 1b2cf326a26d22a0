"""One `bench load` run, in order, into the report dict the table and the JSON are made of.

1. the fault server and one router process on a fresh SQLite database;
2. a warm-up through the load generator, then the server's RSS (the start figure);
3. the load: `calls` calls at `concurrency`, RSS sampled; with `kill`, `kill -9` at half the
   acknowledgements, and the generator stops once the server is gone;
4. without `kill`, `router://stats/search` from the live server, then a clean stop; with `kill`, a
   new server process on the same database serves `router://stats/search`, then stops;
5. the checks on the database file (`checks.py`) and the servers' logs (`logs.py`), then the bars.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import anyio

from mcp_router.bench.load import checks
from mcp_router.bench.load.bars import all_bars
from mcp_router.bench.load.drive import Drive, drive
from mcp_router.bench.load.logs import scan
from mcp_router.bench.load.params import Params
from mcp_router.bench.load.progress import progress, restart
from mcp_router.bench.load.server import RouterProcess, router_process, rss_mb
from mcp_router.bench.load.setting import FAULTY, LLM_ARMS, ROUTER, SEARCH_ARMS, LoadSetup, load_setup
from mcp_router.bench.overhead.machine import load_average, machine
from mcp_router.bench.overhead.servers import mcp_client

STATS_TIMEOUT_S = 60.0
STATS_TOOL = "search"


async def read_stats(url: str, tool: str = STATS_TOOL) -> dict[str, Any]:
    """`router://stats/<tool>` as the server at `url` serves it."""
    with anyio.fail_after(STATS_TIMEOUT_S):
        async with mcp_client(url) as client:
            result = await client.read_resource(f"router://stats/{tool}")
            return json.loads(result.contents[0].text)


def served_stats(server: RouterProcess) -> dict[str, Any]:
    """The stats resource, or what went wrong reading it (a finding, not a crash of the benchmark)."""
    try:
        return {"served": True, "stats": anyio.run(read_stats, server.url)}
    except Exception as exc:
        return {"served": False, "error": f"{type(exc).__name__}: {exc}"[:500]}


def rss_figures(start: float | None, end: float | None, load: Drive, killed: bool) -> dict[str, Any]:
    """Start (after the warm-up), end (after the load, or the last sample before the kill), growth."""
    samples = [mb for _, mb in load.rss_samples]
    if killed:
        end = samples[-1] if samples else None
    growth = round(end - start, 1) if start is not None and end is not None else None
    return {
        "start_mb": start,
        "end_mb": end,
        "growth_mb": growth,
        "peak_mb": max([*samples, *(x for x in (start, end) if x is not None)], default=None),
        "end_is": "the last sample before the kill" if killed else "after the last call",
        "samples": load.rss_samples,
    }


def run_load(setup: LoadSetup, params: Params, report: dict[str, Any]) -> None:
    """Warm-up, RSS, the load (and the kill), into `report`; the server is stopped (or killed) after."""
    warm_acks, load_acks = setup.workdir / "warmup.acks", setup.workdir / "load.acks"
    with router_process(setup, setup.log("server")) as server:
        progress(f"server pid {server.pid} at {server.url}; warm-up: {params.warmup_calls} calls")
        warm = drive(setup, server, params, params.warmup_calls, warm_acks, "warm-up")
        start = rss_mb(server.pid)
        setup.faults.stats()  # reset: what follows counts the load's requests only
        progress(
            f"RSS after warm-up {start} MB; load: {params.calls} calls at concurrency {params.concurrency}"
        )
        load = drive(setup, server, params, params.calls, load_acks, "load", kill_at=params.kill_at)
        killed = load.killed_at_acks is not None
        end = None if killed else rss_mb(server.pid)
        report["fault_server"] = setup.faults.stats()
        report["warmup"] = warm.summary
        report["load"] = load.summary
        report["rss"] = rss_figures(start, end, load, killed)
        report["kill"] = {"killed": killed, "at_acknowledged": load.killed_at_acks}
        if not killed:
            progress("router://stats/search from the live server")
            report["stats_resource"] = served_stats(server)
    report["server_exit"] = server.process.returncode


def crash_copy(setup: LoadSetup) -> dict[str, Any]:
    """The database files exactly as the kill left them (main file and WAL), copied and checked before
    any server reopens them: the crash state itself must be consistent, not only what a restart makes
    of it. Opening the copy replays its WAL, as any first connection after a crash does."""
    copy = setup.workdir / "crash-copy"
    copy.mkdir()
    for suffix in ("", "-wal"):
        source = Path(f"{setup.db}{suffix}")
        if source.exists():
            shutil.copyfile(source, copy / f"{setup.db.name}{suffix}")
    db = copy / setup.db.name
    counters = checks.counters(db)
    return {
        "integrity_check": checks.integrity(db),
        "arm_state_matches_attempts": counters["arm_state_matches_attempts"],
        "tool_totals_match_calls": counters["tool_totals_match_calls"],
    }


def restarted(setup: LoadSetup, report: dict[str, Any]) -> None:
    """A new server process on the killed one's database: does it start and serve the stats?"""
    report["kill"]["before_restart"] = crash_copy(setup)
    progress("restart on the same database")
    started = time.monotonic()
    with router_process(setup, setup.log("server-restarted")) as again:
        report["kill"]["restart_s"] = round(time.monotonic() - started, 2)
        report["stats_resource"] = served_stats(again)
    report["kill"]["restarted_exit"] = again.process.returncode


def run_all(params: Params) -> dict[str, Any]:
    """The whole run; every process it starts is stopped by its pid before it returns."""
    started = restart()
    report: dict[str, Any] = {
        "machine": machine(),
        "params": params.describe(),
        "pool": {
            "search": SEARCH_ARMS,
            "llm_complete": LLM_ARMS,
            "faulty_prefix": FAULTY,
            "router": ROUTER,
            "guards": "off",
        },
    }
    with load_setup() as setup:
        run_load(setup, params, report)
        if report["kill"]["killed"]:
            restarted(setup, report)
        progress("checking the database and the logs")
        acks = checks.read_acks([setup.workdir / "warmup.acks", setup.workdir / "load.acks"])
        transport = report["warmup"]["transport_errors"] + report["load"]["transport_errors"]
        report["integrity_check"] = checks.integrity(setup.db)
        report["rows"] = checks.rows(setup.db, acks, transport)
        report["fallback"] = checks.fallback(setup.db)
        report["counters"] = checks.counters(setup.db)
        report["attempt_latency"] = checks.attempt_latency(setup.db)
        report["budgets"] = checks.budgets(setup.db)
        resource = report["stats_resource"]
        if resource.get("served"):
            resource["check"] = checks.stats_match(resource.pop("stats"), setup.db, STATS_TOOL)
        logs = scan(setup.log("server"))
        if report["kill"]["killed"]:
            logs = logs.add(scan(setup.log("server-restarted")))
        report["server_log"] = logs.to_json()
    report["machine"]["load_average_at_end"] = load_average()
    report["bars"] = [b.to_json() for b in all_bars(report)]
    report["wall_s"] = round(time.monotonic() - started, 1)
    return report
