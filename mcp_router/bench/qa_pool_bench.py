"""`mcp-router bench qa-pool`: nine LLM backends with real per-question quality (LLMRouter scores) and
latency/failures replayed from llmperf traces (`qa_pool.ReplayService`), through the same simulator,
metrics and report as the retrieval benchmark. Feedback to the routers is a simulated judge,
gold + N(0, σ) clipped to [0, 1]."""

from __future__ import annotations

import argparse
import functools
import inspect
import time
from pathlib import Path
from typing import Any

import numpy as np

from mcp_router.bench import runner
from mcp_router.bench.paths import data_dir
from mcp_router.bench.policies import ALL_POLICIES
from mcp_router.bench.runner import BenchSpec, estimate_unloaded_latency


def _make_service(pool: Any, root: Path, seed: int) -> Any:
    from mcp_router.bench.qa_pool import ReplayService

    if "data_dir" in inspect.signature(ReplayService).parameters:
        return ReplayService(pool, root, seed=seed)
    return ReplayService(pool, seed)


def build_spec(args: argparse.Namespace, progress: bool = True) -> BenchSpec:
    from mcp_router.bench import qa_pool
    from mcp_router.bench.retrieval import router_features

    root = data_dir()
    pool = qa_pool.load_qa_pool(root)
    X, features = router_features(list(pool.texts))
    make_service = functools.partial(_make_service, pool, root)
    service = make_service(0)
    arms = list(pool.arms)
    l_ref = float(qa_pool.L_REF_S)
    traces = getattr(service, "traces", None)
    if traces:
        latency = {arm: float(traces[arm].median_s) for arm in arms}
    else:
        latency = dict(estimate_unloaded_latency(service, len(pool.texts)))
    capacity = {arm: int(service.capacity(arm, 0.0)) for arm in arms}
    params: dict[str, Any] = {
        "scenario": "qa-pool-main",
        "arrival_rate": service.arrival_rate(0.0),
        "arrivals": "Poisson, rate from qa_pool.ReplayService",
        "capacity": capacity,
        "service_time": "replayed per call from the arm's llmperf trace (qa_pool.ReplayService)",
        "trace_for_model": dict(getattr(qa_pool, "TRACE_FOR_MODEL", {})),
        "queue": "FIFO per arm; a call holds one slot for its service time; in-flight = queued + in service",
        "l_ref_s": l_ref,
        "timeout_s": 3 * l_ref,
        "timeout": (
            "latency (wait + service) > 3·L_ref: counted as latency 3·L_ref, quality 0, status timeout; "
            "the call still holds its queue place and slot until its service ends"
        ),
        "failures": "trace records with an error code: status unavailable, quality 0, latency as replayed",
        "judge": (
            "simulated judge: gold + N(0, σ), clipped to [0, 1]; every call judged; "
            "failures and timeouts get reward 0"
        ),
        "judge_noise_sigma": args.noise,
        "judge_rate": 1.0,
        "stream": "questions uniform with replacement from the pool, seeded; same per policy in a seed",
        "router_features": features,
    }
    if traces:
        params["trace_error_rate"] = {arm: round(traces[arm].error_rate, 4) for arm in arms}
    return BenchSpec(
        benchmark="qa-pool",
        dataset={
            "name": "llmrouter (train + deduplicated test) with llmperf latency traces",
            "path": str(root),
            "queries": len(pool.texts),
            "dropped_duplicates": getattr(pool, "dropped_duplicates", None),
            "metric": "per-question model score in [0, 1] (LLMRouter)",
        },
        tool="llm_complete",
        arms=arms,
        texts=list(pool.texts),
        X=X,
        gold=np.asarray(pool.quality, dtype=float),
        make_service=make_service,
        l_ref_s=l_ref,
        timeout_s=3 * l_ref,
        judge_noise=args.noise,
        capacity=capacity,
        arm_latency=latency,
        params=params,
    )


def main(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    return runner.main(build_spec(args), args, started, ALL_POLICIES)
