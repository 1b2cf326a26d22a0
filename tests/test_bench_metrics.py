"""NDCG@10 on hand-made rankings, and the policy metrics on hand-made call records."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mcp_router.bench.des import OK, TIMEOUT, UNAVAILABLE, Records
from mcp_router.bench.metrics import aggregate, ci95, ndcg_at_k, seed_metrics, share_over_time
from mcp_router.bench.policies import Fixed, Oracle, preference
from mcp_router.routing.base import RouteContext


def test_ndcg_two_relevant_one_missed_position():
    qrels = {"d1": 1.0, "d2": 1.0}
    dcg = 1 / math.log2(2) + 1 / math.log2(4)  # hits at ranks 1 and 3
    idcg = 1 / math.log2(2) + 1 / math.log2(3)
    assert ndcg_at_k(["d1", "x", "d2", "y"], qrels) == pytest.approx(dcg / idcg)


def test_ndcg_idcg_counts_only_the_relevant_when_fewer_than_ten():
    # one relevant document: the ideal ordering has a single term, so rank 1 is perfect ...
    assert ndcg_at_k(["d1"] + [f"x{i}" for i in range(9)], {"d1": 1.0}) == pytest.approx(1.0)
    # ... and rank 3 gives 1/log2(4) = 0.5
    assert ndcg_at_k(["x", "y", "d1"], {"d1": 1.0}) == pytest.approx(0.5)


def test_ndcg_cuts_at_ten_on_both_sides():
    qrels = {f"d{i}": 1.0 for i in range(12)}
    assert ndcg_at_k([f"d{i}" for i in range(12)], qrels) == pytest.approx(1.0)  # IDCG also stops at 10
    ranking = [f"x{i}" for i in range(10)] + ["d0"]  # the hit at rank 11 does not count
    assert ndcg_at_k(ranking, {"d0": 1.0}) == 0.0


def test_ndcg_no_hit_no_relevant_and_graded_gains():
    assert ndcg_at_k(["a", "b"], {"z": 1.0}) == 0.0
    assert ndcg_at_k(["a", "b"], {}) == 0.0
    assert ndcg_at_k([], {"a": 1.0}) == 0.0
    qrels = {"a": 2.0, "b": 1.0, "c": 0.0}  # linear gain; zero-gain judgments count as non-relevant
    got = ndcg_at_k(["b", "a", "c"], qrels)
    assert got == pytest.approx((1 + 2 / math.log2(3)) / (2 + 1 / math.log2(3)))


def records(latency, quality, status, arm, arms=("a", "b")) -> Records:
    n = len(latency)
    z = np.zeros(n)
    return Records(
        arms=list(arms),
        query=np.arange(n),
        arm=np.array(arm),
        t=np.arange(n, dtype=float),
        wait=z,
        service=np.array(latency, float),
        latency=np.array(latency, float),
        quality=np.array(quality, float),
        reward=np.array(quality, float),
        status=np.array(status, dtype=np.int8),
        t_done=z,
        inflight=np.zeros((n, len(arms)), dtype=np.int32),
    )


def test_seed_metrics_on_hand_made_records():
    r = records(
        latency=[0.2, 0.5, 1.5, 0.8],
        quality=[0.6, 0.4, 0.0, 0.0],
        status=[OK, OK, TIMEOUT, UNAVAILABLE],
        arm=[0, 0, 1, 1],
    )
    m = seed_metrics(r, l_ref_s=0.5, bins=2)
    assert m["quality"] == pytest.approx(0.25)
    assert m["sla_rate"] == pytest.approx(0.5)  # within L_ref (inclusive) and ok; the error and timeout miss
    # Σ q / Σ (1 + τ/L_ref) = 1.0 / (1.4 + 2.0 + 4.0 + 2.6)
    assert m["quality_per_cycle"] == pytest.approx(0.1)
    assert m["latency_mean_s"] == pytest.approx(0.75)
    assert m["latency_p95_s"] == pytest.approx(np.percentile([0.2, 0.5, 1.5, 0.8], 95))
    assert m["timeout_rate"] == 0.25 and m["error_rate"] == 0.25
    assert m["share"] == {"a": 0.5, "b": 0.5}
    assert m["share_over_time"] == [[1.0, 0.0], [0.0, 1.0]]


def test_fast_error_is_an_sla_miss():
    r = records(latency=[0.01], quality=[0.0], status=[UNAVAILABLE], arm=[0])
    assert seed_metrics(r, l_ref_s=0.5)["sla_rate"] == 0.0


def test_ci95_and_aggregate():
    assert ci95([0.1, 0.2, 0.3]) == pytest.approx(1.96 * 0.1 / math.sqrt(3))
    assert ci95([0.4]) == 0.0
    seeds = []
    for q in (0.2, 0.4):
        r = records(latency=[0.1, 0.1], quality=[q, q], status=[OK, OK], arm=[0, 1])
        seeds.append(seed_metrics(r, l_ref_s=0.5, bins=1))
    agg = aggregate(seeds)
    assert agg["quality"] == pytest.approx(0.3)
    assert agg["quality_ci95"] == pytest.approx(1.96 * np.std([0.2, 0.4], ddof=1) / math.sqrt(2))
    assert agg["quality_per_seed"] == pytest.approx([0.2, 0.4])
    assert agg["share"] == {"a": 0.5, "b": 0.5}
    assert list(agg)[:6] == [
        "quality",
        "quality_ci95",
        "latency_mean_s",
        "latency_p95_s",
        "sla_rate",
        "quality_per_cycle",
    ]


def test_share_over_time_bins_by_step():
    r = records(latency=[0.1] * 6, quality=[0] * 6, status=[OK] * 6, arm=[0, 0, 0, 1, 1, 0])
    assert share_over_time(r, 2).tolist() == [[1.0, 0.0], pytest.approx([1 / 3, 2 / 3])]


def test_gold_policies_prefer_quality_then_lower_latency():
    gold = np.array([[0.5, 0.5, 0.1], [0.0, 0.0, 0.0], [0.2, 0.3, 0.9]])
    latency = {"slow": 0.7, "fast": 0.1, "mid": 0.3}
    arms = ["slow", "fast", "mid"]
    assert preference(gold[0], np.array([0.7, 0.1, 0.3])) == [1, 0, 2]
    oracle = Oracle(arms, gold, latency)
    picks = []
    for q in range(3):
        oracle.see_query(q)
        picks.append(oracle.rank(RouteContext(tool="t", text="", now=0.0)).order[0])
    assert picks == ["fast", "fast", "mid"]  # tie -> lower latency; all-zero -> fastest; best
    fixed = Fixed(arms, gold, latency, "mid")
    assert fixed.rank(RouteContext(tool="t", text="", now=0.0)).order == ["mid", "slow", "fast"]


def test_policy_variants_parse_router_parameters():
    from mcp_router.bench.policies import parse_variant

    assert parse_variant("lqm") == ("lqm", {})
    assert parse_variant("lqm:alpha=0.2,modulation=none,n_min=5,clip=false") == (
        "lqm",
        {"alpha": 0.2, "modulation": "none", "n_min": 5, "clip": False},
    )
