"""One `bench collections` run, in order, into the report dict the table and the JSON are made of:
the folder written, the first start, the warm starts, the two edits, the logs, then the bar and
the checks."""

from __future__ import annotations

import shlex
import sys
import time
from datetime import UTC, datetime
from typing import Any

from mcp_router.bench.collections.bars import all_bars, all_checks
from mcp_router.bench.collections.corpus import read_abstracts, read_queries, scifact_root, write_folder
from mcp_router.bench.collections.edit import index_after_edit, live_edit
from mcp_router.bench.collections.first_start import bench_first_start
from mcp_router.bench.collections.logs import scan_logs
from mcp_router.bench.collections.params import Params
from mcp_router.bench.collections.progress import progress, restart
from mcp_router.bench.collections.second_start import bench_second_start
from mcp_router.bench.collections.setting import workspace
from mcp_router.bench.overhead.machine import load_average, machine


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


async def run_all(params: Params) -> dict[str, Any]:
    started = restart()
    report: dict[str, Any] = {
        "benchmark": "collections",
        "command": shlex.join(["mcp-router", *sys.argv[1:]]),
        "started_at": now(),
        "machine": machine(),
        "params": params.describe(),
    }
    root = scifact_root()
    abstracts, queries = read_abstracts(root, params.documents), read_queries(root)
    with workspace(params.workdir, params.rescan_every_s, params.tool_timeout_s) as ws:
        folder = write_folder(abstracts, ws.docs)
        progress(f"wrote {len(folder.files):,} files ({folder.bytes / 1e6:.1f} MB) to {ws.docs}")
        report["corpus"] = {"source": str(root), **folder.describe()}
        report["first_start"] = await bench_first_start(ws, queries, params)
        report["second_start"] = await bench_second_start(ws, queries, params)
        report["edit"] = {
            "index": index_after_edit(ws, folder.files[0]),
            "live": await live_edit(ws, folder.files[1 % len(folder.files)], params),
        }
        report["logs"] = scan_logs(ws.root / "logs")
        report["workdir"] = str(ws.root) if params.workdir else None
    report["machine"]["load_average_at_end"] = load_average()
    report["bars"] = [b.to_json() for b in all_bars(report["second_start"])]
    report["checks"] = all_checks(report)
    report["finished_at"] = now()
    report["wall_s"] = round(time.monotonic() - started, 1)
    return report
