"""Benchmark metrics: NDCG@10 for a ranking, and the per-policy summaries of simulated calls.

Every per-policy metric is computed per seed on that seed's calls and then averaged over seeds;
`quality_ci95` is 1.96 · sd / √seeds of the per-seed mean qualities (sample sd, ddof = 1).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from mcp_router.bench.des import OK, TIMEOUT, UNAVAILABLE, Records


def ndcg_at_k(ranking: Sequence[str], qrels: Mapping[str, float], k: int = 10) -> float:
    """NDCG@k with linear gain (trec_eval `ndcg_cut_k`, as in BEIR): DCG = Σ_{r≤k} rel_r / log2(r + 1);
    IDCG is the same sum over the qrels' ideal ordering (fewer than k relevant: only those count).
    0 when the query has no relevant document."""
    ideal = sorted((g for g in qrels.values() if g > 0), reverse=True)[:k]
    idcg = sum(g / math.log2(r + 2) for r, g in enumerate(ideal))
    if idcg <= 0:
        return 0.0
    dcg = sum(
        qrels.get(doc, 0.0) / math.log2(r + 2) for r, doc in enumerate(ranking[:k]) if qrels.get(doc, 0) > 0
    )
    return dcg / idcg


def ci95(values: Sequence[float]) -> float:
    """1.96 · sample sd / √n; 0 for fewer than two values."""
    v = np.asarray(values, dtype=float)
    if len(v) < 2:
        return 0.0
    return float(1.96 * v.std(ddof=1) / math.sqrt(len(v)))


def share_over_time(records: Records, bins: int) -> np.ndarray:
    """(bins, arms): fraction of the calls in each equal slice of the stream (by step) sent to each arm."""
    n_arms = len(records.arms)
    out = np.zeros((bins, n_arms))
    edges = np.linspace(0, len(records), bins + 1).astype(int)
    for b in range(bins):
        chunk = records.arm[edges[b] : edges[b + 1]]
        if len(chunk):
            out[b] = np.bincount(chunk, minlength=n_arms) / len(chunk)
    return out


def seed_metrics(records: Records, l_ref_s: float, bins: int = 40) -> dict[str, Any]:
    """The metrics of one policy on one seed's stream."""
    n = len(records)
    lat = records.latency
    ok = records.status == OK
    cycles = 1.0 + lat / l_ref_s
    counts = np.bincount(records.arm, minlength=len(records.arms))
    return {
        "calls": n,
        "quality": float(records.quality.mean()),
        "latency_mean_s": float(lat.mean()),
        "latency_p50_s": float(np.percentile(lat, 50)),
        "latency_p95_s": float(np.percentile(lat, 95)),
        "sla_rate": float(np.mean(ok & (lat <= l_ref_s))),
        "quality_per_cycle": float(records.quality.sum() / cycles.sum()),
        "timeout_rate": float(np.mean(records.status == TIMEOUT)),
        "error_rate": float(np.mean(records.status == UNAVAILABLE)),
        "wait_mean_s": float(np.mean(records.wait)),
        "share": {arm: float(c / n) for arm, c in zip(records.arms, counts, strict=True)},
        "share_over_time": share_over_time(records, bins).tolist(),
    }


_AVERAGED = (
    "quality",
    "latency_mean_s",
    "latency_p50_s",
    "latency_p95_s",
    "sla_rate",
    "quality_per_cycle",
    "timeout_rate",
    "error_rate",
    "wait_mean_s",
)


def aggregate(per_seed: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """One policy's report entry from its per-seed metrics."""
    out: dict[str, Any] = {key: float(np.mean([m[key] for m in per_seed])) for key in _AVERAGED}
    out["quality_ci95"] = ci95([m["quality"] for m in per_seed])
    out["quality_per_seed"] = [m["quality"] for m in per_seed]
    arms = list(per_seed[0]["share"])
    out["share"] = {arm: float(np.mean([m["share"][arm] for m in per_seed])) for arm in arms}
    out["share_over_time"] = np.mean([m["share_over_time"] for m in per_seed], axis=0).round(4).tolist()
    ordered = ["quality", "quality_ci95", "latency_mean_s", "latency_p95_s", "sla_rate", "quality_per_cycle"]
    return {key: out[key] for key in ordered} | {k: v for k, v in out.items() if k not in ordered}
