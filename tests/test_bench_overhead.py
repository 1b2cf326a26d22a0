"""`mcp-router bench overhead`: the command line, and (slow) a `--quick` run through the CLI entry that
must report every row kind with numbers and lose no call.

Timing bars belong to the benchmark, not to tests (a loaded machine would fail them): the test checks
that the bars are reported, never that they pass.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest

from mcp_router.cli import build_parser

TOOLS = {"search", "retrieve", "llm_complete"}
TRANSPORTS = {"in-process", "stdio", "http"}


def number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def test_cli_accepts_the_overhead_benchmark() -> None:
    args = build_parser().parse_args(["bench", "overhead", "--quick", "--json", "o.json"])
    assert (args.name, args.quick, args.json) == ("overhead", True, "o.json")
    assert build_parser().parse_args(["bench", "overhead"]).quick is False


def test_litellm_row_is_skipped_when_litellm_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    import anyio

    from mcp_router.bench.overhead.litellm_row import bench_litellm
    from mcp_router.bench.overhead.params import QUICK

    monkeypatch.setitem(sys.modules, "litellm", None)  # `import litellm` raises ImportError
    row = anyio.run(bench_litellm, None, QUICK)
    assert row["installed"] is False and "mcp-router[bench]" in row["skipped"]


def check_micro(micro: dict) -> None:
    for entry in (micro["lqm"], micro["features"], micro["features"]["text_features_only"]):
        assert entry["n"] > 0 and number(entry["p50_us"]) and number(entry["p99_us"])
    assert micro["lqm"]["policies"] == {"lqm": micro["lqm"]["n"]}, "decisions were timed past warm-up"
    mt = micro["mtrouter"]
    assert mt["prior"]["stages"] == {"prior": mt["prior"]["n"]}
    for key in ("checkpoint_cached", "checkpoint_uncached"):
        assert mt[key]["stages"] == {"checkpoint": mt[key]["n"]} and number(mt[key]["p50_us"])
    assert number(mt["history_embedding_p50_us"])


def check_paths(paths: list[dict]) -> None:
    kinds = {(p["tool"], p["transport"], p["variant"]) for p in paths}
    expected = {(t, tr, "priors" if t == "llm_complete" else "") for t in TOOLS for tr in TRANSPORTS}
    expected |= {("llm_complete", "in-process", f"checkpoint, {h} history") for h in ("uncached", "cached")}
    assert kinds == expected
    for p in paths:
        for side in ("router", "floor_same_call", "floor_echo"):
            assert p[side]["n"] > 0 and number(p[side]["p50_ms"]) and number(p[side]["p99_ms"])
        assert number(p["added_p50_ms"]) and number(p["added_p99_ms"])
        if p["tool"] == "llm_complete":
            stage = "prior" if p["variant"] == "priors" else "checkpoint"
            assert p["stages"] == {stage: p["router"]["n"]}


def check_throughput(rows: list[dict]) -> None:
    assert {(r["target"], r["concurrency"]) for r in rows} == {
        (t, c) for t in ("router", "floor") for c in (1, 16, 64)
    }
    for r in rows:
        assert r["lost"] == 0 and r["errors"] == 0 and r["ok"] == r["sent"] > 0
        assert number(r["calls_per_s"]) and r["calls_per_s"] > 0 and number(r["p99_ms"])
        assert r["target"] == "floor" or number(r["router_over_floor"])


@pytest.mark.slow
def test_quick_run_reports_every_row_kind(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from mcp_router.bench import run

    out = tmp_path / "overhead.json"
    args = build_parser().parse_args(["bench", "overhead", "--quick", "--json", str(out)])
    assert run("overhead", args) == 0
    report = json.loads(out.read_text())

    assert report["machine"]["cores"] >= 1 and report["params"]["quick"] is True
    check_micro(report["micro"])
    check_paths(report["paths"])
    check_throughput(report["throughput"])
    lite = report["litellm"]
    assert number(lite["added_p50_ms"]) if lite["installed"] else lite["skipped"]
    readings = report["rss"]["readings"]
    assert [r["calls"] for r in readings] == [0, *report["params"]["rss_points"]]
    assert all(number(r["rss_mb"]) and r["rss_mb"] > 0 for r in readings)
    assert number(report["rss"]["growth_mb"])
    assert {(r["target"], r["tool"]) for r in report["startup"]} == {
        (t, tool) for t in ("router", "floor") for tool in ("search", "retrieve")
    }
    assert all(number(r["median_s"]) and r["median_s"] > 0 for r in report["startup"])
    assert number(report["stub"]["p50_us"])

    bars = {b["name"]: b for b in report["bars"]}
    assert len(bars) == len(report["bars"]) >= 15
    for bar in bars.values():
        assert bar["op"] in ("<=", ">=") and number(bar["limit"]) and bar["pass"] in (True, False, None)
        assert bar["value"] is None or number(bar["value"])
    assert "in-process added p50, llm_complete(checkpoint)" in bars and "RSS growth" in bars
    assert capsys.readouterr().out.startswith(f"cores: {report['machine']['cores']}")
