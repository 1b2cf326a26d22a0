"""What `bench retrieval` concludes from a run: the context ablation policy, the context headroom of the
router's features, and the paired comparisons its bars are stated in."""

from __future__ import annotations

import numpy as np
import pytest

from mcp_router.bench.context_headroom import context_headroom, format_headroom
from mcp_router.bench.policies import make_policy
from mcp_router.bench.retrieval_command import comparisons
from mcp_router.routing.base import RouteContext
from mcp_router.routing.lqm import FEATURE_DIM

ARMS = ["a", "b"]


def policy(name: str):
    gold = np.zeros((2, len(ARMS)))
    return make_policy(
        name, ARMS, tool="retrieve", l_ref_s=1.0, capacity=None, seed=0, gold=gold, queries=[0], latency={}
    )


def unit(i: int) -> np.ndarray:
    x = np.zeros(FEATURE_DIM)
    x[0], x[i] = 1.0, 1.0
    return x / np.linalg.norm(x)


@pytest.mark.parametrize("name, separates", [("lqm", True), ("lqm-nocontext", False)])
def test_the_nocontext_variant_is_the_same_router_blind_to_the_features(name, separates):
    """After arm `a` was good for one population and bad for the other, LQM's estimate for `a`
    differs between them; the `-nocontext` variant sees the bias only, so it cannot tell them apart."""
    router = policy(name)
    x_good, x_bad = unit(3), unit(4)
    for i in range(40):
        router.observe_quality("a", x_good, 1.0, float(i))
        router.observe_quality("a", x_bad, 0.0, float(i))
        router.observe_quality("b", x_good, 0.5, float(i))
        router.observe_quality("b", x_bad, 0.5, float(i))
    good = router.rank(RouteContext("retrieve", "q", 50.0, x_good))
    bad = router.rank(RouteContext("retrieve", "q", 50.0, x_bad))
    gap = good.scores["a"]["u_hat"] - bad.scores["a"]["u_hat"]
    if separates:
        assert gap > 0.5 and good.order[0] == "a" and bad.order[0] == "b"
    else:
        assert gap == pytest.approx(0.0, abs=1e-12)
        assert good.order == bad.order
    assert router.name == name


def populations(informative: bool, n: int = 400, seed: int = 0):
    """Queries of two populations; arm 0 is best on the first, arm 1 on the second. With
    `informative`, the features say which population a query is from; otherwise they are noise."""
    rng = np.random.default_rng(seed)
    group = rng.integers(0, 2, n)
    gold = np.where(group[:, None] == np.array([[0, 1]]), 0.9, 0.3) + rng.normal(0, 0.02, (n, 2))
    X = np.zeros((n, 3))
    X[:, 0] = 1.0
    X[:, 1] = group if informative else rng.integers(0, 2, n)
    X[:, 2] = rng.normal(0, 1, n)
    split = ["train" if i < n // 2 else "test" for i in range(n)]
    return X, gold, split


def test_headroom_finds_context_when_the_features_carry_it_and_none_when_they_do_not():
    latency = {"a": 0.1, "b": 0.1}
    X, gold, split = populations(informative=True)
    h = context_headroom(X, gold, split, ARMS, latency, l_ref_s=1.0)
    assert h["by_predicted_quality"]["ndcg10"] == pytest.approx(h["oracle"]["ndcg10"], abs=0.01)
    assert h["by_predicted_quality"]["ndcg10"] > h["best_fixed_arm"]["ndcg10"] + 0.25

    X, gold, split = populations(informative=False)
    h = context_headroom(X, gold, split, ARMS, latency, l_ref_s=1.0)
    assert h["by_predicted_quality"]["ndcg10"] < h["best_fixed_arm"]["ndcg10"] + 0.05
    assert h["oracle"]["ndcg10"] > h["best_fixed_arm"]["ndcg10"] + 0.25
    assert any("per-query oracle" in line for line in format_headroom(h))


def test_headroom_per_cycle_prefers_the_fast_arm_at_equal_quality():
    X, gold, split = populations(informative=False)
    gold = np.full_like(gold, 0.6)
    h = context_headroom(X, gold, split, ARMS, {"a": 0.9, "b": 0.1}, l_ref_s=1.0)
    assert h["best_fixed_arm_per_cycle"]["arm"] == "b"
    assert h["by_predicted_quality_per_cycle"]["share"] == {"a": 0.0, "b": 1.0}


def test_headroom_needs_both_splits():
    X, gold, _ = populations(informative=True, n=20)
    assert "skipped" in context_headroom(X, gold, ["test"] * 20, ARMS, {"a": 0.1, "b": 0.1}, 1.0)


def fake_policy(per_seed: list[float], latency: float) -> dict:
    return {"quality_per_seed": per_seed, "quality": float(np.mean(per_seed)), "latency_mean_s": latency}


def test_comparisons_are_paired_per_seed_and_state_each_bar():
    report = {
        "policies": {
            "lqm": fake_policy([0.60, 0.70, 0.65], 0.30),
            "best-fixed": {**fake_policy([0.59, 0.69, 0.64], 0.31), "arm": "bm25"},
            "lqm-nocontext": fake_policy([0.60, 0.70, 0.65], 0.30),
            "sw-ucb": fake_policy([0.58, 0.68, 0.63], 0.2),
            "round-robin": fake_policy([0.61, 0.71, 0.66], 0.4),
            "oracle": fake_policy([0.8, 0.9, 0.85], 0.3),
        }
    }
    lines = comparisons(report, {"router features": {"skipped": "test"}})
    found = report["comparisons"]
    # the seeds differ by 0.1 from each other, but every paired difference is exactly +0.01: no spread
    assert found["lqm_minus_best_fixed"] == {"mean": 0.01, "ci95": 0.0}
    assert found["better_than_any_single_arm"] is True
    assert found["lqm_minus_nocontext"]["mean"] == 0.0
    text = "\n".join(lines)
    assert "bar +0.029: missed" in text
    assert "does not beat round-robin" in text
    report["policies"]["lqm"]["latency_mean_s"] = 0.35  # slower than the fixed arm: the bar is missed
    comparisons(report, {"router features": {"skipped": "test"}})
    assert report["comparisons"]["better_than_any_single_arm"] is False
