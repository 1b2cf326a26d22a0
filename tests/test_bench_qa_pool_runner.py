"""The qa-pool runner's plumbing: the real pool and replay service through the shared harness
(the router features are the server's static token features: no transformer is loaded)."""

from __future__ import annotations

import argparse

import numpy as np
import pytest

from mcp_router.bench import paths, qa_pool_bench
from mcp_router.bench.des import sample_queries
from mcp_router.bench.runner import run_benchmark


def test_qa_pool_spec_runs_through_the_harness():
    try:
        root = paths.data_dir()
    except FileNotFoundError:
        pytest.skip("benchmark data not available")
    if not (root / "routing" / "llmrouter" / "train.json").is_file():
        pytest.skip("LLMRouter data not available")

    spec = qa_pool_bench.build_spec(argparse.Namespace(noise=0.1), progress=False)
    assert spec.tool == "llm_complete" and len(spec.arms) == 9
    assert spec.gold.shape == (len(spec.texts), 9) and spec.X.shape[0] == len(spec.texts)
    assert np.allclose(np.linalg.norm(spec.X, axis=1), 1.0)
    assert spec.timeout_s == pytest.approx(3 * spec.l_ref_s)
    assert all(v > 0 for v in spec.arm_latency.values())
    report = run_benchmark(spec, ["best-fixed", "oracle"], seeds=1, steps=200, workers=1, progress=False)
    for p in report["policies"].values():
        assert 0 <= p["quality"] <= 1 and sum(p["share"].values()) == pytest.approx(1.0)
    means = spec.gold.mean(axis=0)
    assert [report["arms"][arm]["quality"] for arm in spec.arms] == pytest.approx(means.tolist())
    stream = spec.gold[sample_queries(len(spec.texts), 200, 0)].mean(axis=0)  # best-fixed's hindsight
    assert report["policies"]["best-fixed"]["share"][spec.arms[int(np.argmax(stream))]] == 1.0
