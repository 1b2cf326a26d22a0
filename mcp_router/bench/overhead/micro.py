"""Micro-benchmarks without MCP: what one decision costs the router on the calling thread.

An LQM-ContextRoute decision over warmed arms, the server's query features, and MTRouter's model
decision (`mtrouter.py`). These are the parts of the router's overhead that no floor shares, timed
alone so the full-path figures can be read against them.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import numpy as np

from mcp_router.bench.overhead.mtrouter import bench_mtrouter
from mcp_router.bench.overhead.params import Params
from mcp_router.bench.overhead.progress import progress
from mcp_router.bench.overhead.setting import Setup, queries
from mcp_router.bench.overhead.stats import Dist
from mcp_router.routing import Outcome, RouteContext, build_router
from mcp_router.routing.features import Featurizer, text_features
from mcp_router.routing.lqm import FEATURE_DIM

LQM_ARMS = 8


def bench_micro(params: Params, setup: Setup) -> tuple[dict[str, Any], dict[str, Any]]:
    """The three decisions without MCP; also returns the checkpoint row the full path reuses."""
    progress("micro: LQM decision")
    lqm = bench_lqm(params)
    progress("micro: query features")
    features = bench_features(params)
    progress("micro: MTRouter decision (priors, checkpoint)")
    mtrouter, checkpoint_row = bench_mtrouter(params, setup)
    return {"lqm": lqm, "features": features, "mtrouter": mtrouter}, checkpoint_row


def bench_lqm(params: Params) -> dict[str, Any]:
    """One LQM decision over 8 arms, each past warm-up (n_min quality observations with features and
    latency outcomes), so the timed path is the scored one, not the round-robin warm-up."""
    arms = [f"arm-{i}" for i in range(LQM_ARMS)]
    router = build_router("lqm", "search", arms, l_ref_s=1.0)
    dim = int(getattr(router, "dim", FEATURE_DIM))
    rng = np.random.default_rng(0)
    xs = rng.normal(size=(256, dim))
    xs /= np.linalg.norm(xs, axis=1, keepdims=True)
    now = time.time()
    for i, arm in enumerate(arms):
        for j in range(3 * router.params.n_min):
            router.observe_quality(arm, xs[(i + j) % len(xs)], float(rng.uniform(0.2, 0.9)), now)
            router.observe(Outcome(arm, "ok", float(rng.uniform(0.05, 0.6)), now))
    samples, policies = [], Counter()
    for i in range(params.lqm_decisions):
        t = now + 1e-3 * i
        started = time.perf_counter()
        decision = router.rank(RouteContext(tool="search", text="q", now=t, x=xs[i % len(xs)]))
        samples.append(time.perf_counter() - started)
        policies[decision.policy] += 1
    return {"arms": LQM_ARMS, "dim": dim, "policies": dict(policies), **Dist.of(samples).us()}


def bench_features(params: Params) -> dict[str, Any]:
    """The server's featurizer (`open_runtime` builds `Featurizer.default()`) on varied queries, after
    a warm-up call has loaded what it needs."""
    featurize = Featurizer.default()
    texts = queries(params.feature_queries, seed=1)
    for text in texts[:20]:
        featurize(text)
    total, cheap = [], []
    for text in texts:
        started = time.perf_counter()
        featurize(text)
        total.append(time.perf_counter() - started)
        started = time.perf_counter()
        text_features(text)
        cheap.append(time.perf_counter() - started)
    return {
        "featurizer": type(featurize).__name__,
        **Dist.of(total).us(),
        "text_features_only": Dist.of(cheap).us(),
    }
