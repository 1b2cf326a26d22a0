"""`mcp-router bench collections`: the command line, the servers' config, and (slow) a `--quick` run
through the CLI on 150 SciFact abstracts, whose JSON must show the behaviour the benchmark is about:
every call of the first start answered, the warm dense and hybrid servers served by their own arm,
and an edit re-embedding exactly one file, through `mcp-router index` and under a running server.

Timings are the benchmark's to report, not the test's to bound (a loaded machine would fail them).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mcp_router.bench import paths
from mcp_router.bench.collections.params import FULL, QUICK, params_of
from mcp_router.bench.collections.setting import ARMS, COLLECTION, config_text
from mcp_router.cli import build_parser
from mcp_router.config import parse_config

RUN_TIMEOUT_S = 900


def test_cli_accepts_the_collections_benchmark() -> None:
    args = build_parser().parse_args(
        ["bench", "collections", "--quick", "--documents", "40", "--workdir", "w", "--json", "c.json"]
    )
    params = params_of(args)
    assert (args.name, params.quick, params.documents, params.workdir) == ("collections", True, 40, "w")
    assert params_of(build_parser().parse_args(["bench", "collections"])) == FULL
    assert FULL.documents is None and QUICK.documents == 150
    with pytest.raises(argparse.ArgumentTypeError):
        params_of(build_parser().parse_args(["bench", "collections", "--documents", "0"]))


def test_the_servers_config_is_valid(tmp_path: Path) -> None:
    loaded = parse_config(config_text(tmp_path, ARMS, 2.0, 30.0), "bench", tmp_path)
    retrieve = loaded.config.tool("retrieve")
    assert [(p.name, p.type) for p in retrieve.enabled_providers()] == [(a, a) for a in ARMS]
    assert loaded.collection_folders() == [(COLLECTION, tmp_path)]
    assert loaded.config.indexing.rescan_every_s == 2.0


def scifact_or_skip() -> Path:
    try:
        data = paths.data_dir()
    except FileNotFoundError as exc:
        pytest.skip(f"benchmark data not available: {exc}")
    if not (data / "scifact" / "corpus.jsonl").is_file():
        pytest.skip(f"SciFact not available under {data}")
    return data


@pytest.mark.slow
def test_quick_run_answers_every_call_and_reembeds_one_file(tmp_path: Path) -> None:
    data = scifact_or_skip()
    out = tmp_path / "collections.json"
    done = subprocess.run(
        [sys.executable, "-m", "mcp_router", "bench", "collections", "--quick", "--json", str(out)],
        capture_output=True,
        text=True,
        env={**os.environ, "MCP_ROUTER_DATA": str(data)},
        timeout=RUN_TIMEOUT_S,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "first start calls" in done.stdout and "second start (warm index)" in done.stdout
    report = json.loads(out.read_text())
    assert report["machine"]["cores"] >= 1 and "bench collections --quick" in report["command"]
    assert report["started_at"] <= report["finished_at"]
    assert report["params"]["quick"] is True and report["corpus"]["files"] == QUICK.documents

    first = report["first_start"]
    assert first["all_answered"] and first["lost"] == 0 and first["answered"] == first["calls_made"]
    assert first["calls_made"] == len(first["calls"]) > QUICK.calls_after_dense
    assert all(c.get("arm") in ARMS or c.get("error") for c in first["calls"])
    assert None not in (first["initialized_s"], first["first_ok_s"], first["lexical_ready_s"])
    assert first["dense_ready_s"] is not None and first["lexical_ready_s"] <= first["dense_ready_s"]
    assert first["files"] == QUICK.documents and first["documents"] >= QUICK.documents
    assert sum(g["calls"] for g in first["groups"].values()) == first["calls_made"]
    assert first["groups"]["after_dense"]["calls"] >= QUICK.calls_after_dense

    second = {row["server"]: row for row in report["second_start"]}
    assert set(second) == {"dense", "hybrid", "all"}
    assert second["dense"]["served_by"] == ["dense"] and second["hybrid"]["served_by"] == ["hybrid"]
    for row in second.values():
        assert len(row["starts"]) == QUICK.warm_starts
        assert all(s["first_served_s"] > s["initialized_s"] > 0 for s in row["starts"])
    assert second["all"]["max_dense_ready_s"] is not None

    index, live = report["edit"]["index"], report["edit"]["live"]
    assert index["returncode"] == 0 and index["files_embedded"] == 1 and index["passages_embedded"] >= 1
    assert "embedded" in index["line"] and live["one_file_embedded"] is True
    assert live["last_refresh"]["changed"] == 1 and live["last_refresh"]["files_embedded"] == 1
    assert live["dense_rebuilt_after_edit"] is True and live["edited_file"] != index["edited_file"]

    assert len(report["bars"]) == 4 and all(b["value"] is not None for b in report["bars"])
    assert all(report["checks"].values()) and report["logs"]["unhandled"] == 0
