"""The staged estimator: the ridge of stage 1 on data with a known answer, `auto` choosing by cross-
validation, ridge and ensemble checkpoints saved, loaded and served like MLP ones, the training flags
of `mcp-router train`, and the seeds of `eval` and `cv`."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from mcp_router.cli import build_parser, main
from mcp_router.offline_cli import _schedules, training_config
from mcp_router.routing.mtrouter import ridge
from mcp_router.routing.mtrouter.checkpoint import Checkpoint, value
from mcp_router.routing.mtrouter.data import Outcome, RoutingRecord, write_records
from mcp_router.routing.mtrouter.embed import HashingEmbedder, HistoryEncoder
from mcp_router.routing.mtrouter.offline import (
    _map_in_processes,
    cross_validate_files,
    evaluate_files,
    train_from_files,
)
from mcp_router.routing.mtrouter.pool import ModelSpec
from mcp_router.routing.mtrouter.router import ModelParams, ModelRouter
from mcp_router.routing.mtrouter.train import (
    TrainConfig,
    TrainingSet,
    fit_estimator,
    one_standard_error_choice,
)

CHEAP = ModelSpec("cheap", 1e-7, 1e-7, context_window=8192, quality_prior=0.5)
STRONG = ModelSpec("strong", 1e-6, 1e-6, context_window=8192, quality_prior=0.9)
POOL = [CHEAP, STRONG]
QUICK = TrainConfig(epochs=10, lr=3e-3)


# ------------------------------------------------------------------ ridge on known answers


def test_solve_path_recovers_a_linear_map_and_weights_count_as_repeated_rows() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 5))
    w = np.array([1.0, -2.0, 0.5, 0.0, 3.0])
    y = np.stack([x @ w + 3.0, -(x @ w)], axis=1)
    (near_ols,) = ridge.solve_path(x, y, [1e-9])
    np.testing.assert_allclose(near_ols.coef[:, 0], w, atol=1e-6)
    np.testing.assert_allclose(near_ols.intercept, [3.0, 0.0], atol=1e-6)

    noisy = y[:, 0] + rng.normal(size=200)
    counts = rng.integers(1, 4, size=200)
    (weighted,) = ridge.solve_path(x, noisy, [5.0], weight=counts.astype(float))
    (repeated,) = ridge.solve_path(np.repeat(x, counts, axis=0), np.repeat(noisy, counts), [5.0])
    np.testing.assert_allclose(weighted.coef, repeated.coef, atol=1e-9)
    np.testing.assert_allclose(weighted.intercept, repeated.intercept, atol=1e-9)

    (flat,) = ridge.solve_path(x, noisy, [1e12], weight=counts.astype(float))  # all shrinkage
    np.testing.assert_allclose(flat.coef, 0.0, atol=1e-8)
    np.testing.assert_allclose(flat.intercept, np.average(noisy, weights=counts), atol=1e-6)
    with pytest.raises(ValueError, match="α must be > 0"):
        ridge.solve_path(x, noisy, [0.0])


def test_per_model_ridge_fits_each_model_on_its_own_rows_and_leaves_unseen_models_unfitted() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(300, 4))
    model_idx = rng.integers(0, 2, size=300)  # model 2 is never logged
    w0, w1 = np.array([1.0, 0.0, 0.0, 2.0]), np.array([0.0, -1.0, 1.0, 0.0])
    score = np.where(model_idx == 0, x @ w0, x @ w1 + 1.0)
    cost = np.where(model_idx == 0, 0.1, 0.7)
    (est,) = ridge.fit_path(x, model_idx, score, cost, np.ones(300), n_models=3, alphas=[1e-9])
    assert est.fitted.tolist() == [True, True, False]
    probe = rng.normal(size=(7, 4))
    s, c = est.predict(probe)
    np.testing.assert_allclose(s[:, 0], probe @ w0, atol=1e-6)
    np.testing.assert_allclose(s[:, 1], probe @ w1 + 1.0, atol=1e-6)
    np.testing.assert_allclose(c[:, :2], [[0.1, 0.7]] * 7, atol=1e-6)
    assert np.isnan(s[:, 2]).all()


def linear_rows(n: int, seed: int = 0, dim: int = 6) -> TrainingSet:
    """Two models, noise-free linear scores: the smallest α validates best."""
    rng = np.random.default_rng(seed)
    zx = rng.normal(size=(n, dim)).astype(np.float32)
    model_idx = np.tile([0, 1], n // 2)
    score = np.where(model_idx == 0, zx[:, 0], 1.0 - zx[:, 1])
    return TrainingSet(
        zx=zx,
        model_idx=model_idx,
        score=score,
        cost=np.where(model_idx == 0, 0.1, 1.0),
        weight=np.ones(n),
        episode=np.array([f"e{i // 2}" for i in range(n)]),
    )


def test_auto_serves_the_ridge_while_data_is_below_the_mlp_stage() -> None:
    ckpt = fit_estimator(linear_rows(400), POOL, encoder_id="t", c_bar=1.0, config=QUICK)
    assert ckpt.estimator == "ridge" and ckpt.net is None
    assert ckpt.meta["selection"]["chosen"] == "ridge"
    assert "stage 2 needs 2000" in ckpt.meta["selection"]["stage_rule"]
    assert ckpt.meta["ridge_fit"]["alpha"] == min(ridge.ALPHAS)  # noise-free: least shrinkage wins
    s, _ = ckpt.predict(np.eye(6, dtype=np.float32), ["cheap", "strong"])
    np.testing.assert_allclose(s[:, 0], np.eye(6)[:, 0], atol=0.05)


def xor_rows(n: int) -> TrainingSet:
    """The cheap model is right exactly when the first two coordinates agree in sign: no linear
    function of z_x separates that, a small MLP does."""
    rng = np.random.default_rng(3)
    zx = rng.choice([-1.0, 1.0], size=(n, 4)).astype(np.float32)
    model_idx = np.tile([0, 1], n // 2)
    agree = (zx[:, 0] * zx[:, 1] > 0).astype(float)
    return TrainingSet(
        zx=zx,
        model_idx=model_idx,
        score=np.where(model_idx == 0, agree, 0.5),
        cost=np.where(model_idx == 0, 0.1, 1.0),
        weight=np.ones(n),
        episode=np.array([f"e{i // 2}" for i in range(n)]),
    )


def test_auto_picks_by_cross_validation_and_the_mlp_wins_where_the_ridge_cannot_fit() -> None:
    ckpt = fit_estimator(xor_rows(2400), POOL, encoder_id="t", c_bar=1.0, config=QUICK)
    selection = ckpt.meta["selection"]
    assert selection["folds"] == 5 and set(selection["merit"]) == {"ridge", "mlp", "ensemble"}
    assert all(len(v) == 5 for v in selection["merit_per_fold"].values())
    merit, error = selection["merit"], selection["standard_error_vs_best"]
    assert merit["mlp"] - merit["ridge"] > error["ridge"]  # the ridge cannot fit XOR: clearly worse
    assert selection["chosen"] != "ridge"
    assert ckpt.estimator == selection["chosen"] and ckpt.net is not None


def test_auto_keeps_the_less_flexible_kind_unless_the_better_mean_is_beyond_one_standard_error() -> None:
    folds = {"ridge": [0.60, 0.62, 0.58], "ensemble": [0.61, 0.63, 0.59], "mlp": [0.613, 0.622, 0.60]}
    kind, why = one_standard_error_choice({k: np.array(v) for k, v in folds.items()})
    # mlp has the best mean (0.6117) but beats the ensemble (0.61) by less than their paired spread
    assert why["best_mean"] == "mlp" and kind == "ensemble"
    assert why["standard_error_vs_best"]["mlp"] == 0.0
    # the ensemble is better than the ridge on every fold by 0.01: zero spread, so it is beyond one error
    steady = {"ridge": [0.60, 0.62, 0.58], "ensemble": [0.61, 0.63, 0.59], "mlp": [0.5, 0.5, 0.5]}
    assert one_standard_error_choice({k: np.array(v) for k, v in steady.items()})[0] == "ensemble"
    # a tie of means goes to the least flexible kind
    tie = {k: np.array([0.5, 0.6]) for k in ("ridge", "ensemble", "mlp")}
    assert one_standard_error_choice(tie)[0] == "ridge"
    # a ridge within one error of the best is kept, even when a flexible kind has the best mean
    noisy = {"ridge": [0.60, 0.64, 0.56], "ensemble": [0.62, 0.61, 0.60], "mlp": [0.63, 0.60, 0.59]}
    kind, why = one_standard_error_choice({k: np.array(v) for k, v in noisy.items()})
    assert why["best_mean"] == "ensemble" and kind == "ridge"


def test_auto_follows_the_callers_criterion_and_an_ensemble_averages_its_parts() -> None:
    data = xor_rows(2400)

    def prefer_ensemble(predictions, folds):
        assert all(p.score.shape == (len(data), 2) for p in predictions.values())
        assert len(folds) == 2 and sum(len(f) for f in folds) == len(data)
        return {"ridge": np.array([0.1, 0.1]), "mlp": np.array([0.2, 0.2]), "ensemble": np.array([0.3, 0.3])}

    ckpt = fit_estimator(
        data, POOL, encoder_id="t", c_bar=1.0, config=QUICK, folds=2, criterion=prefer_ensemble
    )
    assert ckpt.estimator == "ensemble" and ckpt.meta["selection"]["folds"] == 2
    zx = data.zx[:16]
    both_s, both_c = ckpt.predict(zx)
    mlp_s, mlp_c = Checkpoint(net=ckpt.net, pool=ckpt.pool, meta=ckpt.meta).predict(zx)
    ridge_s, ridge_c = Checkpoint(net=None, pool=ckpt.pool, meta=ckpt.meta, ridge=ckpt.ridge).predict(zx)
    np.testing.assert_allclose(both_s, (mlp_s + ridge_s) / 2, atol=1e-6)
    np.testing.assert_allclose(both_c, (mlp_c + ridge_c) / 2, atol=1e-6)
    with pytest.raises(ValueError, match="estimator must be one of"):
        fit_estimator(data, POOL, estimator="forest", encoder_id="t", c_bar=1.0)


# ------------------------------------------------------------------ checkpoints and serving


def routing_rows(encoder: HistoryEncoder) -> tuple[TrainingSet, list[str]]:
    """Arithmetic: both models right; poems: only the strong one. Costs 1e-4 vs 1e-3, c̄ = 5.5e-4."""
    rng = np.random.default_rng(5)
    texts = [
        f"write a poem about the {rng.choice(['sea', 'moon', 'rain'])}"
        if i % 2
        else f"compute {rng.integers(99)} plus {rng.integers(99)}"
        for i in range(200)
    ]
    zx = encoder.encode([[{"role": "user", "content": t}] for t in texts])
    poem = np.array([i % 2 == 1 for i in range(200)])
    c_bar = 5.5e-4
    return (
        TrainingSet(
            zx=np.repeat(zx, 2, axis=0),
            model_idx=np.tile([0, 1], 200),
            score=np.stack([np.where(poem, 0.0, 1.0), np.ones(200)], axis=1).ravel(),
            cost=np.log1p(np.tile([1e-4, 1e-3], 200) / c_bar),
            weight=np.ones(400),
            episode=np.repeat([f"q{i}" for i in range(200)], 2),
        ),
        texts,
    )


def test_a_ridge_checkpoint_is_saved_loaded_and_served_like_an_mlp_one(tmp_path: Path) -> None:
    encoder = HistoryEncoder(HashingEmbedder(), packing="split")
    data, _ = routing_rows(encoder)
    ckpt = fit_estimator(data, POOL, estimator="ridge", encoder_id=encoder.encoder_id, c_bar=5.5e-4)
    ckpt.save(tmp_path / "ridge.pt")
    sidecar = json.loads((tmp_path / "ridge.json").read_text())
    assert sidecar["estimator"] == "ridge" and sidecar["format_version"] == 2 and "net" not in sidecar
    loaded = Checkpoint.load(tmp_path / "ridge.pt")
    assert loaded.estimator == "ridge" and loaded.checkpoint_id == ckpt.checkpoint_id
    np.testing.assert_allclose(loaded.predict(data.zx[:6])[0], ckpt.predict(data.zx[:6])[0])

    row = {"checkpoint_id": loaded.checkpoint_id, "path": str(tmp_path / "ridge.pt")}
    router = ModelRouter(POOL, ModelParams(embedder="hashing", lam=0.3, beta=1.0), promoted=lambda: row)
    router.refresh()
    assert router.checkpoint_id == ckpt.checkpoint_id
    picks = {}
    for text in ("compute 12 plus 30", "write a poem about the moon"):
        messages = [{"role": "user", "content": text}]
        decision = router.decide(messages, max_tokens=64, remaining_usd=None)
        score, cost = loaded.predict(encoder.encode([messages]), ["cheap", "strong"])
        expected = value(score, cost, 0.3)[0]
        assert decision.stage == "checkpoint" and decision.checkpoint_id == ckpt.checkpoint_id
        assert decision.q_values == pytest.approx({"cheap": expected[0], "strong": expected[1]}, abs=1e-5)
        picks[text] = decision.model
    assert picks == {"compute 12 plus 30": "cheap", "write a poem about the moon": "strong"}


def test_format_1_mlp_checkpoints_still_load_and_unknown_versions_are_refused(tmp_path: Path) -> None:
    encoder = HistoryEncoder(HashingEmbedder(), packing="split")
    data, _ = routing_rows(encoder)
    cfg = TrainConfig(epochs=2)
    ckpt = fit_estimator(data, POOL, estimator="mlp", encoder_id=encoder.encoder_id, c_bar=1.0, config=cfg)
    ckpt.save(tmp_path / "old.pt")
    side = tmp_path / "old.json"
    meta = json.loads(side.read_text())
    meta["format_version"] = 1  # as written before the ridge existed: no "estimator" key
    del meta["estimator"]
    side.write_text(json.dumps(meta))
    old = Checkpoint.load(tmp_path / "old.pt")
    assert old.estimator == "mlp" and old.checkpoint_id == ckpt.checkpoint_id and old.ridge is None
    meta["format_version"] = 3
    side.write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="format version 3, this code reads"):
        Checkpoint.load(tmp_path / "old.pt")


def test_a_model_added_to_the_pool_has_no_ridge_estimate_but_the_ensemble_keeps_the_mlp(
    tmp_path: Path,
) -> None:
    encoder = HistoryEncoder(HashingEmbedder(), packing="split")
    data, _ = routing_rows(encoder)
    cfg = TrainConfig(epochs=2)
    ens = fit_estimator(
        data, POOL, estimator="ensemble", encoder_id=encoder.encoder_id, c_bar=1.0, config=cfg
    )
    ens.save(tmp_path / "ens.pt")
    ens = Checkpoint.load(tmp_path / "ens.pt")
    stage1 = Checkpoint(net=None, pool=ens.pool, meta=dict(ens.meta), ridge=ens.ridge)
    newcomer = ModelSpec("newcomer", 5e-7, 5e-7, context_window=8192)
    names = ["cheap", "strong", "newcomer"]
    grown_ridge = stage1.with_pool([*POOL, newcomer])
    grown_ens = ens.with_pool([*POOL, newcomer])
    zx = data.zx[:4]
    s_ridge, _ = grown_ridge.predict(zx, names)
    s_ens, _ = grown_ens.predict(zx, names)
    s_mlp, _ = Checkpoint(net=grown_ens.net, pool=grown_ens.pool, meta=grown_ens.meta).predict(zx, names)
    assert np.isneginf(s_ridge[:, 2]).all() and np.isfinite(s_ridge[:, :2]).all()
    np.testing.assert_allclose(s_ens[:, 2], s_mlp[:, 2], atol=1e-6)
    np.testing.assert_allclose(s_ens[:, :2], ens.predict(zx)[0], atol=1e-6)


# ------------------------------------------------------------------ command line


def test_every_training_config_field_is_a_train_flag() -> None:
    args = build_parser().parse_args(["train", "--data", "f.jsonl"])
    assert training_config(args) == TrainConfig() and args.estimator == "auto"
    flags = (
        "--lr 0.01 --weight-decay 0 --batch-size 32 --epochs 12 --patience 2 --val-fraction 0.2 "
        "--residual-weight 0.001 --kappa 0.5 --min-lr 0.001 --grad-clip 2 --seed 7 --estimator ridge"
    )
    args = build_parser().parse_args(["train", "--from-db", *flags.split(" ")])
    assert args.estimator == "ridge"
    assert training_config(args) == TrainConfig(
        lr=0.01,
        weight_decay=0.0,
        batch_size=32,
        epochs=12,
        patience=2,
        val_fraction=0.2,
        residual_weight=0.001,
        kappa=0.5,
        min_lr=0.001,
        grad_clip=2.0,
        seed=7,
    )


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--lr", "0"], "lr must be > 0, got 0.0"),
        (["--val-fraction", "1"], "val_fraction must be in [0, 1), got 1.0"),
        (["--epochs", "0", "--batch-size", "-3"], "batch_size must be a whole number >= 1, got -3; epochs"),
        (["--lr", "0.001", "--min-lr", "0.01"], "min_lr must be in [0, lr], got 0.01"),
        (["--epochs", "2.5"], "argument --epochs: invalid int value: '2.5'"),
        (["--estimator", "forest"], "argument --estimator: invalid choice: 'forest'"),
    ],
)
def test_bad_training_flags_are_rejected_with_what_to_change(
    flags: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["train", "--data", "f.jsonl", *flags])
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err


def test_cv_schedules_are_overrides_of_the_training_flags() -> None:
    base = TrainConfig(lr=0.002)
    assert _schedules([], base) == {"mlp": base}
    got = _schedules(["e4:epochs=4,val_fraction=0.1", "ref:epochs=100"], base)
    assert got == {
        "mlp[e4]": TrainConfig(lr=0.002, epochs=4, val_fraction=0.1),
        "mlp[ref]": TrainConfig(lr=0.002, epochs=100),
    }
    with pytest.raises(ValueError, match="FIELD one of"):
        _schedules(["x:speed=3"], base)
    with pytest.raises(ValueError, match="epochs needs a int"):
        _schedules(["x:epochs=fast"], base)


# ------------------------------------------------------------------ seeds in eval and cv


def records(n: int, seed: int) -> list[RoutingRecord]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        poem = bool(rng.integers(2))
        text = f"write a poem about the {rng.choice(['sea', 'rain'])}" if poem else f"compute {i} plus 3"
        outcomes = {"cheap": Outcome(0.0 if poem else 1.0, 1e-4), "strong": Outcome(1.0, 1e-3)}
        out.append(
            RoutingRecord(f"r{seed}-{i}", f"r{seed}-{i}", 1, ({"role": "user", "content": text},), outcomes)
        )
    return out


@pytest.fixture
def files(tmp_path: Path) -> Path:
    write_records(tmp_path / "train.jsonl", records(200, 1))
    write_records(tmp_path / "test.jsonl", records(60, 2))
    models = {
        "cheap": {"input_cost_per_token": 1e-7, "output_cost_per_token": 1e-7, "context_window": 8192},
        "strong": {"input_cost_per_token": 1e-6, "output_cost_per_token": 1e-6, "context_window": 8192},
    }
    (tmp_path / "models.json").write_text(json.dumps(models))
    return tmp_path


def test_eval_over_seeds_retrains_the_recipe_and_reports_every_figure_per_seed(files: Path) -> None:
    cache = files / "emb.sqlite"
    summary = train_from_files(
        files / "train.jsonl",
        files / "models.json",
        files / "ck.pt",
        embedder="hashing",
        cache=cache,
        config=TrainConfig(seed=3),
        estimator="ridge",
    )
    assert summary["estimator"] == "ridge" and summary["selection"]["requested"] == "ridge"
    report = evaluate_files(
        files / "test.jsonl",
        files / "models.json",
        files / "ck.pt",
        seeds=3,
        cache=cache,
        json_out=files / "eval.json",
    )
    block = report["over_seeds"]
    assert block["seeds"] == [3, 4, 5] and [r["estimator"] for r in block["runs"]] == ["ridge"] * 3
    ratio = block["summary"]["mtrouter_ratio"]
    assert len(ratio["per_seed"]) == 3 and ratio["per_seed"][0] == report["cost_ratio_at_best_single_quality"]
    assert set(block["summary"]) >= {"knn_ratio", "linear_ratio", "margin_vs_knn", "margin_vs_linear"}
    for family in ("knn", "linear"):
        low, high, margin, share = (
            block["summary"][f"margin_vs_{family}{suffix}"]["per_seed"][0]
            for suffix in ("_ci95_low", "_ci95_high", "", "_share_ge_0")
        )
        assert low <= margin <= high and 0.0 <= share <= 1.0
    assert block["cores"] == os.cpu_count() and block["jobs"] == 1
    text = (files / "eval.txt").read_text()
    assert "over 3 training seeds" in text and f"{os.cpu_count()} cores, 1 seed(s) at a time" in text


def test_eval_retrains_seeds_in_worker_processes_with_the_same_results(files: Path) -> None:
    """`jobs` only changes where the seeds train: the MLP of each seed comes out bit-identical."""
    cache = files / "emb.sqlite"
    train_from_files(
        files / "train.jsonl",
        files / "models.json",
        files / "ck.pt",
        embedder="hashing",
        cache=cache,
        config=TrainConfig(epochs=2, members=2),
        estimator="mlp",
    )
    blocks = [
        evaluate_files(
            files / "test.jsonl", files / "models.json", files / "ck.pt", seeds=3, jobs=jobs, cache=cache
        )["over_seeds"]
        for jobs in (1, 2)
    ]
    ids = [[run["checkpoint_id"] for run in block["runs"]] for block in blocks]
    assert ids[0] == ids[1] and len(set(ids[0])) == 3  # three distinct seeds, the same fit either way
    assert blocks[0]["summary"] == blocks[1]["summary"]
    with pytest.raises(ValueError, match="jobs must be >= 1"):
        evaluate_files(
            files / "test.jsonl", files / "models.json", files / "ck.pt", seeds=2, jobs=0, cache=cache
        )


def test_cv_in_worker_processes_gives_the_same_report(files: Path) -> None:
    def run(jobs: int) -> dict:
        return cross_validate_files(
            files / "train.jsonl",
            files / "models.json",
            folds=2,
            embedder="hashing",
            cache=files / "emb.sqlite",
            config=TrainConfig(epochs=1, members=1),
            seeds=2,
            jobs=jobs,
        )

    one, two = run(1), run(2)
    assert (
        one["candidates"] == two["candidates"] and one["auto_choice_per_seed"] == two["auto_choice_per_seed"]
    )
    assert len(one["candidates"]["mlp"]["frontier_merit"]["per_seed"]) == 2


def test_cv_names_each_bad_argument(files: Path) -> None:
    with pytest.raises(ValueError) as caught:
        cross_validate_files(
            files / "train.jsonl", files / "models.json", seeds=0, jobs=0, schedules={"bag": TrainConfig()}
        )
    assert str(caught.value) == (
        "seeds must be >= 1, got 0; jobs must be >= 1, got 0; "
        "schedule names must start with 'mlp', got ['bag']"
    )


def _pid(_: object) -> int:
    return os.getpid()


def test_seeds_map_to_worker_processes_only_when_asked() -> None:
    assert set(_map_in_processes(_pid, [0, 1, 2], jobs=1)) == {os.getpid()}
    workers = set(_map_in_processes(_pid, [0, 1, 2, 3], jobs=2))
    assert os.getpid() not in workers and 1 <= len(workers) <= 2


def test_cv_compares_ridge_schedules_and_ensembles_over_seeds(files: Path) -> None:
    report = cross_validate_files(
        files / "train.jsonl",
        files / "models.json",
        folds=3,
        embedder="hashing",
        cache=files / "emb.sqlite",
        schedules={"mlp[short]": TrainConfig(epochs=3)},
        seeds=2,
        json_out=files / "cv.json",
    )
    assert report["seeds"] == [0, 1]
    assert set(report["candidates"]) == {"ridge", "mlp[short]", "ensemble[short]", "knn", "linear"}
    assert len(report["candidates"]["ridge"]["frontier_merit"]["per_seed"]) == 2
    assert report["best_by_frontier_merit"] in {"ridge", "mlp[short]", "ensemble[short]"}
    choices = report["auto_choice_per_seed"]["mlp[short]"]
    assert len(choices) == 2 and set(choices) <= {"ridge", "ensemble", "mlp"}
    text = (files / "cv.txt").read_text()
    assert "3-fold cross-validation" in text and "ensemble[short]" in text
    assert f"mlp[short]: {', '.join(choices)}" in text and f"{os.cpu_count()}-core machine" in text
