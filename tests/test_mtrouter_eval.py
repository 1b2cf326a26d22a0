"""Offline evaluation: policy scoring, frontiers and ratios on hand-made outcomes; knn and ridge
estimators; and train -> evaluate -> ablation end to end on small synthetic data with the hashing
embedder (the real MiniLM runs are in benchmarks/, not here)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mcp_router.routing.mtrouter import evaluate as ev
from mcp_router.routing.mtrouter.checkpoint import Checkpoint
from mcp_router.routing.mtrouter.data import Outcome, RoutingRecord, write_records
from mcp_router.routing.mtrouter.offline import (
    cross_validate_files,
    evaluate_files,
    last_message_only,
    mtbench_ablation,
    train_from_files,
    training_set,
)
from mcp_router.routing.mtrouter.train import TrainConfig


def point(cost: float, quality: float, lam: float | None = None) -> ev.PolicyResult:
    return ev.PolicyResult(name=f"p@{cost}", quality=quality, cost_usd=cost, lam=lam, family="mtrouter")


# ------------------------------------------------------------------ policies on hand-made outcomes

TRUTH = ev.OutcomeMatrix(
    models=("cheap", "strong"),
    score=np.array([[1.0, 1.0], [0.0, 1.0], [1.0, 0.0]]),
    cost=np.array([[1.0, 10.0], [1.0, 10.0], [1.0, 10.0]]),
)
MEANS = {"cheap": {"score": 0.6, "cost_usd": 1.0}, "strong": {"score": 0.8, "cost_usd": 10.0}}


def test_policies_on_hand_checked_outcomes() -> None:
    perfect = ev.Estimates(TRUTH.score, TRUTH.cost / 5.5)
    report = ev.evaluate_policies(TRUTH, {"mtrouter": perfect}, MEANS, lambdas=(0.0, 10.0))
    by_name = {p["name"]: p for p in report["policies"]}
    # oracle: record 0 is a tie, so the cheaper model; records 1 and 2 have one right answer
    assert (by_name["oracle"]["quality"], by_name["oracle"]["cost_usd"]) == (1.0, 12.0)
    # λ = 0: greedy on score, ties to the first model in pool order -> the oracle's picks
    assert (by_name["mtrouter@0"]["quality"], by_name["mtrouter@0"]["cost_usd"]) == (1.0, 12.0)
    # λ = 10: cost dominates -> always cheap
    assert by_name["mtrouter@10"]["shares"] == {"cheap": 1.0} and by_name["mtrouter@10"]["cost_usd"] == 3.0
    assert report["best_single"] == {"model": "strong", "quality": pytest.approx(2 / 3), "cost_usd": 30.0}
    assert report["cheapest_model"] == "cheap"
    assert by_name["cheapest"]["cost_usd"] == 3.0 and by_name["strong"]["quality"] == pytest.approx(2 / 3)
    # the cheapest mtrouter point with quality >= 2/3 is λ = 10 (quality 2/3, cost 3): 3 / 30
    assert report["cost_ratio_at_best_single_quality"] == pytest.approx(0.1)
    assert report["random"]["expected_quality"] == pytest.approx(4 / 6)
    assert report["random"]["expected_cost_usd"] == pytest.approx(3 * 5.5)


def test_outcome_matrix_requires_every_model_and_counts_null_costs() -> None:
    records = [
        RoutingRecord(
            "r1", "s", 1, ({"role": "user", "content": "x"},), {"a": Outcome(1.0), "b": Outcome(0.5, 2.0)}
        )
    ]
    truth = ev.outcome_matrix(records, ["a", "b"])
    assert truth.missing_costs == 1 and truth.cost.tolist() == [[0.0, 2.0]]
    with pytest.raises(ValueError, match="record 'r1' has no outcome for \\['c'\\]"):
        ev.outcome_matrix(records, ["a", "c"])


def test_frontier_interpolation_and_comparison() -> None:
    ours = [point(1, 0.5), point(3, 0.7), point(2, 0.4), point(5, 0.9)]
    assert [(p.cost_usd, p.quality) for p in ev.pareto(ours)] == [(1, 0.5), (3, 0.7), (5, 0.9)]
    assert ev.quality_at_cost(ours, 2.0) == pytest.approx(0.6)
    assert ev.quality_at_cost(ours, 5.0) == pytest.approx(0.9)
    assert ev.quality_at_cost(ours, 50.0) == pytest.approx(0.9)  # flat beyond the last point
    assert ev.quality_at_cost(ours, 0.5) is None  # cheaper than anything we can do
    cmp = ev.compare_frontiers(ours, [point(2, 0.55), point(0.5, 0.3)])
    assert cmp["at_or_above"] and cmp["compared"] == 1 and cmp["below_our_range"] == 1
    assert cmp["min_margin"] == pytest.approx(0.05) and cmp["share_at_or_above"] == 1.0
    assert not ev.compare_frontiers(ours, [point(4, 0.85)])["at_or_above"]  # ours is 0.8 at cost 4
    assert ev.cost_ratio_at_quality(ours, 0.7, 10.0) == pytest.approx(0.3)
    assert ev.cost_ratio_at_quality(ours, 0.95, 10.0) is None


def test_margin_interval_brackets_the_margin_and_resolves_a_clear_winner() -> None:
    rng = np.random.default_rng(0)
    n = 400
    # model 0 cheap, right on 60 % of records; model 1 costs 10x, right on 80 %
    score = np.stack([rng.random(n) < 0.6, rng.random(n) < 0.8], axis=1).astype(float)
    truth = ev.OutcomeMatrix(("cheap", "strong"), score, np.tile([1.0, 10.0], (n, 1)))
    units = np.tile([0.1, 1.0], (n, 1))
    informed = ev.Estimates(score + 0.01 * rng.random((n, 2)), units)  # knows each record's outcome
    blind = ev.Estimates(np.tile([0.6, 0.8], (n, 1)) + 0.01 * rng.random((n, 2)), units)
    lambdas = ev.DEFAULT_LAMBDAS
    same = ev.margin_interval(truth, blind, blind, lambdas, resamples=200)
    assert same["ci95"] == [0.0, 0.0] and same["share_at_or_above"] == 1.0
    better = ev.margin_interval(truth, informed, blind, lambdas, resamples=200)
    point = ev.compare_frontiers(
        ev.sweep("a", informed, truth, lambdas), ev.sweep("b", blind, truth, lambdas)
    )
    low, high = better["ci95"]
    assert 0 < low <= point["mean_margin"] <= high and better["share_at_or_above"] == 1.0
    worse = ev.margin_interval(truth, blind, informed, lambdas, resamples=200)
    assert worse["ci95"][1] < 0 and worse["share_at_or_above"] == 0.0


def test_knn_and_ridge_estimators() -> None:
    rng = np.random.default_rng(0)
    train_zx = rng.standard_normal((200, 8))
    weights = rng.standard_normal((8, 2))
    train = ev.OutcomeMatrix(("a", "b"), train_zx @ weights, np.abs(train_zx[:, :2]))
    knn = ev.knn_estimates(train_zx, train, train_zx[:3] * 2.0, k=1, c_bar=2.0)  # cosine: scale-free
    np.testing.assert_allclose(knn.score, train.score[:3])
    np.testing.assert_allclose(knn.cost_units, train.cost[:3] / 2.0)
    test_zx = rng.standard_normal((5, 8))
    ridge = ev.ridge_estimates(train_zx, train, test_zx, alpha=1e-6, c_bar=1.0)
    np.testing.assert_allclose(ridge.score, test_zx @ weights, atol=1e-4)
    chosen = ev.select_baselines(train_zx, train, np.arange(20), c_bar=1.0)
    assert chosen["linear"]["alpha"] == min(ev.RIDGE_ALPHAS)  # noiseless linear data: least shrinkage
    assert chosen["knn"]["k"] in ev.KNN_KS


# ------------------------------------------------------------------ end to end on synthetic data

CHEAP, STRONG = "cheap-model", "strong-model"
MODELS = {
    CHEAP: {"input_cost_per_token": 1e-7, "output_cost_per_token": 1e-7, "context_window": 8192},
    STRONG: {"input_cost_per_token": 1e-6, "output_cost_per_token": 1e-6, "context_window": 8192},
}
# one member: these tests are about history and the ablation, not the bag
FAST = TrainConfig(epochs=40, patience=8, lr=3e-3, members=1)


def synthetic_single_turn(n: int, seed: int) -> list[RoutingRecord]:
    """Arithmetic questions: both models are right; poetry: only the strong one. Costs 1e-4 vs 1e-3."""
    rng = np.random.default_rng(seed)
    records = []
    for i in range(n):
        poetry = bool(rng.integers(2))
        text = (
            f"write a short poem about the {rng.choice(['sea', 'moon', 'city', 'rain'])} in {i % 7 + 3} lines"
            if poetry
            else f"compute the sum of {rng.integers(100)} and {rng.integers(100)} then explain"
        )
        outcomes = {CHEAP: Outcome(0.0 if poetry else 1.0, 1e-4), STRONG: Outcome(1.0, 1e-3)}
        records.append(
            RoutingRecord(f"q{seed}-{i}", f"q{seed}-{i}", 1, ({"role": "user", "content": text},), outcomes)
        )
    return records


@pytest.fixture
def files(tmp_path):
    write_records(tmp_path / "train.jsonl", synthetic_single_turn(300, 1))
    write_records(tmp_path / "test.jsonl", synthetic_single_turn(100, 2))
    (tmp_path / "models.json").write_text(json.dumps(MODELS))
    return tmp_path


def test_training_rows_are_full_information(files) -> None:
    records = synthetic_single_turn(4, 3)
    truth = ev.outcome_matrix(records, [CHEAP, STRONG])
    rows, c_bar = training_set(records, np.eye(4, dtype=np.float32), truth)
    assert c_bar == pytest.approx(5.5e-4)
    assert rows.model_idx.tolist() == [0, 1] * 4 and rows.episode.tolist()[:2] == [records[0].session] * 2
    np.testing.assert_allclose(rows.score, truth.score.reshape(-1))
    np.testing.assert_allclose(rows.cost, np.log1p(truth.cost.reshape(-1) / c_bar))
    np.testing.assert_array_equal(rows.zx[2], np.eye(4)[1])


def test_train_then_evaluate_routes_the_easy_questions_to_the_cheap_model(files) -> None:
    cache = files / "emb.sqlite"
    summary = train_from_files(
        files / "train.jsonl",
        files / "models.json",
        files / "ck.pt",
        embedder="hashing",
        cache=cache,
        config=FAST,
    )
    assert summary["rows"] == 600 and summary["models"] == [CHEAP, STRONG]
    meta = Checkpoint.load(files / "ck.pt").meta["offline"]
    assert meta["train_data"] == str((files / "train.jsonl").resolve())
    assert meta["train_means"][STRONG]["score"] == 1.0

    with pytest.raises(ValueError, match="would overwrite the checkpoint's sidecar"):
        evaluate_files(
            files / "test.jsonl", files / "models.json", files / "ck.pt", json_out=files / "ck.json"
        )
    report = evaluate_files(
        files / "test.jsonl",
        files / "models.json",
        files / "ck.pt",
        json_out=files / "out" / "eval.json",
        plot=files / "out" / "eval.png",
        cache=cache,
    )
    assert report["best_single"]["model"] == STRONG and report["best_single"]["quality"] == 1.0
    # about half the questions are arithmetic: routing them to the 10x cheaper model costs ~0.55
    assert report["cost_ratio_at_best_single_quality"] < 0.7
    oracle = next(p for p in report["policies"] if p["name"] == "oracle")
    assert oracle["quality"] == 1.0
    assert {p["family"] for p in report["policies"]} == {"mtrouter", "knn", "linear", "single", "reference"}
    assert json.loads((files / "out" / "eval.json").read_text())["records"] == 100
    assert "cost_ratio_at_best_single_quality: mtrouter" in (files / "out" / "eval.txt").read_text()
    assert (files / "out" / "eval.png").stat().st_size > 10_000


def test_cross_validation_scores_every_record_out_of_fold(files) -> None:
    report = cross_validate_files(
        files / "train.jsonl",
        files / "models.json",
        folds=3,
        embedder="hashing",
        cache=files / "emb.sqlite",
        config=FAST,
        json_out=files / "cv.json",
    )
    assert report["records"] == 300 and report["best_single"]["model"] == STRONG
    assert report["cost_ratio_at_best_single_quality"] < 0.7
    assert "3-fold cross-validation" in (files / "cv.txt").read_text()


def two_turn_sessions(n: int) -> list[RoutingRecord]:
    """Turn 2 always says the same thing; whether the cheap model can answer it depends on the topic of
    turn 1, which only the full history shows."""
    rng = np.random.default_rng(7)
    records = []
    for i in range(n):
        poetry = i % 2 == 0
        q1 = (
            f"write a poem about {rng.choice(['love', 'autumn', 'rivers'])} with rhyme"
            if poetry
            else f"compute {rng.integers(50)} times {rng.integers(50)} exactly"
        )
        turn1 = ({"role": "user", "content": q1},)
        turn2 = (
            *turn1,
            {"role": "assistant", "content": "done"},
            {"role": "user", "content": "now do it again"},
        )
        easy = {CHEAP: Outcome(1.0, 1e-4), STRONG: Outcome(1.0, 1e-3)}
        hard = {CHEAP: Outcome(0.0, 1e-4), STRONG: Outcome(1.0, 1e-3)}
        records.append(RoutingRecord(f"s{i}-t1", f"s{i}", 1, turn1, easy))
        records.append(RoutingRecord(f"s{i}-t2", f"s{i}", 2, turn2, hard if poetry else easy))
    return records


def test_last_message_only_keeps_the_last_user_message() -> None:
    record = two_turn_sessions(1)[1]
    assert last_message_only(record).messages == ({"role": "user", "content": "now do it again"},)


def test_ablation_shows_the_value_of_history_when_the_data_has_it(tmp_path) -> None:
    write_records(tmp_path / "mt.jsonl", two_turn_sessions(40))
    (tmp_path / "models.json").write_text(json.dumps(MODELS))
    report = mtbench_ablation(
        tmp_path / "mt.jsonl",
        tmp_path / "models.json",
        folds=4,
        repeats=1,
        embedder="hashing",
        cache=tmp_path / "emb.sqlite",
        config=FAST,
        json_out=tmp_path / "ablation.json",
    )
    full, last = report["summary"]["full"], report["summary"]["last"]
    # with the history half the turn-2 decisions go to the cheap model at no loss (ratio ~0.55);
    # without it every turn 2 looks the same, so best-single quality needs all-strong (ratio 1)
    assert full["cost_ratio_at_best_single_quality"][0] < 0.7
    assert last["cost_ratio_at_best_single_quality"][0] in (None, pytest.approx(1.0))
    assert report["full_vs_last_mtrouter"]["at_or_above_per_repeat"] == [True]
    assert report["runs"]["full"][0]["records"] == 40
    assert "full-history frontier minus last-message frontier" in (tmp_path / "ablation.txt").read_text()
