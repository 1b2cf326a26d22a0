"""MTRouter's selection rules: budget and context filters, prior Q-values, β-mixed picks and their
propensities, and the fallback order."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from mcp_router.routing.mtrouter.policy import (
    MIN_OUTPUT_TOKENS,
    admit,
    fallback_order,
    pick,
    prior_values,
    prompt_tokens_bound,
    prompt_tokens_typical,
)
from mcp_router.routing.mtrouter.pool import ModelSpec
from mcp_router.routing.mtrouter.router import (
    ModelParams,
    ModelRouter,
    NoModelAdmissible,
    observation,
    turn_of,
)

STRONG = ModelSpec("strong", 1e-5, 3e-5, context_window=100_000, quality_prior=0.9)
CHEAP = ModelSpec("cheap", 1e-7, 2e-7, context_window=8_000, quality_prior=0.5)
LOCAL = ModelSpec("local", 0.0, 0.0, context_window=300, quality_prior=0.2)
POOL = [STRONG, CHEAP, LOCAL]


def chat(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def test_prompt_estimates_bound_and_typical() -> None:
    messages = [*chat("x" * 100), {"role": "assistant", "content": "é" * 10}]  # é is 2 bytes
    # 8 + (ceil(100/2) + 8) + (ceil(20/2) + 8) = 84; typical: 8 + (25 + 8) + (5 + 8) = 54
    assert prompt_tokens_bound(messages) == 84
    assert prompt_tokens_typical(messages) == 54


def test_no_budget_admits_every_model_that_fits_and_clamps_to_the_window() -> None:
    admission = admit(POOL, chat("hello"), max_tokens=500, remaining_usd=None)
    assert list(admission.allowed) == ["strong", "cheap", "local"]
    typical = prompt_tokens_typical(chat("hello"))
    assert admission.allowed["local"].max_tokens == 300 - typical  # the window leaves room for this much
    assert admission.allowed["strong"].max_tokens == 500


def test_context_filter_excludes_models_whose_window_is_too_small() -> None:
    long = chat("word " * 2000)  # ~2,500 typical tokens: over local's 300, under cheap's 8,000
    admission = admit(POOL, long, max_tokens=64, remaining_usd=None)
    assert "local" not in admission.allowed and "cheap" in admission.allowed
    assert (
        admission.excluded["local"].startswith("context:")
        and "300-token window" in admission.excluded["local"]
    )


def test_budget_filter_uses_the_worst_case_and_clamps_max_tokens() -> None:
    messages = chat("a question of some length")
    bound = prompt_tokens_bound(messages)
    input_cost = bound * STRONG.input_cost_per_token
    # room for exactly 100 output tokens of the strong model
    remaining = input_cost + 100 * STRONG.output_cost_per_token + 1e-12
    admission = admit(POOL, messages, max_tokens=256, remaining_usd=remaining)
    strong = admission.allowed["strong"]
    assert strong.max_tokens == 100
    assert strong.est_cost_usd == pytest.approx(input_cost + 100 * STRONG.output_cost_per_token)
    assert strong.est_cost_usd <= remaining
    assert admission.allowed["cheap"].max_tokens == 256  # the cheap one affords the whole request


def test_budget_filter_excludes_a_model_that_cannot_afford_the_minimum_output() -> None:
    messages = chat("hi")
    input_cost = prompt_tokens_bound(messages) * STRONG.input_cost_per_token
    remaining = input_cost + (MIN_OUTPUT_TOKENS - 1) * STRONG.output_cost_per_token
    admission = admit([STRONG, LOCAL], messages, max_tokens=256, remaining_usd=remaining)
    assert list(admission.allowed) == ["local"]  # free models stay affordable
    assert admission.excluded["strong"].startswith("budget: needs up to $")


def test_spent_budget_leaves_only_free_models_and_then_nothing() -> None:
    assert list(admit(POOL, chat("hi"), 32, remaining_usd=0.0).allowed) == ["local"]
    empty = admit([STRONG, CHEAP], chat("hi"), 32, remaining_usd=-0.001)
    assert empty.allowed == {} and set(empty.excluded) == {"strong", "cheap"}


def test_prior_values_trade_quality_for_worst_case_cost() -> None:
    admission = admit(POOL, chat("hi"), max_tokens=100, remaining_usd=None)
    q0 = prior_values(POOL, admission, lam=1.0, typical_cost_usd=0.002)
    strong_cost = admission.allowed["strong"].est_cost_usd
    assert q0["strong"] == pytest.approx(0.9 - strong_cost / 0.002)
    assert q0["local"] == pytest.approx(0.2)
    expensive = prior_values(POOL, admission, lam=1000.0, typical_cost_usd=0.002)
    assert max(expensive, key=expensive.get) == "local"  # a high λ makes the free model win


def test_pick_propensities_match_the_empirical_choice_frequencies() -> None:
    q = {"strong": 0.8, "cheap": 0.6, "local": 0.1}
    rng = random.Random(7)
    picks = [pick(q, beta=0.7, rng=rng) for _ in range(30_000)]
    counts = Counter(p.model for p in picks)
    for p in picks[:50]:
        expected = 0.7 + 0.1 if p.model == "strong" else 0.1
        assert p.propensity == pytest.approx(expected)
        assert p.greedy == "strong"
    assert counts["strong"] / len(picks) == pytest.approx(0.8, abs=0.01)
    assert counts["local"] / len(picks) == pytest.approx(0.1, abs=0.01)
    assert {p.policy for p in picks} == {"greedy", "explore"}


def test_pick_single_model_beta_one_ties_and_stay_bonus() -> None:
    rng = random.Random(0)
    only = pick({"cheap": 0.1}, beta=0.5, rng=rng)
    assert (only.model, only.propensity, only.policy) == ("cheap", 1.0, "only")
    greedy = [pick({"a": 0.5, "b": 0.5}, beta=1.0, rng=rng) for _ in range(20)]
    assert {(p.model, p.propensity) for p in greedy} == {("a", 1.0)}  # ties go to the earlier model
    stay = pick({"a": 0.50, "b": 0.49}, beta=1.0, rng=rng, last_model="b", stay_bonus=0.02)
    assert stay.model == "b"


def test_fallback_order_puts_the_largest_window_right_after_the_choice() -> None:
    q = {"strong": 0.3, "cheap": 0.9, "local": 0.5}
    assert fallback_order("cheap", q, POOL, None) == ["cheap", "strong", "local"]
    assert fallback_order("strong", q, POOL, None) == ["strong", "cheap", "local"]
    assert fallback_order("cheap", q, POOL, "local") == ["cheap", "local", "strong"]


def test_turn_and_observation_of_a_conversation() -> None:
    messages = [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "run it"},
        {"role": "assistant", "content": "done"},
        {"role": "user", "content": "Traceback (most recent call last):"},
        {"role": "user", "content": "KeyError: 'x'"},
    ]
    assert turn_of(messages) == 1
    assert observation(messages) == "Traceback (most recent call last):\nKeyError: 'x'"


def test_model_router_before_any_checkpoint_decides_from_priors() -> None:
    router = ModelRouter(POOL, ModelParams(lam=0.0, beta=1.0))
    decision = router.decide(chat("hi"), max_tokens=32, remaining_usd=None)
    assert (decision.model, decision.stage, decision.policy, decision.propensity) == (
        "strong",
        "prior",
        "greedy",
        1.0,
    )
    assert decision.order == ["strong", "cheap", "local"] and decision.checkpoint_id is None
    with pytest.raises(NoModelAdmissible, match="strong: budget"):
        ModelRouter([STRONG, CHEAP], ModelParams()).decide(chat("hi"), 32, remaining_usd=0.0)
