"""LQM-ContextRoute and its baselines as pure policies: the properties the method stands on."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import anyio
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mcp_router.config import load_config
from mcp_router.routing import ROUTER_NAMES, Outcome, RouteContext, Router, build_router
from mcp_router.routing.features import Featurizer
from mcp_router.serving.dispatch import Arm, Dispatcher, ToolRoute
from mcp_router.store import Store
from providers import ProviderEnv, create_adapter
from providers.http import new_client
from providers.retrieve.collections import CollectionLibrary

Env = Callable[[str, int], tuple[float, float]]  # (arm, step) -> (quality, latency)


def stream(router: Router, env: Env, steps: int, start: int = 0, dt: float = 0.5) -> list[str]:
    """Sequential calls: rank, serve with the environment's latency, learn the exact quality."""
    chosen = []
    for step in range(start, start + steps):
        now = step * dt
        arm = router.rank(RouteContext("t", "q", now)).order[0]
        quality, latency = env(arm, step)
        router.observe(Outcome(arm, "ok", latency, now + latency))
        router.observe_quality(arm, None, quality, now + latency)
        chosen.append(arm)
    return chosen


def share(chosen: list[str], arm: str) -> float:
    return chosen.count(arm) / len(chosen)


@settings(max_examples=40, deadline=None)
@given(
    weak=st.floats(0.3, 0.45),
    ratio=st.floats(2.1, 3.0),
    lat_strong=st.floats(0.01, 20.0),
    lat_weak=st.floats(0.01, 20.0),
)
def test_twice_the_quality_wins_whatever_the_latencies(weak, ratio, lat_strong, lat_weak) -> None:
    strong = min(weak * ratio, 1.0)
    router = build_router("lqm-noguards", "t", ["weak", "strong"], l_ref_s=0.5)
    env = {"weak": (weak, lat_weak), "strong": (strong, lat_strong)}
    for i in range(400):  # both arms well observed
        for arm in ("weak", "strong"):
            router.observe(Outcome(arm, "ok", env[arm][1], float(i)))
            router.observe_quality(arm, None, env[arm][0], float(i))
    decision = router.rank(RouteContext("t", "q", 400.0))
    assert decision.order[0] == "strong", decision.scores


def collapse_env(arm: str, step: int) -> tuple[float, float]:
    return {"strong": (0.8, 1.0), "weak": (0.35, 0.05)}[arm]


def test_additive_reward_collapses_onto_the_fast_weak_arm_and_lqm_does_not() -> None:
    lqm = stream(build_router("lqm", "t", ["weak", "strong"], l_ref_s=0.5), collapse_env, 300)
    additive = stream(build_router("additive-0.5", "t", ["weak", "strong"], l_ref_s=0.5), collapse_env, 300)
    sw_ucb = stream(build_router("sw-ucb", "t", ["weak", "strong"], l_ref_s=0.5), collapse_env, 300)
    assert share(lqm[-100:], "strong") >= 0.9
    assert share(additive[-100:], "weak") >= 0.9
    assert share(sw_ucb[-100:], "weak") >= 0.7


def test_quality_shift_moves_traffic_within_a_bounded_number_of_calls() -> None:
    # Stale good evidence leaves the quality window only as new observations push it out, so the
    # bound is in units of the window: here W = 100.
    router = build_router("lqm", "t", ["a", "b"], l_ref_s=0.5, params={"window": 100})

    def env(arm: str, step: int) -> tuple[float, float]:
        if arm == "a":
            return (0.8 if step < 300 else 0.1), 0.2
        return 0.45, 0.2

    before = stream(router, env, 300)
    after = stream(router, env, 400, start=300)
    assert share(before[-100:], "a") >= 0.9
    moved = next(i for i in range(len(after)) if after[i : i + 20].count("b") == 20)
    assert moved <= 2 * 100  # two windows
    assert share(after[-100:], "b") >= 0.9


def test_latency_shift_moves_traffic_between_arms_of_similar_quality() -> None:
    router = build_router("lqm", "t", ["a", "b"], l_ref_s=0.5)

    def env(arm: str, step: int) -> tuple[float, float]:
        if arm == "a":
            return 0.7, (0.05 if step < 300 else 2.0)
        return 0.66, 0.3

    before = stream(router, env, 300)
    after = stream(router, env, 200, start=300)
    assert share(before[-100:], "a") >= 0.9
    moved = next(i for i in range(len(after)) if after[i : i + 20].count("b") == 20)
    assert moved <= 60
    assert share(after[-100:], "b") >= 0.9


def test_cold_arms_are_warmed_up_first_and_none_starves() -> None:
    arms = ["a", "b", "c", "d"]
    router = build_router("lqm", "t", arms, l_ref_s=0.5, params={"n_min": 10, "window_age_s": 200.0})

    def env(arm: str, step: int) -> tuple[float, float]:
        return {"a": 0.9, "b": 0.3, "c": 0.2, "d": 0.1}[arm], 0.1

    first = stream(router, env, 40)
    assert Counter(first) == {arm: 10 for arm in arms}
    later = stream(router, env, 2000, start=40)  # 1000 s of simulated time: evidence ages out
    assert all(later.count(arm) > 10 for arm in arms)  # dominated arms come back for fresh warm-up


def test_open_breaker_excludes_an_arm_and_the_half_open_probe_restores_it() -> None:
    router = build_router("lqm", "t", ["a", "b"], l_ref_s=0.5)
    for i in range(5):
        router.observe(Outcome("a", "unavailable", 0.1, float(i)))
    closed = router.rank(RouteContext("t", "q", 10.0))
    assert closed.order == ["b"] and closed.excluded["a"].startswith("circuit breaker open")
    probe = router.rank(RouteContext("t", "q", 36.0))  # 30 s later: half-open, one probe admitted
    assert "a" in probe.order and "a" not in probe.excluded
    router.guards.dispatched("a", 36.0)
    assert router.rank(RouteContext("t", "q", 36.1)).excluded["a"].endswith("its probe is in flight")
    router.observe(Outcome("a", "ok", 0.1, 36.2))
    assert "a" not in router.rank(RouteContext("t", "q", 36.3)).excluded
    # a failed probe re-opens it
    for i in range(5):
        router.observe(Outcome("a", "unavailable", 0.1, 40.0 + i))
    router.rank(RouteContext("t", "q", 80.0))
    router.guards.dispatched("a", 80.0)
    router.observe(Outcome("a", "timeout", 1.5, 81.5))
    assert router.rank(RouteContext("t", "q", 82.0)).excluded["a"].startswith("circuit breaker open")


def test_retry_after_cools_an_arm_down_and_nothing_eligible_forces_the_best() -> None:
    router = build_router("lqm", "t", ["a", "b"], l_ref_s=0.5)
    router.observe(Outcome("a", "rate_limited", 0.1, 1.0, retry_after=20.0))
    assert router.rank(RouteContext("t", "q", 2.0)).excluded["a"].startswith("rate limited")
    router.observe(Outcome("b", "rate_limited", 0.1, 2.0))
    forced = router.rank(RouteContext("t", "q", 3.0))
    assert forced.policy == "forced" and sorted(forced.order) == ["a", "b"]
    assert "a" not in router.rank(RouteContext("t", "q", 21.5)).excluded


def test_slo_guard_sheds_an_arm_whose_median_exceeds_twice_l_ref() -> None:
    router = build_router("lqm", "t", ["a", "b"], l_ref_s=0.5)
    for i in range(5):
        router.observe(Outcome("a", "ok", 1.5, float(i)))
    assert router.rank(RouteContext("t", "q", 5.0)).excluded["a"].startswith("SLO guard")
    assert "a" not in router.rank(RouteContext("t", "q", 36.0)).excluded  # the probe after 30 s


def test_in_flight_cap_and_correction() -> None:
    router = build_router("lqm", "t", ["a", "b"], l_ref_s=1.0, capacity={"a": 2, "b": 8})
    router.observe(Outcome("a", "ok", 0.5, 0.0))
    router.observe(Outcome("b", "ok", 0.5, 0.0))
    decision = router.rank(RouteContext("t", "q", 1.0, inflight={"a": 1, "b": 4}))
    assert decision.scores["a"]["tau_s"] == pytest.approx(0.75) and decision.scores["b"][
        "tau_s"
    ] == pytest.approx(0.75)
    capped = router.rank(RouteContext("t", "q", 1.0, inflight={"a": 2}))
    assert capped.excluded["a"].startswith("in-flight cap")


@pytest.mark.parametrize("name", ROUTER_NAMES)
def test_every_policy_serves_every_arm_it_must_and_is_deterministic(name: str) -> None:
    def env(arm: str, step: int) -> tuple[float, float]:
        return {"a": 0.6, "b": 0.5, "c": 0.4}[arm], {"a": 0.3, "b": 0.2, "c": 0.1}[arm]

    runs = [stream(build_router(name, "t", ["a", "b", "c"], l_ref_s=0.5, seed=7), env, 60) for _ in range(2)]
    assert runs[0] == runs[1]
    assert set(runs[0]) == {"a", "b", "c"}


@pytest.mark.anyio
@pytest.mark.slow
async def test_an_arm_still_loading_is_passed_over_and_never_waited_for_long(
    tmp_path: Path, notes_dir: Path
) -> None:
    """No call waits for a model or an index while another arm can serve it. With every arm still
    loading, a call waits for the first to be ready (at most LOADING_WAIT_S); a lone arm that is not
    ready by then is tried anyway and says how far its indexing is."""
    import threading

    from mcp_router.serving.dispatch import LOADING_WAIT_S, AllProvidersFailed
    from providers.types import RetrieveRequest
    from tests.test_collection_index import CountingEmbed

    release = threading.Event()

    class GatedEmbed(CountingEmbed):
        def __call__(self, texts):  # the dense view is published only once the test lets it
            release.wait(60)
            return super().__call__(texts)

    library = CollectionLibrary([("notes", notes_dir)], index_root=False, embed=GatedEmbed())
    env = ProviderEnv(http=new_client(), collections=library)
    providers = {p.name: p for p in load_config().config.tool("retrieve").providers}
    arms = {
        name: Arm(create_adapter(providers[name].spec({"notes": "notes"}), env), 60.0)
        for name in ("bm25", "dense")
    }
    request = RetrieveRequest("tomatoes", "notes", 2)
    try:
        assert not arms["dense"].adapter.ready(request)  # its collection's vectors are not built yet
        router = build_router("round-robin", "retrieve", list(arms), l_ref_s=0.5)
        both = Dispatcher({"retrieve": ToolRoute("retrieve", arms, router, 2, 60)}, Store(tmp_path / "a.db"))
        served = [(await both.run("retrieve", request, "tomatoes", {})).provider for _ in range(4)]
        assert served == ["bm25"] * 4  # the first call waited for bm25's index, not for dense's
        excluded = [c["decision"]["excluded"] for c in both.store.recent_calls(4)]
        assert excluded == [{"dense": "loading its model or index"}] * 4

        alone = {"dense": arms["dense"]}
        router = build_router("round-robin", "retrieve", ["dense"], l_ref_s=0.5)
        lone = Dispatcher({"retrieve": ToolRoute("retrieve", alone, router, 2, 60)}, Store(tmp_path / "b.db"))
        started = time.monotonic()
        with pytest.raises(AllProvidersFailed, match="still being indexed"):
            await lone.run("retrieve", request, "tomatoes", {})
        assert LOADING_WAIT_S <= time.monotonic() - started < LOADING_WAIT_S + 2.0
        release.set()
        with anyio.fail_after(30):
            while not arms["dense"].adapter.ready(request):
                await anyio.sleep(0.02)
        assert (await lone.run("retrieve", request, "tomatoes", {})).provider == "dense"
    finally:
        release.set()
        library.stop()
    both.close()
    lone.close()
    await env.http.aclose()


def test_decision_draws_are_a_pure_function_of_seed_and_index() -> None:
    from mcp_router.routing.draws import Draws

    assert Draws(7, 3).random(5) == Draws(7, 3).random(5)
    assert Draws(7, 3).random(5) != Draws(7, 4).random(5) != Draws(8, 3).random(5)
    values = [Draws(0, i).random() for i in range(20_000)]
    assert all(0.0 <= v < 1.0 for v in values)
    assert abs(np.mean(values) - 0.5) < 0.01 and abs(np.var(values) - 1 / 12) < 0.005
    counts = Counter(tuple(Draws(1, i).permutation(3)) for i in range(6_000))
    assert len(counts) == 6 and min(counts.values()) > 850  # every order, about equally often
    assert Counter(Draws(2, i).integers(4) for i in range(4_000)).keys() == {0, 1, 2, 3}


def test_default_features_are_static_token_vectors_and_unit_norm() -> None:
    from mcp_router.routing.features import FEAT_VERSION, PROJ_DIM, TEXT_FEATURES

    featurizer = Featurizer.default()
    assert featurizer.version == FEAT_VERSION == "f2-text9-static16"
    a, b = featurizer("vitamin D and bone density"), featurizer("Who won the 2022 world cup?")
    assert a.shape == (TEXT_FEATURES + PROJ_DIM,) and np.isclose(np.linalg.norm(a), 1.0)
    np.testing.assert_array_equal(a, featurizer("vitamin D and bone density"))
    assert not np.allclose(a[TEXT_FEATURES:], b[TEXT_FEATURES:])  # the text's meaning moves x
    similar = featurizer("bone density and vitamin D supplements")
    assert a[TEXT_FEATURES:] @ similar[TEXT_FEATURES:] > a[TEXT_FEATURES:] @ b[TEXT_FEATURES:]
    empty = featurizer("   ")
    assert np.isclose(np.linalg.norm(empty), 1.0) and not empty[TEXT_FEATURES:].any()
    assert np.isclose(np.linalg.norm(featurizer("word " * 5000)), 1.0)  # cut at MiniLM's window


@settings(max_examples=60, deadline=None)
@given(latencies=st.lists(st.floats(0.0, 3.0), min_size=1, max_size=250), window=st.integers(5, 120))
def test_slo_guard_excludes_exactly_when_the_window_median_is_over_the_limit(latencies, window) -> None:
    """The guard counts samples over the limit instead of taking a median per attempt; it must
    exclude at the same moments as the median rule it implements."""
    import statistics
    from collections import deque

    from mcp_router.routing.guards import GuardParams, Guards

    params = GuardParams(l_ref_s=0.5, window=window, window_age_s=1e9, slo_backoff_s=1e-6)
    guards = Guards(["a"], params, {})
    recent: deque[float] = deque(maxlen=window)
    for i, latency in enumerate(latencies):
        now = float(i)
        health = guards.health["a"]
        probing = health.slow_probe
        before = health.slow_until
        guards.dispatched("a", now)
        guards.record(Outcome("a", "ok", latency, now))
        recent.append(latency)
        if probing:  # a probe's own rule: within the limit resets the window, else excluded again
            if latency <= 1.0:
                recent = deque([latency], maxlen=window)
            continue
        expected = len(recent) >= params.slo_min_samples and statistics.median(recent) > 1.0
        assert (health.slow_until > before) == expected


def test_fallback_endpoints_are_ordered_by_learned_quality_without_a_decision() -> None:
    """llm_complete's fallback models' endpoints: LQM orders each model's by its scores (a pure
    read: no draw, no decision counted, state unchanged); a policy without scores keeps config order."""
    from types import SimpleNamespace

    from mcp_router.serving.dispatch import fallback_order

    arms = ["a1", "b1", "b2", "c1", "c2"]
    lqm = build_router("lqm", "llm_complete", arms, l_ref_s=8.0)
    for i in range(40):
        now = 1000.0 + i
        lqm.observe_quality("b1", None, 0.1, now)
        lqm.observe_quality("b2", None, 0.9, now)
        lqm.observe_quality("c1", None, 0.8, now)
        lqm.observe_quality("c2", None, 0.2, now)
    context = RouteContext(tool="llm_complete", text="hi", now=1100.0, x=None, inflight={})
    before = (lqm.decisions, lqm.fingerprint(), lqm.get_state())
    plan = SimpleNamespace(
        fallbacks=["b1", "b2", "c1", "c2"], model_of={"b1": "B", "b2": "B", "c1": "C", "c2": "C"}
    )
    assert fallback_order(lqm, plan, context) == ["b2", "b1", "c1", "c2"]  # model order kept
    assert (lqm.decisions, lqm.fingerprint(), lqm.get_state()) == before
    plain = build_router("round-robin", "llm_complete", arms, l_ref_s=8.0)
    assert fallback_order(plain, plan, context) == ["b1", "b2", "c1", "c2"]


def test_fallback_endpoints_are_ranked_only_once_the_chosen_models_are_used_up() -> None:
    """The attempts' order is lazy: the first attempt needs no score of the fallback models."""
    from types import SimpleNamespace

    from mcp_router.routing import Decision
    from mcp_router.serving.dispatch import attempt_order

    lqm = build_router("lqm", "llm_complete", ["a1", "a2", "b1", "b2"], l_ref_s=8.0)
    ranked: list[list[str]] = []
    order_fallbacks = lqm.order_fallbacks

    def counted(arms: list[str], context: RouteContext) -> list[str]:
        ranked.append(list(arms))
        return order_fallbacks(arms, context)

    lqm.order_fallbacks = counted
    context = RouteContext(tool="llm_complete", text="hi", now=1.0, x=None, inflight={})
    plan = SimpleNamespace(fallbacks=["b1", "b2"], model_of={"b1": "B", "b2": "B"})
    order = attempt_order(lqm, Decision(order=["a2", "a1"], policy="lqm"), plan, context)
    assert [next(order), next(order)] == ["a2", "a1"] and ranked == []
    assert sorted(order) == ["b1", "b2"] and ranked == [["b1", "b2"]]
    assert list(attempt_order(lqm, Decision(order=["a1"], policy="lqm"), None, context)) == ["a1"]


COOKING = [
    "how long should I {} {} in the oven",
    "best way to {} {} for dinner tonight",
    "recipe: {} {} with garlic and butter",
    "can I {} {} without a stand mixer",
]
ASTRONOMY = [
    "what is the orbit of {} around the {}",
    "how far is {} from the {} in light years",
    "why does {} appear near the {} at night",
    "telescope tips for observing {} and the {}",
]
COOK_WORDS = (
    ["bake", "roast", "braise", "knead", "simmer"],
    ["bread", "chicken", "vegetables", "dough", "soup"],
)
SKY_WORDS = (
    ["Mars", "Jupiter", "Venus", "Saturn", "the comet"],
    ["Sun", "Moon", "galaxy", "horizon", "stars"],
)


def population_queries(rng: np.random.Generator, n: int) -> list[tuple[str, str]]:
    """(query, population) pairs: cooking questions and astronomy questions, mixed at random."""
    queries = []
    for _ in range(n):
        cooking = bool(rng.random() < 0.5)
        templates, (first, second) = (COOKING, COOK_WORDS) if cooking else (ASTRONOMY, SKY_WORDS)
        text = templates[rng.integers(len(templates))].format(first[rng.integers(5)], second[rng.integers(5)])
        queries.append((text, "cooking" if cooking else "astronomy"))
    return queries


def routed_correctly(use_context: bool) -> float:
    """Train LQM on two query populations whose best arms differ (bandit feedback: only the chosen
    arm's quality is seen), then the share of fresh queries whose first choice is their best arm."""
    featurizer = Featurizer.default()
    best = {"cooking": "kitchen", "astronomy": "sky"}
    router = build_router("lqm", "retrieve", ["kitchen", "sky"], l_ref_s=0.5)
    rng = np.random.default_rng(7)
    for step, (text, population) in enumerate(population_queries(rng, 400)):
        now = float(step)
        x = featurizer(text) if use_context else None
        arm = router.rank(RouteContext("retrieve", text, now, x=x)).order[0]
        router.observe(Outcome(arm, "ok", 0.05, now + 0.05))
        router.observe_quality(arm, x, 0.9 if arm == best[population] else 0.2, now + 0.05)
    fresh = population_queries(np.random.default_rng(99), 200)
    hits = 0
    for text, population in fresh:
        x = featurizer(text) if use_context else None
        context = RouteContext("retrieve", text, 500.0, x=x)
        hits += router.score_order(["kitchen", "sky"], context)[0] == best[population]
    return hits / len(fresh)


def test_context_routes_two_populations_to_their_own_best_arms() -> None:
    """LQM with the query features learns that cooking and astronomy questions have different best
    arms; with x fixed to the bias (no context) it can only pick one arm for both."""
    with_context = routed_correctly(use_context=True)
    without = routed_correctly(use_context=False)
    assert with_context >= 0.9
    assert without <= 0.6  # one arm for everyone: about half the queries get the wrong one


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.floats(0.0, 30.0), min_size=1, max_size=400),
    st.integers(1, 50),
)
def test_the_latency_window_mean_is_the_mean_of_its_last_samples(latencies: list[float], window: int) -> None:
    """The running sum gives the window's mean after any number of adds (samples inside the age)."""
    from mcp_router.routing.latency import LatencyWindow

    w = LatencyWindow(window=window, window_age_s=1e9)
    for i, latency in enumerate(latencies):
        w.add(latency, now=float(i))
        assert w.mean(float(i)) == pytest.approx(np.mean(latencies[max(0, i + 1 - window) : i + 1]), abs=1e-9)
    restored = LatencyWindow(window=window, window_age_s=1e9)
    restored.set_state(w.get_state())
    assert restored.mean(1e3) == pytest.approx(w.mean(1e3), abs=1e-12)
