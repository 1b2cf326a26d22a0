"""`mcp-router bench retrieval`: the retrieval scenario (`retrieval.build_spec`) run with the judge the
routers learn from, then the comparisons its bars are stated in.

`--judge simulated` (default) feeds the routers gold + N(0, σ); `--judge local` feeds them the server's
own local judge's grade of each call's results (`retrieval_judged`). Gold NDCG@10 is the metric either way.

The comparisons are paired: within a seed every policy sees the same queries and arrivals, so the
per-seed differences carry the confidence interval (1.96 · sd / √seeds, as every ±ci95 here):
- `lqm` against the best fixed arm in hindsight (quality, and mean latency), and the gap to the oracle;
- `lqm` against `lqm-nocontext` (the same router with x fixed to the bias): what context adds;
- `lqm` against `sw-ucb` and `round-robin`;
- the context headroom (`context_headroom`): what a per-query choice from the routers' features, and
  from the full MiniLM sentence vector, reaches when fitted with hindsight on the train queries.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

import numpy as np

from mcp_router.bench import runner
from mcp_router.bench.context_headroom import context_headroom, format_headroom
from mcp_router.bench.metrics import ci95
from mcp_router.bench.policies import ALL_POLICIES, NO_CONTEXT_SUFFIX
from mcp_router.bench.retrieval import ARMS, SciFact, arm_table, bench_data, build_spec
from mcp_router.bench.runner import BenchSpec

LQM = "lqm"
SW_UCB_MARGIN = 0.029  # issue 13's bar: lqm at least this much above sw-ucb


def use_local_judge(spec: BenchSpec, data: SciFact) -> None:
    """Make `spec`'s routers learn from the local judge's grades instead of the simulated judge."""
    from mcp_router.bench.retrieval_judged import local_judge_rewards

    rewards, path, hit = local_judge_rewards(data)
    print(f"bench: local judge grades {'loaded from' if hit else 'written to'} {path}", file=sys.stderr)
    spec.judged = rewards
    spec.params.update(
        judge=(
            "the server's local judge (feedback/local_judge.py, packaged parameters): its reward for the "
            "serving arm's top results on the call's query; deterministic per (query, arm); failures and "
            "timeouts get reward 0"
        ),
        judge_label="local judge (feedback/local_judge.py)",
        judge_noise_sigma=None,
        judge_cache=str(path),
        judge_mean_reward={arm: round(float(rewards[:, a].mean()), 4) for a, arm in enumerate(ARMS)},
    )


def paired(report: dict[str, Any], a: str, b: str) -> dict[str, float] | None:
    """Mean and ci95 of the per-seed quality difference a − b (None if either did not run)."""
    policies = report["policies"]
    if a not in policies or b not in policies:
        return None
    diffs = np.subtract(policies[a]["quality_per_seed"], policies[b]["quality_per_seed"])
    return {"mean": round(float(diffs.mean()), 4), "ci95": round(ci95(diffs.tolist()), 4)}


def _diff(d: dict[str, float] | None) -> str:
    return "not run" if d is None else f"{d['mean']:+.4f} ± {d['ci95']:.4f}"


def _verdict(d: dict[str, float]) -> str:
    if d["mean"] - d["ci95"] > 0:
        return "beats"
    return "above on average, within the interval, of" if d["mean"] > 0 else "does not beat"


def comparisons(report: dict[str, Any], headroom: dict[str, dict[str, Any]]) -> list[str]:
    """The findings under the table; also stored in the report as `comparisons`."""
    policies = report["policies"]
    found: dict[str, Any] = {
        "lqm_minus_best_fixed": paired(report, LQM, "best-fixed"),
        "lqm_minus_nocontext": paired(report, LQM, LQM + NO_CONTEXT_SUFFIX),
        "lqm_minus_sw_ucb": paired(report, LQM, "sw-ucb"),
        "lqm_minus_round_robin": paired(report, LQM, "round-robin"),
        "oracle_minus_lqm": paired(report, "oracle", LQM),
        "context_headroom": headroom,
    }
    report["comparisons"] = found
    lines = ["", "paired per-seed differences of quality (mean ± ci95):"]
    if LQM in policies and "best-fixed" in policies:
        lqm, fixed = policies[LQM], policies["best-fixed"]
        met = found["lqm_minus_best_fixed"]["mean"] >= 0 and lqm["latency_mean_s"] <= fixed["latency_mean_s"]
        found["better_than_any_single_arm"] = met
        lines.append(
            f"  lqm - best fixed arm ({fixed.get('arm')}): {_diff(found['lqm_minus_best_fixed'])}; "
            f"mean latency {lqm['latency_mean_s']:.3f}s vs {fixed['latency_mean_s']:.3f}s -> "
            f"'at least its quality at no more than its latency': {'met' if met else 'missed'}"
        )
    lines.append(f"  oracle - lqm (gap to the per-query oracle): {_diff(found['oracle_minus_lqm'])}")
    lines.append(f"  lqm - lqm-nocontext (what context adds): {_diff(found['lqm_minus_nocontext'])}")
    sw = found["lqm_minus_sw_ucb"]
    verdict = (
        "" if sw is None else f" (bar +{SW_UCB_MARGIN}: {'met' if sw['mean'] >= SW_UCB_MARGIN else 'missed'})"
    )
    lines.append(f"  lqm - sw-ucb: {_diff(sw)}{verdict}")
    rr = found["lqm_minus_round_robin"]
    beats = "" if rr is None else f" ({_verdict(rr)} round-robin)"
    lines.append(f"  lqm - round-robin: {_diff(rr)}{beats}")
    for name, h in headroom.items():
        lines += ["", *format_headroom(h, name)]
    return lines


def feature_sets(data: SciFact, spec: BenchSpec) -> dict[str, np.ndarray]:
    """The routers' own features, and the full MiniLM sentence vector they are a cheap sketch of: if
    even that carries no per-query signal about which arm wins, no feature built from it will."""
    table, _, _ = arm_table(data, progress=False)
    minilm = np.column_stack([np.ones(len(table.embeddings)), table.embeddings])
    return {"router features": spec.X, "MiniLM sentence vector (384-d) + bias": minilm}


def main(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    data = bench_data(args)
    spec = build_spec(args, data=data)
    if getattr(args, "judge", "simulated") == "local":
        use_local_judge(spec, data)
    headroom = {
        name: context_headroom(X, spec.gold, data.query_split, spec.arms, spec.arm_latency, spec.l_ref_s)
        for name, X in feature_sets(data, spec).items()
    }
    return runner.main(
        spec, args, started, ALL_POLICIES, findings=lambda report: comparisons(report, headroom)
    )
