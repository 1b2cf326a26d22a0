"""`mcp-router bench load`: the command line, the log scan and the row checks on a small real database,
and (slow) two runs through the CLI: `--quick` (2,000 calls at concurrency 64, a tenth of them
meeting a fault) must lose, double and crash on nothing and rescue nearly every failed first attempt;
a small `--kill` run must find the database intact and every acknowledged call in it after the
`kill -9` and a restart.

The RSS bar belongs to the benchmark, not to this test (the exit code says whether every bar passed;
the test reads the figures it is about).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest

from mcp_router.bench.load.checks import Ack, counters, fallback, rows
from mcp_router.bench.load.drive import AckCounter
from mcp_router.bench.load.logs import scan
from mcp_router.bench.load.params import FULL, QUICK, params_of
from mcp_router.cli import build_parser
from mcp_router.store import AttemptRecord, CallRecord, Store

RUN_TIMEOUT_S = 300
KILL_CALLS = 600


def test_cli_accepts_the_load_benchmark() -> None:
    args = build_parser().parse_args(["bench", "load", "--calls", "500", "--concurrency", "8", "--kill"])
    params = params_of(args)
    assert (args.name, params.calls, params.concurrency, params.kill, params.kill_at) == (
        "load",
        500,
        8,
        True,
        250,
    )
    assert params_of(build_parser().parse_args(["bench", "load"])) == FULL
    assert (FULL.calls, FULL.concurrency, FULL.kill_at) == (20_000, 64, None)
    assert params_of(build_parser().parse_args(["bench", "load", "--quick"])).calls == QUICK.calls == 2_000
    with pytest.raises(argparse.ArgumentTypeError):
        params_of(build_parser().parse_args(["bench", "load", "--calls", "0"]))


def test_log_scan_counts_tracebacks_and_unexpected_errors_only(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    log.write_text(
        "2026-01-01 INFO mcp_router.dispatch: search call_1: searx-ok in 3.0 ms after 2 attempt(s)\n"
        "2026-01-01 WARNING mcp_router.dispatch: llm-faulty replied without usage\n"
        "2026-01-01 ERROR mcp_router.dispatch: adapter searx-a raised an unexpected error\n"
        "Traceback (most recent call last):\n"
        '  File "x.py", line 1, in <module>\n'
        "ValueError: boom\n"
        "2026-01-01 ERROR uvicorn.error: Exception in ASGI application\n"
        "  + Exception Group Traceback (most recent call last):\n"
    )
    found = scan(log)
    assert (found.unexpected, found.tracebacks, found.unhandled) == (1, 2, 3)
    assert found.levels == {"WARNING": 1, "ERROR": 2} and found.lines == 8
    assert scan(tmp_path / "missing.log").unhandled == 0


def test_ack_counter_counts_only_whole_lines(tmp_path: Path) -> None:
    acks = tmp_path / "a.acks"
    counter = AckCounter(acks)
    assert counter.poll() == 0
    acks.write_text("call_1\tsearch\tok\ncall_2\tsea")
    assert counter.poll() == 1
    with acks.open("a") as f:
        f.write("rch\tok\ncall_3\tllm_complete\terror\n")
    assert counter.poll() == 3


def record(call_id: str, tool: str, statuses: list[str]) -> CallRecord:
    attempts = [
        AttemptRecord(f"arm-{n}", s, 0.01, None if s == "ok" else s, 1.0) for n, s in enumerate(statuses)
    ]
    return CallRecord(call_id=call_id, tool=tool, router="round-robin", ts=1.0, request={}, attempts=attempts)


def test_row_checks_on_a_real_database(tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    store = Store(db)
    with store.backend.transaction() as conn:
        Store.write_call(conn, record("call_a", "search", ["ok"]))
        Store.write_call(conn, record("call_b", "search", ["unavailable", "ok"]))  # rescued
        Store.write_call(conn, record("call_c", "search", ["rate_limited", "unavailable"]))  # not rescued
        Store.write_call(conn, record("call_d", "llm_complete", ["ok"]))  # never acknowledged
    store.close()
    acks = [Ack("call_a", "search", "ok"), Ack("call_b", "search", "ok"), Ack("call_c", "search", "error")]
    acks += [Ack("call_x", "search", "ok"), Ack("call_a", "search", "ok")]  # lost, and acknowledged twice
    found = rows(db, acks, transport_errors=1)
    assert (found["lost"], found["duplicated"], found["unacknowledged_rows"]) == (1, 1, 1)
    assert found["unacknowledged_explained"] and found["status_mismatches"] == 0
    search = fallback(db)["search"]
    assert (search["first_attempt_failed"], search["rescued"], search["fallback_success_rate"]) == (2, 1, 0.5)
    kept = counters(db)
    assert kept["arm_state_matches_attempts"] and kept["tool_totals_match_calls"]


def bench(tmp_path: Path, *extra: str) -> dict:
    """`mcp-router bench load ... --json F` as a subprocess; its report."""
    out = tmp_path / "load.json"
    done = subprocess.run(
        [sys.executable, "-m", "mcp_router", "bench", "load", *extra, "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        check=False,
    )
    assert done.returncode in (0, 1) and out.exists(), done.stderr[-3000:]
    assert "bar" in done.stdout and "fallback success" in done.stdout  # the table went to stdout
    return json.loads(out.read_text())


def assert_nothing_lost_or_doubled(report: dict) -> None:
    assert report["rows"]["lost"] == 0, report["rows"]
    assert report["rows"]["duplicated"] == 0, report["rows"]
    assert report["rows"]["unacknowledged_explained"], report["rows"]
    assert report["rows"]["status_mismatches"] == 0
    assert report["server_log"]["unhandled"] == 0, report["server_log"]
    assert report["server_log"]["lines_scanned"] > 0  # the scan read the server's log
    assert report["counters"]["arm_state_matches_attempts"], report["counters"]
    assert report["counters"]["tool_totals_match_calls"], report["counters"]
    assert report["stats_resource"]["served"] and report["stats_resource"]["check"]["matches"]
    assert report["budgets"]["sessions"] > 0 and report["budgets"]["sessions_match_steps"], report["budgets"]


@pytest.mark.slow
def test_quick_run_loses_nothing_and_falls_back(tmp_path: Path) -> None:
    report = bench(tmp_path, "--quick")
    load = report["load"]
    assert load["sent"] == QUICK.calls and load["transport_errors"] == 0
    assert load["ok"] + load["tool_errors"] == load["sent"]
    assert report["rows"]["unacknowledged_rows"] == 0 and report["integrity_check"] == "ok"
    assert report["budgets"]["reservations_left"] == 0
    assert_nothing_lost_or_doubled(report)
    every = report["fallback"]["all"]
    assert 0.07 <= every["first_attempt_failed_share"] <= 0.13, every  # the setting's 10 %
    assert every["fallback_success_rate"] > 0.9, every
    assert report["rss"]["start_mb"] > 0 and report["rss"]["growth_mb"] is not None
    assert {b["name"] for b in report["bars"]} >= {
        "server RSS growth",
        "unhandled exceptions in the server logs",
    }


@pytest.mark.slow
def test_kill_run_keeps_every_acknowledged_call(tmp_path: Path) -> None:
    report = bench(tmp_path, "--quick", "--calls", str(KILL_CALLS), "--kill")
    kill = report["kill"]
    assert kill["killed"] and kill["at_acknowledged"] >= KILL_CALLS // 2
    assert report["load"]["stopped_because_down"]
    assert kill["before_restart"]["integrity_check"] == "ok" and report["integrity_check"] == "ok"
    assert kill["before_restart"]["arm_state_matches_attempts"]
    assert report["rows"]["acknowledged"] >= kill["at_acknowledged"]
    assert_nothing_lost_or_doubled(report)
