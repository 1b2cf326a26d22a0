"""The benchmark driver shared by every benchmark: (policy × seed) simulations, in worker processes,
aggregated into the report.

A benchmark describes itself as a `BenchSpec` (arms, query texts and features, gold quality per
query and arm, a service-model factory, L_ref, timeout, parameters) and calls `run_benchmark`.
Within a seed every policy sees the same queries, arrival times and judge noise.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import as_completed
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mcp_router.bench.des import sample_queries, simulate
from mcp_router.bench.metrics import aggregate, seed_metrics
from mcp_router.bench.overhead.machine import load_average, machine
from mcp_router.bench.policies import FIXED_PREFIX, make_policy
from mcp_router.bench.report import ProgressBar
from mcp_router.bench.service import ServiceModel
from mcp_router.cpu import worker_processes


@dataclass
class BenchSpec:
    benchmark: str
    dataset: dict[str, Any]
    tool: str
    arms: list[str]
    texts: list[str]
    X: np.ndarray | None  # (n_queries, d) router features
    gold: np.ndarray  # (n_queries, n_arms) true quality in [0, 1]
    make_service: Callable[[int], ServiceModel]  # seed -> service model (picklable)
    l_ref_s: float
    timeout_s: float
    judge_noise: float
    capacity: dict[str, int]  # nominal capacity, handed to the routers
    arm_latency: dict[str, float]  # unloaded latency per arm (the gold policies' tie-break)
    params: dict[str, Any]
    timeline_marks: list[dict[str, Any]] = field(default_factory=list)
    # further policies by name: (arms, seed) -> policy; module-level functions, so workers can unpickle them
    extra_policies: dict[str, Callable[[list[str], int], Any]] = field(default_factory=dict)
    # a real judge's reward per (query, arm), learned from instead of gold + N(0, judge_noise)
    judged: np.ndarray | None = None


def policy_for(spec: BenchSpec, name: str, seed: int, queries: Sequence[int]) -> Any:
    return make_policy(
        name,
        spec.arms,
        tool=spec.tool,
        l_ref_s=spec.l_ref_s,
        capacity=spec.capacity,
        seed=seed,
        gold=spec.gold,
        queries=queries,
        latency=spec.arm_latency,
        extra=spec.extra_policies,
    )


def run_one(spec: BenchSpec, policy_name: str, seed: int, steps: int) -> dict[str, Any]:
    """One policy on one seed's stream: its per-seed metrics (and the wall time it took)."""
    started = time.perf_counter()
    queries = sample_queries(len(spec.texts), steps, seed)
    service = spec.make_service(seed)
    policy = policy_for(spec, policy_name, seed, queries)
    records = simulate(
        service,
        policy,
        queries,
        spec.texts,
        spec.X,
        spec.gold,
        l_ref_s=spec.l_ref_s,
        timeout_s=spec.timeout_s,
        judge_noise=spec.judge_noise,
        seed=seed,
        tool=spec.tool,
        judged=spec.judged,
    )
    metrics = seed_metrics(records, spec.l_ref_s)
    metrics["wall_s"] = time.perf_counter() - started
    return metrics


_SPEC: BenchSpec | None = None


def _init_worker(spec: BenchSpec) -> None:
    global _SPEC
    _SPEC = spec


def _job(policy_name: str, seed: int, steps: int) -> tuple[str, int, dict[str, Any]]:
    assert _SPEC is not None
    return policy_name, seed, run_one(_SPEC, policy_name, seed, steps)


def default_workers() -> int:
    return max(1, min(2, os.cpu_count() or 1))


def run_benchmark(
    spec: BenchSpec,
    policies: Sequence[str],
    *,
    seeds: int,
    steps: int,
    workers: int | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Every (policy, seed) simulation, then the report dict (the JSON's shape)."""
    started, at_start = time.perf_counter(), machine()
    fixed = [FIXED_PREFIX + arm for arm in spec.arms] if "best-fixed" in policies else []
    simulated = [p for p in policies if p != "best-fixed"] + fixed
    for name in simulated:  # fail fast on an unknown policy, before any worker starts
        policy_for(spec, name, 0, [0])
    jobs = [(name, seed) for seed in range(seeds) for name in simulated]
    bar = ProgressBar(len(jobs), label=spec.benchmark) if progress else None
    results: dict[tuple[str, int], dict[str, Any]] = {}
    workers = default_workers() if workers is None else max(1, workers)
    if workers == 1:
        for name, seed in jobs:
            results[name, seed] = run_one(spec, name, seed, steps)
            if bar:
                bar.update(1, f"{name} seed {seed}")
    else:
        with worker_processes(workers, initializer=_init_worker, initargs=(spec,)) as pool:
            futures = [pool.submit(_job, name, seed, steps) for name, seed in jobs]
            for future in as_completed(futures):
                name, seed, metrics = future.result()
                results[name, seed] = metrics
                if bar:
                    bar.update(1, f"{name} seed {seed}")
    if bar:
        bar.close()

    report = {
        "benchmark": spec.benchmark,
        "dataset": spec.dataset,
        "machine": {**at_start, "load_average_at_end": load_average()},
        "seeds": seeds,
        "steps": steps,
        "params": spec.params,
        "arms": {
            arm: {"quality": float(spec.gold[:, a].mean()), "latency_mean_s": float(spec.arm_latency[arm])}
            for a, arm in enumerate(spec.arms)
        },
        "policies": {},
        "timeline_marks": spec.timeline_marks,
        "wall_s": {},
    }
    by_name = {name: [results[name, seed] for seed in range(seeds)] for name in simulated}
    if fixed:  # the fixed arm whose realized quality, averaged over the seeds, was best
        best = max(
            fixed, key=lambda name: (np.mean([m["quality"] for m in by_name[name]]), -fixed.index(name))
        )
        by_name["best-fixed"] = by_name[best]
    for name in policies:
        report["policies"][name] = aggregate(by_name[name])
        report["wall_s"][name] = round(sum(m["wall_s"] for m in by_name[name]), 2)
    if fixed:
        report["policies"]["best-fixed"]["arm"] = best.removeprefix(FIXED_PREFIX)
    report["wall_s"]["total"] = round(time.perf_counter() - started, 2)
    return report


def main(
    spec: BenchSpec,
    args: Any,
    started: float,
    default_policies: Sequence[str],
    findings: Callable[[dict[str, Any]], list[str]] | None = None,
) -> int:
    """The `mcp-router bench NAME` flow once a benchmark has built its spec: run, report, write.
    `findings(report)` adds the benchmark's own conclusions (lines under the table, `notes` in the JSON)."""
    from mcp_router.bench.report import emit

    policies = parse_policies(getattr(args, "policies", None), default_policies)
    report = run_benchmark(
        spec, policies, seeds=args.seeds, steps=args.steps, workers=getattr(args, "workers", None)
    )
    report["wall_s"]["with_setup"] = round(time.perf_counter() - started, 2)
    if findings is not None:
        report["notes"] = findings(report)
    emit(report, args)
    return 0


def parse_policies(value: str | None, default: Sequence[str]) -> list[str]:
    if not value or value == "all":
        return list(default)
    return [p.strip() for p in value.split(",") if p.strip()]


def estimate_unloaded_latency(
    service: ServiceModel, n_queries: int, samples: int = 400, seed: int = 0
) -> Mapping[str, float]:
    """Median service time per arm at the start of the stream, by sampling (for service models that do
    not publish their parameters)."""
    out = {}
    for a, arm in enumerate(service.arms):
        rng = np.random.default_rng([seed, 99, a])
        draws = [service.service_time(arm, i % max(1, n_queries), rng, 0.0)[0] for i in range(samples)]
        out[arm] = float(np.median(draws))
    return out
