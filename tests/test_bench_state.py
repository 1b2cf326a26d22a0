"""`mcp-router bench state`: the command line, the size parser, the bar and the table on a made-up
report, and (slow) a `--quick` SQLite run on tiny databases through the CLI, whose JSON must have
every case with sane figures.

Start-up timings are the benchmark's to report, not the test's to bound (a loaded machine would fail
them): only the propagation delay gets a generous bound, and the snapshot restarts are checked to
fold nothing, which a clean shutdown guarantees by construction.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest

from mcp_router.bench.state.params import FULL, QUICK, params_of, parse_sizes
from mcp_router.cli import build_parser

SIZES = (300, 1_000)
RUN_TIMEOUT_S = 180


def test_cli_accepts_the_state_benchmark() -> None:
    args = build_parser().parse_args(
        ["bench", "state", "--quick", "--sizes", "1k,2000", "--backend", "sqlite", "--json", "s.json"]
    )
    params = params_of(args)
    assert (args.name, params.quick, params.sizes, params.backends) == (
        "state",
        True,
        (1_000, 2_000),
        ("sqlite",),
    )
    defaults = params_of(build_parser().parse_args(["bench", "state"]))
    assert defaults == FULL and defaults.backends == ("sqlite", "postgresql")
    assert params_of(build_parser().parse_args(["bench", "state", "--quick"])).sizes == QUICK.sizes


@pytest.mark.parametrize("text", ["", "10,-5", "1x", "0", "ten"])
def test_sizes_must_be_positive_counts(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        parse_sizes(text)


def test_sizes_take_k_and_m_suffixes() -> None:
    assert parse_sizes("10000, 100k,1M") == (10_000, 100_000, 1_000_000)


def paired(s: float, over: float, folded: int) -> dict:
    return {
        "s": s,
        "cpu_s": s / 2,
        "over_empty_s": over,
        "over_empty_cpu_s": over / 2,
        "events_to_fold": folded,
    }


def synthetic_row(calls: int) -> dict:
    """A size's row as `bench_size` makes it, with made-up figures."""
    first = paired(30.0, 28.5, 2_300_000)
    return {
        "calls": calls,
        "generated": {"calls": calls, "events": 2 * calls, "seconds": 300.0},
        "db_bytes": 1 << 30,
        "first_start": first,
        "restart_snapshot": {"median_s": 1.6, "median_over_empty_s": 0.1, "median_over_empty_cpu_s": 0.05}
        | {"starts": [paired(1.6, 0.1, 0)]},
        "restart_after_kill": {"median_s": 4.0, "median_over_empty_s": 2.5, "median_over_empty_cpu_s": 1.2}
        | {"starts": [paired(4.0, 2.5, 19_000)]},
    }


def test_the_bar_is_read_at_one_million_calls_and_rendered() -> None:
    from mcp_router.bench.state.bars import all_bars
    from mcp_router.bench.state.report import render

    empty = {"median_s": 1.5, "median_cpu_s": 0.8, "starts": [paired(1.5, 0.0, 0)]}
    propagation = {"trials": 20, "timeouts": 0, "p50_s": 0.23, "p95_s": 0.25, "max_s": 0.26}
    sqlite = {"server_version": "SQLite 3", "empty": empty, "propagation": propagation, "skipped_sizes": []}
    backends = {
        "sqlite": {**sqlite, "sizes": [synthetic_row(10_000), synthetic_row(1_000_000)]},
        "postgresql": {**sqlite, "sizes": [synthetic_row(100_000)]},
    }
    bars = {b.name: b for b in all_bars(backends)}
    clean = bars["sqlite: restart after clean shutdown, 1M calls, wall time over empty"]
    killed = bars["sqlite: restart after kill -9, 1M calls, wall time over empty"]
    assert (clean.value, clean.passed, killed.value, killed.passed) == (0.1, True, 2.5, False)
    assert "19,000 events folded" in killed.note
    assert all(b.passed is None for name, b in bars.items() if name.startswith("postgresql"))
    report = {
        "machine": {
            "cores": 2,
            "python": "3",
            "sqlite": "3",
            "load_average_at_start": [0],
            "load_average_at_end": [0],
        },
        "params": {},
        "backends": backends,
        "bars": [b.to_json() for b in bars.values()],
        "wall_s": 1.0,
    }
    text = render(report)
    assert "1,000,000" in text and "FAIL" in text and "p95 0.25 s" in text


def positive(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value > 0


@pytest.mark.slow
def test_quick_sqlite_run_reports_every_case(tmp_path: Path) -> None:
    out = tmp_path / "state.json"
    sizes = ",".join(map(str, SIZES))
    argv = ["bench", "state", "--quick", "--backend", "sqlite", "--sizes", sizes, "--json", str(out)]
    done = subprocess.run(
        [sys.executable, "-m", "mcp_router", *argv],
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "propagation" in done.stdout and "(b) first start" in done.stdout
    report = json.loads(out.read_text())
    assert report["machine"]["cores"] >= 1 and report["params"]["sizes"] == list(SIZES)
    assert set(report["backends"]) == {"sqlite"}
    sqlite = report["backends"]["sqlite"]
    pairs_per_size = 1 + QUICK.restart_reps + 2 * QUICK.kill_reps  # (b), (c), and a kill cycle's two
    assert len(sqlite["empty"]["starts"]) == len(SIZES) * pairs_per_size
    assert positive(sqlite["empty"]["median_s"]) and positive(sqlite["empty"]["median_cpu_s"])
    assert [row["calls"] for row in sqlite["sizes"]] == list(SIZES) and sqlite["skipped_sizes"] == []
    for row, calls in zip(sqlite["sizes"], SIZES, strict=True):
        generated = row["generated"]
        assert generated["calls"] == calls and generated["events"] > calls and generated["signals"] > 0
        assert generated["steps"] > 0 and positive(generated["seconds"]) and positive(row["db_bytes"])
        first = row["first_start"]
        assert positive(first["s"]) and positive(first["cpu_s"]) and first["snapshot_seq"] is None
        assert first["events_to_fold"] == first["last_seq"] >= generated["events"]
        restarts = row["restart_snapshot"]["starts"]
        assert len(restarts) == QUICK.restart_reps + QUICK.kill_reps
        assert all(positive(s["s"]) and s["events_to_fold"] == 0 for s in restarts)
        killed = row["restart_after_kill"]
        assert positive(killed["median_s"])
        assert all(s["events_to_fold"] >= QUICK.kill_backlog for s in killed["starts"])
        assert isinstance(first["over_empty_s"], float) and isinstance(first["over_empty_cpu_s"], float)
        for key in ("restart_snapshot", "restart_after_kill"):
            assert isinstance(row[key]["median_over_empty_s"], float)
            assert all(positive(s["empty_s"]) for s in row[key]["starts"])
    propagation = sqlite["propagation"]
    assert propagation["trials"] == QUICK.trials and propagation["timeouts"] == 0
    assert 0 < propagation["p50_s"] <= propagation["p95_s"] <= propagation["max_s"] < 5.0
    retention = sqlite["retention"]
    calls, keep, every = QUICK.retention
    assert [r["written"] for r in retention["rows"]] == list(range(every, calls + 1, every))
    assert all(r["calls_kept"] == min(r["written"], keep) for r in retention["rows"])
    assert retention["totals_unchanged"] is True and retention["bounded"] is True
    assert "retention, the newest" in done.stdout
    assert [bar["pass"] for bar in report["bars"]] == [None, None]  # not measured at 1M calls
