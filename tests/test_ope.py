"""Off-policy evaluation: the estimators on hand-checked logs, the server's logs with a fallback, and
the known-truth replays of LLMRouter test items (coverage, and the promotion gate of train --from-db
on a real SQLite store)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mcp_router.routing.mtrouter import ope

# ------------------------------------------------------------------ estimators on a hand-made log

# 4 one-step sessions, 2 models; the logging policy chose model 0 w.p. 0.8 and model 1 w.p. 0.2
HAND = ope.LoggedSteps(
    session=np.array(["a", "b", "c", "d"]),
    action=np.array([0, 0, 1, 0]),
    propensity=np.array([0.8, 0.8, 0.2, 0.8]),
    quality=np.array([1.0, 0.0, 1.0, 1.0]),
    cost=np.array([1.0, 1.0, 3.0, 1.0]),
)
ALWAYS_1 = np.tile([0.0, 1.0], (4, 1))
GUESS = ope.DirectModel(quality=np.tile([0.5, 0.5], (4, 1)), cost=np.tile([1.0, 2.0], (4, 1)))


def test_ips_snips_and_dr_match_the_hand_computed_values() -> None:
    est = ope.evaluate(HAND, ALWAYS_1, GUESS, lam=0.5, resamples=50).intervals
    # only step c chose model 1: w = 1/0.2 = 5 there, 0 elsewhere
    assert est["ips"]["quality"].estimate == pytest.approx(5 * 1.0 / 4)
    assert est["ips"]["cost"].estimate == pytest.approx(5 * 3.0 / 4)
    assert est["snips"]["quality"].estimate == pytest.approx(1.0) and est["snips"]["cost"].estimate == 3.0
    # DR: the model's 0.5 (cost 2) at every step, plus 5·(1 − 0.5) (cost 5·(3 − 2)) at step c
    assert est["dr"]["quality"].estimate == pytest.approx((4 * 0.5 + 5 * 0.5) / 4)
    assert est["dr"]["cost"].estimate == pytest.approx((4 * 2.0 + 5 * 1.0) / 4)
    for e in ope.ESTIMATORS:
        assert est[e]["value"].estimate == pytest.approx(
            est[e]["quality"].estimate - 0.5 * est[e]["cost"].estimate
        )


def test_dr_with_the_true_outcomes_as_model_is_exact_whatever_the_weights() -> None:
    truth = ope.DirectModel(
        quality=np.array([[1.0, 0.3], [0.0, 0.9], [0.2, 1.0], [1.0, 0.4]]),
        cost=np.array([[1.0, 3.0], [1.0, 3.0], [1.0, 3.0], [1.0, 3.0]]),
    )
    est = ope.evaluate(HAND, ALWAYS_1, truth, lam=0.0, resamples=50).intervals["dr"]["quality"]
    assert est.estimate == pytest.approx(np.mean([0.3, 0.9, 1.0, 0.4]))


def test_a_policy_against_itself_differs_by_exactly_zero_on_paired_resamples() -> None:
    cmp = ope.compare_two(HAND, ALWAYS_1, ALWAYS_1, GUESS, lam=1.0, resamples=200)
    for e in ope.ESTIMATORS:
        d = cmp.difference[e]["value"]
        assert (d.estimate, d.low, d.high) == (0.0, 0.0, 0.0)
    assert cmp.candidate.intervals["dr"]["value"].high > cmp.candidate.intervals["dr"]["value"].low


def test_the_bootstrap_resamples_whole_sessions_and_is_seeded() -> None:
    one_session = replace(HAND, session=np.array(["s"] * 4))
    est = ope.evaluate(one_session, ALWAYS_1, GUESS, lam=0.0, resamples=100).intervals["ips"]["quality"]
    assert est.low == est.high == est.estimate  # every resample draws the one session: no spread
    many = ope.LoggedSteps(
        session=np.arange(40).astype(str),
        action=np.tile(HAND.action, 10),
        propensity=np.tile(HAND.propensity, 10),
        quality=np.tile(HAND.quality, 10),
        cost=np.tile(HAND.cost, 10),
    )
    target, model = (
        np.tile(ALWAYS_1, (10, 1)),
        ope.DirectModel(np.tile(GUESS.quality, (10, 1)), np.tile(GUESS.cost, (10, 1))),
    )
    runs = [ope.evaluate(many, target, model, lam=0.0, resamples=100, seed=s) for s in (1, 1, 2)]
    assert runs[0] == runs[1] and runs[0] != runs[2]


def _skewed_log(n: int, seed: int) -> tuple[ope.LoggedSteps, np.ndarray, ope.DirectModel]:
    """Model 1 logged with propensity 0.05 and always right, model 0 always wrong; the target always
    picks model 1, so its IPS estimate rests on a few steps of weight 20: right-skewed."""
    rng = np.random.default_rng(seed)
    action = (rng.random(n) < 0.05).astype(int)
    logged = ope.LoggedSteps(
        session=np.arange(n).astype(str),
        action=action,
        propensity=np.where(action == 1, 0.05, 0.95),
        quality=action.astype(float),
        cost=np.ones(n),
    )
    zeros = np.zeros((n, 2))
    return logged, np.tile([0.0, 1.0], (n, 1)), ope.DirectModel(zeros, zeros)


def test_the_studentized_interval_reaches_further_on_the_heavy_side() -> None:
    logged, target, model = _skewed_log(200, seed=4)
    kinds = {
        kind: ope.evaluate(logged, target, model, lam=0.0, resamples=2000, interval=kind).intervals["ips"]
        for kind in ope.INTERVALS
    }
    t, p = kinds["studentized"]["quality"], kinds["percentile"]["quality"]
    assert t.estimate == p.estimate
    assert t.high - t.estimate > 1.1 * (p.high - p.estimate)  # skew: the upper side is the uncertain one
    assert (t.high - t.estimate) > (t.estimate - t.low)


def test_the_normal_interval_is_the_estimate_plus_minus_z_bootstrap_standard_errors() -> None:
    """Symmetric even on a skewed log: it ignores the resamples' skew (the `ope` module doc says why)."""
    logged, target, model = _skewed_log(200, seed=4)
    sampled, _ = ope._bootstrap(logged, {"t": target}, model, 0.0, resamples=2000, seed=0, interval="normal")
    draws = sampled["t"]["ips"]["quality"].draws
    interval = ope.evaluate(logged, target, model, lam=0.0, resamples=2000, interval="normal").intervals[
        "ips"
    ]
    q = interval["quality"]
    assert q.high - q.estimate == pytest.approx(q.estimate - q.low)
    assert q.high - q.estimate == pytest.approx(1.959964 * draws.std(ddof=1), rel=1e-5)
    percentile = ope.evaluate(logged, target, model, lam=0.0, resamples=2000, interval="percentile")
    p = percentile.intervals["ips"]["quality"]
    assert p.high - p.estimate > 1.1 * (p.estimate - p.low)  # the same draws are skewed


def test_on_symmetric_outcomes_the_two_interval_kinds_agree() -> None:
    rng = np.random.default_rng(0)
    n = 400
    logged = ope.LoggedSteps(
        session=np.arange(n).astype(str),
        action=np.zeros(n, dtype=int),
        propensity=np.ones(n),  # the target is the logging policy: every weight is 1
        quality=rng.normal(0.5, 0.1, n),
        cost=np.ones(n),
    )
    zeros = np.zeros((n, 1))
    est = {
        kind: ope.evaluate(
            logged, np.ones((n, 1)), ope.DirectModel(zeros, zeros), lam=0.0, resamples=2000, interval=kind
        ).intervals["ips"]["quality"]
        for kind in ope.INTERVALS
    }
    normal_half_width = 1.96 * logged.quality.std() / np.sqrt(n)
    for interval in est.values():
        assert interval.high - interval.estimate == pytest.approx(normal_half_width, rel=0.15)
        assert interval.estimate - interval.low == pytest.approx(normal_half_width, rel=0.15)


def test_an_unknown_interval_kind_is_refused_with_the_choices() -> None:
    with pytest.raises(ValueError, match="interval must be one of"):
        ope.evaluate(HAND, ALWAYS_1, GUESS, lam=0.0, interval="bca")


def test_mixed_probs_are_greedy_with_ties_to_the_first_model_plus_uniform_exploration() -> None:
    q = np.array([[0.2, 0.5, 0.5], [1.0, -np.inf, 0.0]])
    assert ope.mixed_probs(q).tolist() == [[0, 1, 0], [1, 0, 0]]
    assert ope.mixed_probs(q, beta=0.7) == pytest.approx(np.array([[0.1, 0.8, 0.1], [0.85, 0, 0.15]]))
    with pytest.raises(ValueError, match="allows no model"):
        ope.mixed_probs(np.array([[-np.inf, -np.inf]]))


def test_a_step_without_a_usable_propensity_is_refused() -> None:
    with pytest.raises(ValueError, match=r"propensities must be in \(0, 1\]"):
        replace(HAND, propensity=np.array([0.8, 0.0, 0.2, 0.8]))


# ------------------------------------------------------------------ the server's rows, with a fallback


def test_a_fallback_step_is_the_chosen_models_decision_with_the_outcome_the_call_got() -> None:
    from mcp_router.log_evaluation import logged_evaluation
    from mcp_router.logged_sessions import episodes_from_steps

    def row(step_id: int, chosen: str, served: str, outcome: float | None) -> dict[str, Any]:
        return {
            "step_id": step_id,
            "session_id": "s",
            "turn": step_id,
            "status": "ok",
            "chosen_model": chosen,
            "served_model": served,
            "propensity": 0.25,
            "cost_usd": 0.01,
            "history": [{"role": "user", "content": "q"}],
            "task": None,
            "outcome": outcome,
            "excluded": {"gone": "budget"},
        }

    rows = [row(0, "big", "small", None), row(1, "small", "small", 0.6)]  # big failed, small served
    data = logged_evaluation(
        episodes_from_steps(rows, ["big", "small", "gone"]), ["big", "small", "gone"], np.zeros((2, 3)), 0.01
    )
    assert data.logged.action.tolist() == [0, 1]  # the choice, not the model that served
    assert data.logged.propensity.tolist() == [0.25, 0.25]  # the choice's logged propensity
    assert data.logged.quality.tolist() == [0.6, 0.6]  # the session's outcome, whoever served
    assert data.logged.cost == pytest.approx([2.0, 1.0])  # remaining cost in units of c̄ = $0.01
    assert data.allowed.tolist() == [[True, True, False]] * 2  # excluded models stay excluded


# ------------------------------------------------------------------ known truth: LLMRouter replays

LAMBDA = 0.02
COVERAGE_BETA = 0.8  # the reference's stage-0 logging β
REPLAYS = 50


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from mcp_router.bench import ope_bench
    from mcp_router.bench.paths import data_dir

    try:
        data_dir()
    except FileNotFoundError:
        pytest.skip("shared data not found (set MCP_ROUTER_DATA)")
    return ope_bench.prepare(tmp_path_factory.mktemp("ope"))


@pytest.fixture(scope="module")
def replays(scenario: Any) -> dict[tuple[str, str, str], dict[str, Any]]:
    """50 independent logging replays (seeds 0-49) of the 381 test items through the server's β-mixed
    priors policy and the real store, each estimated by `eval --from-db`'s code. The target (a ridge
    checkpoint on 2,000 train items) differs from the logging policy, which exploits one model."""
    from mcp_router.bench import ope_bench

    served = ope.INTERVALS[0]  # the default interval kind
    run = ope_bench.coverage(
        scenario, logging="priors", beta=COVERAGE_BETA, replays=REPLAYS, lam=LAMBDA, intervals=(served,)
    )
    assert run["truth"]["candidate"]["value"] != pytest.approx(run["truth"]["baseline"]["value"], abs=0.01)
    return {(r["policy"], r["estimator"], r["metric"]): r for r in run["rows"]}


def test_dr_estimates_of_the_target_are_unbiased_over_50_replays(replays: Any) -> None:
    for policy in ("candidate", "baseline", "difference"):
        row = replays[(policy, "dr", "value")]
        assert abs(row["mean_error"]) <= 3 * row["sd_error"] / np.sqrt(REPLAYS), row


def test_dr_intervals_cover_the_true_replayed_value_in_at_least_90_percent_of_50_replays(
    replays: Any,
) -> None:
    assert replays[("candidate", "dr", "value")]["coverage"] >= 0.9


def test_eval_from_db_prints_the_table_and_writes_json(
    scenario: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from mcp_router.bench import ope_bench
    from mcp_router.cli import main

    config = tmp_path / "router.toml"
    config.write_text(ope_bench.pool_config(scenario.models, lam=LAMBDA, beta=COVERAGE_BETA))
    db = tmp_path / "r.db"
    ope_bench.replay(db, scenario.records, ope_bench.load_config(config), seed=0)
    out = tmp_path / "eval.json"
    args = [
        "eval",
        "--from-db",
        "--config",
        str(config),
        "--db",
        str(db),
        "--checkpoint",
        str(scenario.target),
    ]
    with pytest.raises(SystemExit) as done:
        main([*args, "--json", str(out), "--resamples", "200"])
    assert done.value.code == 0
    table = capsys.readouterr().out
    assert "381 sessions, 381 steps" in table and "vs the policy in force: prior" in table
    assert all(f"\n{e} " in table for e in ope.ESTIMATORS)
    report = json.loads(out.read_text())
    assert out.with_suffix(".txt").read_text() == table
    assert report["comparison"]["resamples"] == 200 and set(report["comparison"]["difference"]) == {
        "ips",
        "snips",
        "dr",
    }
    assert report["comparison"]["interval"] == "normal" and "95% normal bootstrap" in table
    with pytest.raises(SystemExit) as done:
        main([*args, "--json", str(out), "--resamples", "200", "--interval", "studentized"])
    assert done.value.code == 0 and "95% studentized bootstrap intervals" in capsys.readouterr().out
    t_report = json.loads(out.read_text())["comparison"]
    assert t_report["interval"] == "studentized"
    assert t_report["candidate"]["estimates"]["dr"]["value"]["estimate"] == pytest.approx(
        report["comparison"]["candidate"]["estimates"]["dr"]["value"]["estimate"]
    )  # same estimate, another interval around it
    assert (
        t_report["candidate"]["estimates"]["dr"]["value"]
        != report["comparison"]["candidate"]["estimates"]["dr"]["value"]
    )
    with pytest.raises(SystemExit) as refused:
        main([*args, "--plot", "x.png"])
    assert refused.value.code == 2 and "--plot go with --data only" in capsys.readouterr().err
    with pytest.raises(SystemExit) as both:
        main([*args, "--data", "x.jsonl"])
    assert both.value.code == 2  # argparse: --data and --from-db are either/or


# ------------------------------------------------------------------ the promotion gate, end to end


def _negated(fit: Callable[..., Any]) -> Callable[..., Any]:
    """`fit_estimator`, but the checkpoint's score head is negated: it prefers what it predicts worst."""
    from mcp_router.routing.mtrouter.checkpoint import Checkpoint
    from mcp_router.routing.mtrouter.ridge import RidgeEstimator

    def worse(*args: Any, **kwargs: Any) -> Any:
        good = fit(*args, **kwargs)
        flip = np.array([-1.0, 1.0])
        ridge = RidgeEstimator(
            good.ridge.coef * flip, good.ridge.intercept * flip, good.ridge.fitted, good.ridge.alpha
        )
        meta = {k: v for k, v in good.meta.items() if k != "checkpoint_id"}
        return Checkpoint(net=None, pool=good.pool, meta=meta, ridge=ridge)

    return worse


@pytest.mark.anyio
async def test_the_gate_promotes_a_better_checkpoint_and_rejects_a_deliberately_worse_one(
    scenario: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """1,200 LLMRouter train items (not the target's) logged under priors that favour the weakest model;
    train --from-db then (1) promotes a ridge checkpoint over those priors, (2) rejects a checkpoint
    whose score head is negated, against the promoted one, for its doubly robust value."""
    from mcp import Client

    from mcp_router.bench import ope_bench
    from mcp_router.model_training import train_from_db
    from mcp_router.routing.mtrouter import train
    from mcp_router.routing.mtrouter.checkpoint import Checkpoint
    from mcp_router.routing.mtrouter.data import read_records
    from mcp_router.serving.server import create_server
    from mcp_router.store import Store
    from mcp_router.store.model_log import ModelLog

    first = ope_bench.TARGET_ITEMS + ope_bench.PREVIOUS_ITEMS  # items neither checkpoint was trained on
    items = read_records(scenario.workdir / "llmrouter-train.jsonl")[first : first + 1200]
    config = tmp_path / "router.toml"
    priors = {"llama3-chatqa-1.5-8b": 0.9}  # the weakest model of the pool (mean score 0.17 on test)
    config.write_text(ope_bench.pool_config(scenario.models, lam=LAMBDA, beta=COVERAGE_BETA, priors=priors))
    loaded = ope_bench.load_config(config)
    db = tmp_path / "router.db"
    ope_bench.replay(db, items, loaded, seed=7)

    better = train_from_db(loaded, db, estimator="ridge", train_config=train.TrainConfig(seed=3))
    assert better["estimator"] == {"requested": "ridge", "chosen": "ridge"}
    assert better["promoted"] and better["gate"]["baseline"] == "prior", better["gate"]
    specs = loaded.config.model_pool()
    promoted = Checkpoint.load(Path(better["path"]))
    assert promoted.meta["train"]["seed"] == 3  # the training config given is the one used
    truth = ope_bench.true_values(items, loaded, promoted.with_pool(specs))
    assert truth["candidate"]["value"] > truth["baseline"]["value"] + 0.1  # it is better, in truth

    monkeypatch.setattr(train, "fit_estimator", _negated(train.fit_estimator))
    worse = train_from_db(loaded, db, estimator="ridge")
    assert not worse["promoted"] and not worse["gate"]["dr"]["passes"], worse["gate"]
    assert "doubly robust value is worse" in worse["gate"]["reason"]
    worse_truth = ope_bench.true_values(items, loaded, Checkpoint.load(Path(worse["path"])).with_pool(specs))
    assert worse_truth["candidate"]["value"] < truth["candidate"]["value"] - 0.1  # and this one worse
    store = Store(db)
    try:
        log = ModelLog(store)
        rejected = log.checkpoint(worse["checkpoint_id"])
        assert rejected["status"] == "rejected" and log.promoted()["checkpoint_id"] == better["checkpoint_id"]
        assert rejected["validation"]["gate"]["dr"]["difference"]["high"] < 0
    finally:
        store.close()

    async with Client(create_server(loaded, db), mode="auto", cache=None) as client:
        models = json.loads((await client.read_resource("router://models")).contents[0].text)
    estimate = models["checkpoint"]["estimate"]
    assert estimate["checkpoint_id"] == better["checkpoint_id"]
    assert estimate["doubly_robust"] == better["gate"]["dr"]


def test_the_interval_rule_never_looks_at_the_held_out_run_and_the_report_shows_its_choice() -> None:
    from mcp_router.bench import ope_bench

    def run(logging: str, beta: float, coverage: dict[str, float]) -> dict[str, Any]:
        rows = [
            {
                "interval": kind,
                "policy": policy,
                "estimator": estimator,
                "metric": "value",
                "coverage": coverage[kind] if estimator == "dr" else 0.0,
                "mean_error": 0.0,
                "mean_width": 0.1,
            }
            for kind in ope.INTERVALS
            for policy in ope_bench.POLICIES
            for estimator in ope.ESTIMATORS
        ]
        truth = {"candidate": {"value": 0.5}, "baseline": {"value": 0.4}}
        return {"logging": logging, "beta": beta, "rows": rows, "truth": truth, "seconds": 1.0}

    held_out = run(*ope_bench.HELD_OUT, {"normal": 0.5, "percentile": 0.2, "studentized": 0.95})
    others = [run("priors", 0.5, {"normal": 0.85, "percentile": 0.94, "studentized": 0.80})]
    choice = ope_bench.choose_interval([held_out, *others])  # the held-out run alone would pick studentized
    assert choice["chosen"] == "percentile" and choice["held_out"] == list(ope_bench.HELD_OUT)
    assert choice["mean_gap_to_level"]["studentized"] == pytest.approx(0.15)
    report = {"items": 3, "lambda": 0.02, "replays": 1, "resamples": 10, "runs": [held_out, *others]}
    table = ope_bench.format_report({**report, "interval_choice": choice})
    assert "-> percentile" in table and table.count("studentized") >= 3
