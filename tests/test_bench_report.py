"""The benchmark driver end to end on a tiny synthetic deployment: the report's keys, table, JSON, plot;
the retrieval scenario's fixed parameters; the CLI and data-folder plumbing."""

from __future__ import annotations

import argparse
import functools
import json
import math
import os
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
from bench_support import alternate, always_first

from mcp_router.bench import paths
from mcp_router.bench.report import ProgressBar, format_table, plot, write_json
from mcp_router.bench.runner import BenchSpec, estimate_unloaded_latency, parse_policies, run_benchmark
from mcp_router.cli import build_parser


class TinyService:
    """Two arms: `good` is slow with 2 slots, `fast` is quick with 8; 4 calls/s; `good` fails 5 %."""

    arms: ClassVar[list[str]] = ["good", "fast"]

    def capacity(self, arm, progress):
        return {"good": 2, "fast": 8}[arm]

    def service_time(self, arm, query, rng, progress):
        median = {"good": 0.6, "fast": 0.1}[arm]
        return median * math.exp(0.3 * rng.standard_normal()), arm == "good" and rng.random() < 0.05

    def arrival_rate(self, progress):
        return 4.0


def _tiny_service(seed: int) -> TinyService:
    return TinyService()


def tiny_spec(noise: float = 0.1) -> BenchSpec:
    rng = np.random.default_rng(0)
    n = 30
    gold = np.column_stack([rng.uniform(0.5, 1.0, n), rng.uniform(0.0, 0.6, n)])
    X = rng.normal(size=(n, 8))
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    return BenchSpec(
        benchmark="tiny",
        dataset={"name": "synthetic"},
        tool="retrieve",
        arms=["good", "fast"],
        texts=[f"query {i}" for i in range(n)],
        X=X,
        gold=gold,
        make_service=functools.partial(_tiny_service),
        l_ref_s=0.5,
        timeout_s=1.5,
        judge_noise=noise,
        capacity={"good": 2, "fast": 8},
        arm_latency={"good": 0.6, "fast": 0.1},
        params={"l_ref_s": 0.5, "timeout_s": 1.5, "judge_noise_sigma": noise},
        timeline_marks=[{"from": 0.4, "to": 0.6, "label": "surge"}, {"at": 0.5, "label": "drop"}],
        extra_policies={"always-good": always_first, "alternate": alternate},
    )


REQUIRED_POLICY_KEYS = {
    "quality",
    "quality_ci95",
    "latency_mean_s",
    "latency_p95_s",
    "sla_rate",
    "quality_per_cycle",
    "share",
}


def test_report_has_the_required_keys_and_sane_values(tmp_path: Path):
    spec = tiny_spec()
    policies = ["always-good", "alternate", "best-fixed", "oracle"]
    report = run_benchmark(spec, policies, seeds=2, steps=200, workers=1, progress=False)
    out = tmp_path / "r.json"
    write_json(report, out)
    data = json.loads(out.read_text())
    assert {"benchmark", "dataset", "seeds", "steps", "params", "arms", "policies"} <= set(data)
    assert data["seeds"] == 2 and data["steps"] == 200
    assert set(data["arms"]) == {"good", "fast"}
    for arm in data["arms"].values():
        assert set(arm) >= {"quality", "latency_mean_s"}
    assert list(data["policies"]) == policies
    for p in data["policies"].values():
        assert set(p) >= REQUIRED_POLICY_KEYS
        assert 0 <= p["quality"] <= 1 and 0 <= p["sla_rate"] <= 1
        assert sum(p["share"].values()) == pytest.approx(1.0)
        assert p["latency_mean_s"] <= spec.timeout_s
    assert data["policies"]["always-good"]["share"] == {"good": 1.0, "fast": 0.0}
    assert data["policies"]["alternate"]["share"] == {"good": 0.5, "fast": 0.5}
    # best-fixed: the arm whose fixed routing realized the best quality on these streams
    best = data["policies"]["best-fixed"]
    assert best["share"][best["arm"]] == 1.0
    assert best["quality"] >= data["policies"]["always-good"]["quality"]
    assert data["policies"]["oracle"]["share"]["good"] == 1.0  # ... on every query, by construction
    # 4 calls/s on 2 slots of ~0.6 s: the all-good policies queue up and time out
    assert data["policies"]["always-good"]["latency_mean_s"] > data["policies"]["alternate"]["latency_mean_s"]

    assert data["machine"]["cores"] == os.cpu_count() and len(data["machine"]["load_average_at_end"]) == 3
    table = format_table(report)
    for name in policies:
        assert name in table
    assert f", {os.cpu_count()} cores" in table.splitlines()[0]
    png = tmp_path / "r.png"
    plot(report, png, focus="alternate")
    assert png.stat().st_size > 10_000


def test_runs_are_deterministic_per_seed():
    spec = tiny_spec()
    a = run_benchmark(spec, ["alternate"], seeds=1, steps=150, workers=1, progress=False)
    b = run_benchmark(spec, ["alternate"], seeds=1, steps=150, workers=1, progress=False)
    assert a["policies"] == b["policies"]


def test_unknown_policy_fails_before_running():
    with pytest.raises(Exception, match="no-such-policy"):
        run_benchmark(tiny_spec(), ["no-such-policy"], seeds=1, steps=10, workers=1, progress=False)


def test_progress_bar_writes_to_its_stream(tmp_path: Path):
    log = tmp_path / "bar.txt"
    with open(log, "w") as stream:
        bar = ProgressBar(20, label="x", stream=stream)
        for _ in range(20):
            bar.update()
        bar.close()
    lines = log.read_text().splitlines()
    assert lines[-1].startswith("x [" + "#" * 30 + "] 20/20")
    assert len(lines) <= 12  # not a tty: about every 10 %


def test_estimate_unloaded_latency_is_the_median_service_time():
    est = estimate_unloaded_latency(TinyService(), n_queries=5, samples=2000)
    assert est["good"] == pytest.approx(0.6, rel=0.05) and est["fast"] == pytest.approx(0.1, rel=0.05)


def test_parse_policies():
    assert parse_policies("all", ["a", "b"]) == ["a", "b"]
    assert parse_policies(None, ["a"]) == ["a"]
    assert parse_policies("round-robin, oracle", ["a"]) == ["round-robin", "oracle"]


def test_retrieval_scenario_parameters():
    from mcp_router.bench.retrieval import ARMS, L_REF_S, TIMEOUT_S, RetrievalService

    service = RetrievalService(compute_s=dict.fromkeys(ARMS, 0.01))
    assert service.arms == ["bm25", "bm25-title", "dense", "hybrid"]
    assert [service.capacity(a, 0.0) for a in ARMS] == [8, 16, 6, 4]
    assert service.capacity("hybrid", 0.4999) == 4 and service.capacity("hybrid", 0.5) == 2
    assert service.capacity("bm25", 0.9) == 8
    assert [service.arrival_rate(p) for p in (0.0, 0.3999, 0.4, 0.5999, 0.6, 0.99)] == [6, 6, 12, 12, 6, 6]
    assert (L_REF_S, TIMEOUT_S) == (0.5, 1.5)
    rng = np.random.default_rng(0)
    draws = np.array([service.service_time("dense", 0, rng, 0.0)[0] for _ in range(4000)])
    assert np.median(draws) == pytest.approx(0.45 + 0.01, rel=0.03)
    assert np.std(np.log(draws - 0.01)) == pytest.approx(0.3, rel=0.05)


def test_cli_bench_arguments():
    args = build_parser().parse_args(
        ["bench", "retrieval", "--json", "r.json", "--seeds", "2", "--policies", "a,b"]
    )
    assert (args.command, args.name, args.json, args.seeds, args.steps, args.noise) == (
        "bench",
        "retrieval",
        "r.json",
        2,
        4000,
        0.1,
    )
    assert args.policies == "a,b" and args.plot is None
    defaults = build_parser().parse_args(["bench", "qa-pool"])
    assert (defaults.seeds, defaults.steps, defaults.noise, defaults.policies) == (5, 4000, 0.1, "all")
    with pytest.raises(SystemExit):
        build_parser().parse_args(["bench", "nope"])


def test_run_dispatches_and_rejects_unknown():
    from mcp_router.bench import run

    with pytest.raises(ValueError):
        run("nope", argparse.Namespace())


def test_data_dir_resolution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("MCP_ROUTER_DATA", str(tmp_path))
    assert paths.data_dir() == tmp_path.resolve()
    monkeypatch.setenv("MCP_ROUTER_DATA", str(tmp_path / "missing"))
    with pytest.raises(FileNotFoundError):
        paths.data_dir()
    monkeypatch.delenv("MCP_ROUTER_DATA")
    (tmp_path / "work" / "repo").mkdir(parents=True)
    (tmp_path / "work" / "shared" / "data").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "work" / "repo")
    assert paths.data_dir() == (tmp_path / "work" / "shared" / "data").resolve()
    monkeypatch.chdir(tmp_path)  # no ../shared/data here: falls back to the repo's sibling, if it exists
    if (paths.REPO_ROOT.parent / "shared" / "data").is_dir():
        assert paths.data_dir() == (paths.REPO_ROOT.parent / "shared" / "data").resolve()


def test_content_hash_tracks_bytes_and_definitions(tmp_path: Path):
    f = tmp_path / "a.txt"
    f.write_text("one")
    h1 = paths.content_hash([f], "v1")
    assert h1 == paths.content_hash([f], "v1") and h1 != paths.content_hash([f], "v2")
    f.write_text("two")
    assert paths.content_hash([f], "v1") != h1
