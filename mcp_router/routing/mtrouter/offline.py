"""Train and evaluate MTRouter from routing-data files (the `mcp-router train/eval --data` path), and the
MT-Bench history ablation.

Offline data is full-information: every record has every model's outcome, so every (record, model)
pair is a training row, not only a logged choice. Each record is a decision point whose outcome was
measured right there (a per-question or per-turn score), so each row is a one-step trajectory for
`targets.episode_targets`: S'_t = the record's score (no error observation, so no AEC), cost target
log(1 + cost/c̄) with c̄ the mean per-row cost of the training data, weight 1 (propensity 1). Rows
are grouped into episodes by `session`, so validation holds out whole conversations.

The checkpoint meta records what evaluation needs to stay honest: the training file (knn and linear
baselines are fitted on it), and the per-model training means (best-single and cheapest are chosen
from them, never from test data).
"""

from __future__ import annotations

import functools
import json
import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np

from mcp_router.cpu import worker_processes
from mcp_router.routing.mtrouter import evaluate as ev
from mcp_router.routing.mtrouter.checkpoint import Checkpoint, sidecar_path
from mcp_router.routing.mtrouter.data import RoutingRecord, read_records
from mcp_router.routing.mtrouter.embed import (
    HashingEmbedder,
    HistoryEncoder,
    MiniLMEmbedder,
    encoder_from_id,
    require_loader,
)
from mcp_router.routing.mtrouter.pool import ModelSpec, load_models_file
from mcp_router.routing.mtrouter.stability import (
    STAY_BONUSES,
    check_stay_bonuses,
    conversations,
    format_stability,
    stay_bonus_sweep,
    summarise,
)
from mcp_router.routing.mtrouter.targets import AECConfig, EpisodeStep, episode_targets
from mcp_router.routing.mtrouter.train import (
    Criterion,
    Predictions,
    TrainConfig,
    TrainingSet,
    cross_validate,
    episode_folds,
    fit_estimator,
    one_standard_error_choice,
    split_by_episode,
)
from mcp_router.store.embedding_file import SqliteCache

log = logging.getLogger(__name__)

EMBEDDERS = ("minilm", "hashing")
BASELINE_VAL_FRACTION = 0.1  # held-out sessions for knn/ridge selection when training uses no validation
HASHING_DIM = 256  # the hashing embedder's size for offline runs (unit tests use smaller ones directly)
TARGET_RULE = (
    "full information: one row per (record, model); each row a one-step episode for "
    "targets.episode_targets with the record's score as final score and no observation (no AEC), "
    "c_bar = mean per-row cost of the training data, weight 1; episode = session"
)


def default_cache_path() -> Path:
    """Embeddings persist outside the repo, next to the benchmark caches."""
    return Path.home() / ".cache" / "mcp-router" / "mtrouter" / "embeddings.sqlite"


def make_encoder(
    embedder: str, packing: str, cache: Path | None, minilm: Callable[[], Any] | None = None
) -> HistoryEncoder:
    if embedder not in EMBEDDERS:
        raise ValueError(f"embedder must be one of {EMBEDDERS}, not {embedder!r}")
    emb = MiniLMEmbedder(require_loader(minilm)) if embedder == "minilm" else HashingEmbedder(dim=HASHING_DIM)
    return HistoryEncoder(emb, packing=packing, cache=SqliteCache(cache or default_cache_path()))


def load_pool(models: Path, records: Sequence[RoutingRecord]) -> list[ModelSpec]:
    """The models file's pool, checked against the records (every record needs every pool model)."""
    specs = list(load_models_file(models).values())
    names = [s.name for s in specs]
    for record in records:
        absent = [n for n in names if n not in record.outcomes]
        if absent:
            raise ValueError(
                f"record {record.id!r} has no outcome for {absent} from {models}; offline training and "
                "evaluation need every pool model's outcome on every record"
            )
    extra = sorted({m for r in records for m in r.outcomes} - set(names))
    if extra:
        log.warning("outcomes of models not in %s are ignored: %s", models, extra)
    return specs


def train_means(truth: ev.OutcomeMatrix) -> dict[str, dict[str, float]]:
    return {
        m: {"score": float(truth.score[:, j].mean()), "cost_usd": float(truth.cost[:, j].mean())}
        for j, m in enumerate(truth.models)
    }


def training_set(
    records: Sequence[RoutingRecord], zx: np.ndarray, truth: ev.OutcomeMatrix
) -> tuple[TrainingSet, float]:
    """(rows, c̄): one row per (record, model) with targets from `episode_targets` (see module doc)."""
    n, m = truth.score.shape
    c_bar = float(truth.cost.mean())
    cfg = AECConfig()
    score, cost, weight = np.zeros(n * m), np.zeros(n * m), np.zeros(n * m)
    for i in range(n):
        for j, model in enumerate(truth.models):
            step = EpisodeStep(model=model, cost_usd=float(truth.cost[i, j]))
            (target,) = episode_targets([step], float(truth.score[i, j]), c_bar, cfg)
            score[i * m + j], cost[i * m + j], weight[i * m + j] = target.score, target.cost, target.weight
    rows = TrainingSet(
        zx=np.repeat(zx, m, axis=0),
        model_idx=np.tile(np.arange(m), n),
        score=score,
        cost=cost,
        weight=weight,
        episode=np.repeat(np.array([r.session for r in records]), m),
    )
    return rows, c_bar


def _encode(encoder: HistoryEncoder, records: Sequence[RoutingRecord]) -> np.ndarray:
    return encoder.encode([r.messages for r in records])


def _fit(
    records: Sequence[RoutingRecord],
    specs: Sequence[ModelSpec],
    zx: np.ndarray,
    encoder_id: str,
    config: TrainConfig,
    threads: int,
    extra: dict[str, Any],
    estimator: str = "mlp",
) -> tuple[Checkpoint, ev.OutcomeMatrix]:
    """`estimator` as in `train.fit_estimator`; `auto` chooses by the cross-validated frontier."""
    truth = ev.outcome_matrix(records, [s.name for s in specs])
    rows, c_bar = training_set(records, zx, truth)
    meta = {**extra, "train_means": train_means(truth), "target_rule": TARGET_RULE}
    checkpoint = fit_estimator(
        rows,
        specs,
        estimator=estimator,
        encoder_id=encoder_id,
        c_bar=c_bar,
        config=config,
        threads=threads,
        extra_meta={"offline": meta},
        criterion=frontier_criterion(truth),
    )
    return checkpoint, truth


def _per_record(predictions: Predictions, m: int) -> ev.Estimates:
    """Row predictions of a full-information training set (record-major, m rows per record, each
    scoring every model) -> one estimate per record, cost in units of c̄."""
    return ev.Estimates(predictions.score[::m], np.expm1(predictions.cost[::m]))


def frontier_criterion(truth: ev.OutcomeMatrix, lambdas: Sequence[float] = ev.DEFAULT_LAMBDAS) -> Criterion:
    """`auto`'s figure of merit on full-information data, per fold: the out-of-fold frontier's mean
    quality between the fold's cheapest and best single model (`evaluate.frontier_merit`)."""
    m = len(truth.models)

    def merit(predictions: Mapping[str, Predictions], folds: Sequence[np.ndarray]) -> dict[str, np.ndarray]:
        estimates = {k: _per_record(p, m) for k, p in predictions.items()}
        per_fold = []
        for rows in folds:
            records = np.unique(rows // m)  # a fold holds every model's row of its records
            fold_truth = ev.OutcomeMatrix(truth.models, truth.score[records], truth.cost[records])
            fold_estimates = {
                k: ev.Estimates(e.score[records], e.cost_units[records]) for k, e in estimates.items()
            }
            per_fold.append(ev.frontier_merit(fold_truth, fold_estimates, lambdas))
        return {k: np.array([f[k] for f in per_fold]) for k in predictions}

    return merit


def train_from_files(
    data: Path,
    models: Path,
    out: Path,
    *,
    packing: str = "split",
    embedder: str = "minilm",
    cache: Path | None = None,
    minilm: Callable[[], Any] | None = None,
    config: TrainConfig | None = None,
    threads: int = 1,
    estimator: str = "auto",
) -> dict[str, Any]:
    """Fit a checkpoint (`estimator`: see `train.fit_estimator`) on a routing-data file and save it to
    `out` (+ JSON sidecar); returns a summary with the row counts, c̄, the estimator chosen and why, the
    validation metrics and the wall time of embedding and of fitting (cross-validation included)."""
    data, models, out = Path(data), Path(models), Path(out)
    config = config or TrainConfig()
    records = read_records(data)
    specs = load_pool(models, records)
    encoder = make_encoder(embedder, packing, cache, minilm)
    started = time.monotonic()
    zx = _encode(encoder, records)
    embed_seconds = time.monotonic() - started
    extra = {"train_data": str(data.resolve()), "models_file": str(models.resolve()), "records": len(records)}
    checkpoint, _ = _fit(records, specs, zx, encoder.encoder_id, config, threads, extra, estimator)
    checkpoint.save(out)
    validation = checkpoint.meta["validation"]
    return {
        "estimator": checkpoint.estimator,
        "selection": checkpoint.meta["selection"],
        "checkpoint": str(out),
        "checkpoint_id": checkpoint.checkpoint_id,
        "records": len(records),
        "sessions": len({r.session for r in records}),
        "rows": len(records) * len(specs),
        "models": [s.name for s in specs],
        "encoder_id": encoder.encoder_id,
        "c_bar": checkpoint.meta["c_bar"],
        "embed_seconds": round(embed_seconds, 2),
        "train_seconds": checkpoint.meta["fit_seconds"],
        "validation": validation,
        "config": asdict(config),
    }


def baseline_estimates(
    train_zx: np.ndarray,
    train: ev.OutcomeMatrix,
    episodes: np.ndarray,
    test_zx: np.ndarray,
    c_bar: float,
    config: TrainConfig,
) -> tuple[dict[str, ev.Estimates], dict[str, Any]]:
    """knn and linear estimates for `test_zx`, their hyperparameters chosen on held-out training sessions:
    the ones MTRouter early-stops on (`split_by_episode` with the training config's fraction and seed),
    or 10 % of them when MTRouter trains without a validation split."""
    _, val_rows = split_by_episode(episodes, config.val_fraction or BASELINE_VAL_FRACTION, config.seed)
    chosen = ev.select_baselines(train_zx, train, val_rows, c_bar)
    estimates = {
        "knn": ev.knn_estimates(train_zx, train, test_zx, int(chosen["knn"]["k"]), c_bar),
        "linear": ev.ridge_estimates(train_zx, train, test_zx, chosen["linear"]["alpha"], c_bar),
    }
    return estimates, chosen


def _mtrouter_estimates(checkpoint: Checkpoint, specs: Sequence[ModelSpec], zx: np.ndarray) -> ev.Estimates:
    names = [s.name for s in specs]
    score, cost = checkpoint.with_pool(specs).predict(zx, names)
    return ev.Estimates(score, np.expm1(cost))


def evaluate_files(
    data: Path,
    models: Path,
    checkpoint: Path,
    *,
    train_data: Path | None = None,
    json_out: Path | None = None,
    plot: Path | None = None,
    lambdas: Sequence[float] = ev.DEFAULT_LAMBDAS,
    seed: int = 0,
    seeds: int = 1,
    threads: int = 1,
    jobs: int = 1,
    cache: Path | None = None,
    minilm: Callable[[], Any] | None = None,
    title: str | None = None,
) -> dict[str, Any]:
    """Every policy of `evaluate.evaluate_policies` on the records of `data`. The knn/linear baselines
    and best-single come from `train_data` (default: the file the checkpoint was trained on). Writes the
    report as JSON to `json_out` and, next to it, the text table (`.txt`); `plot` draws the frontier.

    With `seeds` > 1 the checkpoint's recipe (estimator request and training config, on the training
    file) is retrained with seeds config.seed + 1 .. + seeds − 1: the seed moves initialisation, batch
    order and the validation/CV splits (the baselines' too), never the test records. The report is the
    given checkpoint's, plus "over_seeds": every headline figure as mean, min, max and per seed. `jobs`
    worker processes retrain the seeds side by side; the results do not depend on it."""
    data, models, checkpoint = Path(data), Path(models), Path(checkpoint)
    if seeds < 1:
        raise ValueError(f"seeds must be >= 1, got {seeds}")
    if jobs < 1:
        raise ValueError(f"jobs must be >= 1, got {jobs}")
    if json_out is not None and Path(json_out).resolve() == sidecar_path(checkpoint).resolve():
        raise ValueError(f"--json {json_out} would overwrite the checkpoint's sidecar; choose another path")
    ckpt = Checkpoint.load(checkpoint)
    offline = ckpt.meta.get("offline", {})
    train_path = Path(train_data) if train_data is not None else offline.get("train_data")
    if train_path is None:
        raise ValueError(
            f"{checkpoint} does not record its training file; pass train_data (--train-data) so the "
            "baselines and best-single are fitted on training data"
        )
    records = read_records(data)
    train_records = read_records(Path(train_path))
    specs = load_pool(models, records)
    load_pool(models, train_records)
    names = [s.name for s in specs]
    encoder = encoder_from_id(ckpt.meta["encoder_id"], SqliteCache(cache or default_cache_path()), minilm)
    zx, train_zx = _encode(encoder, records), _encode(encoder, train_records)
    truth, train_truth = ev.outcome_matrix(records, names), ev.outcome_matrix(train_records, names)
    config = TrainConfig(**ckpt.meta["train"])
    episodes = np.array([r.session for r in train_records])

    def one(candidate: Checkpoint, run_config: TrainConfig) -> dict[str, Any]:
        c_bar = float(candidate.meta["c_bar"])
        estimates, chosen = baseline_estimates(train_zx, train_truth, episodes, zx, c_bar, run_config)
        estimates = {"mtrouter": _mtrouter_estimates(candidate, specs, zx), **estimates}
        report = ev.evaluate_policies(truth, estimates, train_means(train_truth), lambdas=lambdas, seed=seed)
        return {
            "data": str(data),
            "train_data": str(train_path),
            "checkpoint_id": candidate.checkpoint_id,
            "estimator": candidate.estimator,
            "encoder_id": encoder.encoder_id,
            "c_bar": c_bar,
            "baseline_hyperparameters": chosen,
            "training": {
                k: candidate.meta.get(k) for k in ("validation", "train", "selection", "fit_seconds")
            },
            **report,
        }

    report = {"checkpoint": str(checkpoint), **one(ckpt, config)}
    if seeds > 1:
        requested = ckpt.meta.get("selection", {}).get("requested", ckpt.estimator)
        configs = [replace(config, seed=config.seed + k) for k in range(1, seeds)]
        fit_one = functools.partial(
            _fit_checkpoint, train_records, specs, train_zx, encoder.encoder_id, threads, requested
        )
        retrained = _map_in_processes(fit_one, configs, jobs)
        report["over_seeds"] = _seed_block(
            [report, *(one(c, cfg) for c, cfg in zip(retrained, configs, strict=True))], requested, jobs
        )
    title = title or f"MTRouter offline evaluation on {data.name}"
    _write_outputs(report, title, json_out, plot)
    return report


def _fit_checkpoint(
    records: Sequence[RoutingRecord],
    specs: Sequence[ModelSpec],
    zx: np.ndarray,
    encoder_id: str,
    threads: int,
    estimator: str,
    config: TrainConfig,
) -> Checkpoint:
    """One seed's retraining for `evaluate_files` (module level, so a worker process can run it)."""
    return _fit(records, specs, zx, encoder_id, config, threads, {}, estimator)[0]


def _map_in_processes(fn: Callable[[Any], Any], items: Sequence[Any], jobs: int) -> list[Any]:
    """`[fn(x) for x in items]`, in `jobs` worker processes when `jobs` > 1. The seeds of an
    evaluation are independent and each trains on one torch thread, so on a k-core machine k jobs
    take about 1/k of the time."""
    if jobs < 2 or len(items) < 2:
        return [fn(x) for x in items]
    with worker_processes(min(jobs, len(items))) as pool:
        return list(pool.map(fn, items))


def _seed_block(runs: Sequence[dict[str, Any]], requested: str, jobs: int) -> dict[str, Any]:
    headlines = [ev.headline(r) for r in runs]
    return {
        "seeds": [r["training"]["train"]["seed"] for r in runs],
        "estimator_requested": requested,
        "cores": os.cpu_count(),
        "jobs": jobs,  # seeds retrained side by side: the fit seconds depend on it
        "summary": ev.summarise_seeds(headlines),
        "runs": [
            {
                "seed": r["training"]["train"]["seed"],
                "checkpoint_id": r["checkpoint_id"],
                "estimator": r["estimator"],
                "selection": r["training"]["selection"],
                "fit_seconds": r["training"]["fit_seconds"],
                "baseline_hyperparameters": r["baseline_hyperparameters"],
                "headline": h,
            }
            for r, h in zip(runs, headlines, strict=True)
        ],
    }


def _write_outputs(report: dict[str, Any], title: str, json_out: Path | None, plot: Path | None) -> None:
    if json_out is not None:
        json_out = Path(json_out)
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(report, indent=2) + "\n")
        json_out.with_suffix(".txt").write_text(ev.format_report(report, title))
    if plot is not None:
        ev.plot_report(report, Path(plot), title)


# ------------------------------------------------------------------ MT-Bench ablation


def last_message_only(record: RoutingRecord) -> RoutingRecord:
    """The record with only its last user message: the history-free view of the same decision."""
    last_user = next(m for m in reversed(record.messages) if m["role"] == "user")
    return replace(record, messages=(last_user,))


def _folds(sessions: Sequence[str], k: int, seed: int) -> list[set[str]]:
    order = np.random.default_rng(seed).permutation(sorted(set(sessions)))
    return [set(order[i::k].tolist()) for i in range(k)]


def _cross_validated(
    records: Sequence[RoutingRecord],
    specs: Sequence[ModelSpec],
    encoder: HistoryEncoder,
    folds: list[set[str]],
    config: TrainConfig,
    threads: int,
    decision_turn: int | None,
) -> tuple[dict[str, ev.Estimates], ev.OutcomeMatrix, dict[str, dict[str, float]], float]:
    """Pooled out-of-fold estimates for the `decision_turn` records (None: every record): each fold's model
    is trained on all
    records of the other folds' sessions (every turn) and predicts only its own fold."""
    names = [s.name for s in specs]
    test_idx = [i for i, r in enumerate(records) if decision_turn in (None, r.turn)]
    zx_all = _encode(encoder, records)
    n, m = len(test_idx), len(names)
    pooled = {f: ev.Estimates(np.zeros((n, m)), np.zeros((n, m))) for f in ("mtrouter", "knn", "linear")}
    means_sum = {name: {"score": 0.0, "cost_usd": 0.0} for name in names}
    seconds = 0.0
    for fold, held in enumerate(folds):
        train_idx = [i for i, r in enumerate(records) if r.session not in held]
        rows_out = [k for k, i in enumerate(test_idx) if records[i].session in held]
        train_records = [records[i] for i in train_idx]
        started = time.monotonic()
        fold_config = replace(config, seed=config.seed + fold)
        ckpt, truth = _fit(
            train_records, specs, zx_all[train_idx], encoder.encoder_id, fold_config, threads, {}
        )
        seconds += time.monotonic() - started
        test_zx = zx_all[[test_idx[k] for k in rows_out]]
        fold_est = {"mtrouter": _mtrouter_estimates(ckpt, specs, test_zx)}
        episodes = np.array([r.session for r in train_records])
        baselines, _ = baseline_estimates(
            zx_all[train_idx], truth, episodes, test_zx, ckpt.meta["c_bar"], fold_config
        )
        fold_est.update(baselines)
        for family, est in fold_est.items():
            pooled[family].score[rows_out] = est.score
            pooled[family].cost_units[rows_out] = est.cost_units
        decision_rows = [k for k, r in enumerate(train_records) if decision_turn in (None, r.turn)]
        for name, means in train_means(
            ev.outcome_matrix([train_records[k] for k in decision_rows], names)
        ).items():
            for key in ("score", "cost_usd"):
                means_sum[name][key] += means[key] / len(folds)
    truth_test = ev.outcome_matrix([records[i] for i in test_idx], names)
    return pooled, truth_test, means_sum, seconds


def cross_validate_files(
    data: Path,
    models: Path,
    *,
    folds: int = 5,
    embedder: str = "minilm",
    packing: str = "split",
    cache: Path | None = None,
    minilm: Callable[[], Any] | None = None,
    config: TrainConfig | None = None,
    schedules: Mapping[str, TrainConfig] | None = None,
    seeds: int = 1,
    threads: int = 1,
    jobs: int = 1,
    lambdas: Sequence[float] = ev.DEFAULT_LAMBDAS,
    json_out: Path | None = None,
) -> dict[str, Any]:
    """The estimator kinds on out-of-fold decisions of one file, k folds by session: the training-data-
    only way to choose the estimator and its TrainConfig (the test file stays untouched).

    Candidates: the ridge, the MLP under each of `schedules` ({"mlp": config} by default; a name must
    start with "mlp"), and each MLP averaged with the ridge ("ensemble..."); knn and linear are fitted
    on the same folds as the baselines. Repeated for seeds config.seed .. + seeds − 1 (folds and
    training seeds move together). Training targets use the whole file's c̄ and best-single its means
    (one scalar per model, all training data). Every candidate gets the headline figures over seeds
    and its frontier merit (`evaluate.frontier_area`, the criterion of `--estimator auto`); the top
    level of the report is the best-merit candidate's first-seed report. `jobs` worker processes
    cross-validate the seeds side by side; the results do not depend on it."""
    config = config or TrainConfig()
    schedules = dict(schedules or {"mlp": config})
    problems = [
        text
        for text, bad in (
            (f"seeds must be >= 1, got {seeds}", seeds < 1),
            (f"jobs must be >= 1, got {jobs}", jobs < 1),
            (
                f"schedule names must start with 'mlp', got {list(schedules)}",
                any(not name.startswith("mlp") for name in schedules),
            ),
        )
        if bad
    ]
    if problems:
        raise ValueError("; ".join(problems))
    records = read_records(Path(data))
    specs = load_pool(Path(models), records)
    encoder = make_encoder(embedder, packing, cache, minilm)
    zx = _encode(encoder, records)
    truth = ev.outcome_matrix(records, [s.name for s in specs])
    rows, c_bar = training_set(records, zx, truth)
    sessions, m = np.array([r.session for r in records]), len(specs)
    runs = []
    seed_list = [config.seed + k for k in range(seeds)]
    fit_folds = functools.partial(
        _cv_predictions, rows, specs, encoder.encoder_id, c_bar, schedules, sessions, folds, threads
    )
    for seed, (oof, seconds) in zip(seed_list, _map_in_processes(fit_folds, seed_list, jobs), strict=True):
        record_folds = episode_folds(sessions, folds, seed)
        row_folds = _row_folds(record_folds, m)
        candidates = {kind: _per_record(p, m) for kind, p in oof.items()}
        baselines = _out_of_fold_baselines(
            zx, truth, sessions, record_folds, c_bar, replace(config, seed=seed)
        )
        merit = ev.frontier_merit(truth, {**candidates, **baselines}, lambdas)
        per_fold = frontier_criterion(truth, lambdas)(oof, row_folds)
        auto_choice = {
            name: one_standard_error_choice(
                {
                    "ridge": per_fold["ridge"],
                    "ensemble": per_fold[name.replace("mlp", "ensemble", 1)],
                    "mlp": per_fold[name],
                }
            )[0]
            for name in schedules
        }
        reports = {
            kind: ev.evaluate_policies(
                truth, {"mtrouter": est, **baselines}, train_means(truth), lambdas=lambdas, seed=seed
            )
            for kind, est in candidates.items()
        }
        runs.append(
            {
                "seed": seed,
                "cv_seconds": round(seconds, 2),
                "merit": merit,
                "auto_choice": auto_choice,
                "reports": reports,
            }
        )
    kinds = list(runs[0]["reports"])
    table = {
        kind: {
            "frontier_merit": ev.spread([r["merit"][kind] for r in runs]),
            **ev.summarise_seeds([ev.headline(r["reports"][kind]) for r in runs]),
        }
        for kind in kinds
    }
    for family in ("knn", "linear"):
        table[family] = {"frontier_merit": ev.spread([r["merit"][family] for r in runs])}
    chosen = max(kinds, key=lambda kind: table[kind]["frontier_merit"]["mean"])
    report = {
        "data": str(data),
        "folds": folds,
        "seeds": [r["seed"] for r in runs],
        "encoder_id": encoder.encoder_id,
        "train_config": asdict(config),
        "schedules": {name: asdict(cfg) for name, cfg in schedules.items()},
        "cv_seconds_per_seed": [r["cv_seconds"] for r in runs],
        "cores": os.cpu_count(),
        "auto_choice_per_seed": {name: [r["auto_choice"][name] for r in runs] for name in schedules},
        "candidates": table,
        "best_by_frontier_merit": chosen,
        "shown": f"{chosen}, seed {runs[0]['seed']}",
        **runs[0]["reports"][chosen],
    }
    title = f"MTRouter {folds}-fold cross-validation on {Path(data).name}"
    if json_out is not None:
        json_out = Path(json_out)
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(report, indent=2) + "\n")
        json_out.with_suffix(".txt").write_text(format_cross_validation(report, title))
    return report


def _row_folds(record_folds: Sequence[np.ndarray], m: int) -> list[np.ndarray]:
    """Record folds -> row folds of the full-information training set (m rows per record)."""
    return [(f[:, None] * m + np.arange(m)).ravel() for f in record_folds]


def _cv_predictions(
    rows: TrainingSet,
    specs: Sequence[ModelSpec],
    encoder_id: str,
    c_bar: float,
    schedules: Mapping[str, TrainConfig],
    sessions: np.ndarray,
    folds: int,
    threads: int,
    seed: int,
) -> tuple[dict[str, Predictions], float]:
    """One seed of `cross_validate_files`: every candidate's out-of-fold predictions and the seconds
    spent (module level, so a worker process can run it)."""
    return cross_validate(
        rows,
        specs,
        encoder_id=encoder_id,
        c_bar=c_bar,
        configs={name: replace(cfg, seed=seed) for name, cfg in schedules.items()},
        folds=_row_folds(episode_folds(sessions, folds, seed), len(specs)),
        threads=threads,
    )


def _out_of_fold_baselines(
    zx: np.ndarray,
    truth: ev.OutcomeMatrix,
    sessions: np.ndarray,
    record_folds: Sequence[np.ndarray],
    c_bar: float,
    config: TrainConfig,
) -> dict[str, ev.Estimates]:
    """knn and linear estimates of every record from models fitted on the other folds."""
    n, m = truth.score.shape
    pooled = {f: ev.Estimates(np.zeros((n, m)), np.zeros((n, m))) for f in ("knn", "linear")}
    for held in record_folds:
        rest = np.setdiff1d(np.arange(n), held)
        part = ev.OutcomeMatrix(truth.models, truth.score[rest], truth.cost[rest])
        estimates, _ = baseline_estimates(zx[rest], part, sessions[rest], zx[held], c_bar, config)
        for family, est in estimates.items():
            pooled[family].score[held], pooled[family].cost_units[held] = est.score, est.cost_units
    return pooled


def format_cross_validation(report: Mapping[str, Any], title: str) -> str:
    """The candidates table (mean [min, max] over seeds), then the shown candidate's first-seed report."""
    seeds = report["seeds"]
    lines = [
        title,
        f"seeds {seeds}, {report['folds']} folds by session; training seconds per seed "
        f"{report['cv_seconds_per_seed']} (all candidates' folds, {report['cores']}-core machine, "
        "1 torch thread)",
        "merit: mean out-of-fold frontier quality between the cheapest and the best single model's cost "
        "(higher is better)",
        "auto's choice per seed (the least flexible of ridge, ensemble, MLP within one standard error of "
        "the best mean fold merit): "
        + "; ".join(f"{name}: {', '.join(kinds)}" for name, kinds in report["auto_choice_per_seed"].items()),
        "",
        f"{'candidate':<22} {'merit mean [min, max]':>28} {'ratio mean [min, max] (reached)':>40} "
        f"{'margin vs knn mean [min]':>26} {'margin vs linear mean [min]':>28}",
        "-" * 150,
    ]

    for kind, row in report["candidates"].items():
        ratio = row.get("mtrouter_ratio")
        lines.append(
            f"{kind:<22} {_cell(row['frontier_merit'], 4):>28} "
            f"{_cell(ratio, 3) + (' (' + ratio['defined'] + ')' if ratio else ''):>40} "
            f"{_cell(row.get('margin_vs_knn'), 4, span=False):>26} "
            f"{_cell(row.get('margin_vs_linear'), 4, span=False):>28}"
        )
    lines += ["", f"best by merit: {report['best_by_frontier_merit']}; shown below: {report['shown']}", ""]
    return "\n".join(lines) + ev.format_report(report, title)


def _cell(stats: Mapping[str, Any] | None, digits: int, span: bool = True) -> str:
    """ "mean [min, max]" (or "mean [min]") of an `evaluate.spread`, "" when there is none."""
    if stats is None:
        return ""
    low = ev.fmt_number(stats["min"], digits)
    bounds = f"{low}, {ev.fmt_number(stats['max'], digits)}" if span else low
    return f"{ev.fmt_number(stats['mean'], digits)} [{bounds}]"


def mtbench_ablation(
    data: Path,
    models: Path,
    *,
    folds: int = 5,
    repeats: int = 5,
    embedder: str = "minilm",
    packing: str = "split",
    cache: Path | None = None,
    minilm: Callable[[], Any] | None = None,
    config: TrainConfig | None = None,
    threads: int = 1,
    lambdas: Sequence[float] = ev.DEFAULT_LAMBDAS,
    stay_bonuses: Sequence[float] = STAY_BONUSES,
    compare_with: Path | None = None,
    json_out: Path | None = None,
    plot: Path | None = None,
) -> dict[str, Any]:
    """Turn-2 routing with the full history against the last user message only, by k-fold cross-
    validation over questions (sessions), repeated with `repeats` fold assignments and training seeds.

    Both variants use the same folds, seeds, turn-1 records and training config; only the rendering of
    the turn-2 records differs. best-single and cheapest come from the training folds' turn-2 means.
    Each repeat also replays both turns of every conversation with the full-history model's out-of-fold
    estimates under each stay bonus (`stability.stay_bonus_sweep`): switches, quality and cost.
    `compare_with` is an earlier ablation report (another packing, same folds, repeats and training
    config) to set this packing's frontiers against (`compare_packings`)."""
    check_stay_bonuses(stay_bonuses)
    config = config or TrainConfig()
    other = json.loads(Path(compare_with).read_text()) if compare_with is not None else None
    if other is not None and (other.get("folds"), other.get("repeats"), other.get("train_config")) != (
        folds,
        repeats,
        asdict(config),
    ):
        raise ValueError(
            f"{compare_with} was run with other folds, repeats or training config; rerun it with the "
            "same --folds, --repeats and --seed to compare packings"
        )
    records = read_records(Path(data))
    specs = load_pool(Path(models), records)
    encoder = make_encoder(embedder, packing, cache, minilm)
    variants = {"full": list(records), "last": [last_message_only(r) if r.turn > 1 else r for r in records]}
    runs: dict[str, list[dict[str, Any]]] = {v: [] for v in variants}
    stability_runs: list[dict[str, Any]] = []
    for repeat in range(repeats):
        split = _folds([r.session for r in records], folds, seed=config.seed + 1000 * repeat)
        run_config = replace(config, seed=config.seed + 1000 * repeat)
        for variant, recs in variants.items():
            estimates, truth, means, seconds = _cross_validated(
                recs, specs, encoder, split, run_config, threads, 2
            )
            report = ev.evaluate_policies(truth, estimates, means, lambdas=lambdas, seed=repeat)
            report["train_seconds"] = round(seconds, 2)
            runs[variant].append(report)
        every_turn, truth, _, _ = _cross_validated(records, specs, encoder, split, run_config, threads, None)
        stability_runs.append(stay_bonus_sweep(records, every_turn["mtrouter"], truth, lambdas, stay_bonuses))
    summary = {}
    for variant, reports in runs.items():
        ratios = [r["cost_ratio_at_best_single_quality"] for r in reports]
        summary[variant] = {
            "cost_ratio_at_best_single_quality": ratios,
            "reached_best_single_quality": sum(x is not None for x in ratios),
            "mean_ratio_where_reached": _mean([x for x in ratios if x is not None]),
            "knn_ratio": [r["baselines"]["knn"]["cost_ratio_at_best_single_quality"] for r in reports],
            "linear_ratio": [r["baselines"]["linear"]["cost_ratio_at_best_single_quality"] for r in reports],
            "train_seconds": sum(r["train_seconds"] for r in reports),
        }
    full_vs_last = [
        ev.compare_frontiers(_family(full, "mtrouter"), _family(last, "mtrouter"))
        for full, last in zip(runs["full"], runs["last"], strict=True)
    ]
    report = {
        "data": str(data),
        "decision": "turn 2 (80 records), k-fold cross-validation by question",
        "folds": folds,
        "repeats": repeats,
        "encoder_id": encoder.encoder_id,
        "train_config": asdict(config),
        "summary": summary,
        "full_vs_last_mtrouter": {
            "at_or_above_per_repeat": [c["at_or_above"] for c in full_vs_last],
            "mean_margin_per_repeat": [c["mean_margin"] for c in full_vs_last],
            "min_margin_per_repeat": [c["min_margin"] for c in full_vs_last],
            "repeats_at_or_above_on_average": sum(
                c["mean_margin"] is not None and c["mean_margin"] >= 0 for c in full_vs_last
            ),
        },
        "stability": {
            "conversations": len(conversations(records)),
            "repeats": repeats,
            "stay_bonuses": list(stay_bonuses),
            "mean_margin_vs_no_bonus": {
                str(b): [run["mean_margin_vs_no_bonus"][str(b)] for run in stability_runs]
                for b in stay_bonuses
            },
            "summary": summarise(stability_runs),
            "runs": stability_runs,
        },
        "runs": runs,
    }
    if other is not None:
        report["versus_other_packing"] = compare_packings(report, other)
    if json_out is not None:
        json_out = Path(json_out)
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(report, indent=2) + "\n")
        json_out.with_suffix(".txt").write_text(format_ablation(report))
    if plot is not None:
        _plot_ablation(report, Path(plot))
    return report


def _mean(values: Sequence[float]) -> float | None:
    return float(np.mean(values)) if values else None


def _family(report: dict[str, Any], family: str) -> list[ev.PolicyResult]:
    return [ev.PolicyResult(**p) for p in report["policies"] if p["family"] == family]


def compare_packings(report: dict[str, Any], other: dict[str, Any]) -> dict[str, Any]:
    """This report's MTRouter frontier minus `other`'s at `other`'s Pareto points, per repeat, for each
    variant. `last` isolates what the packing does to a lone message: one that fits the window renders
    the same under every packing, a longer one is truncated by `split` and chunked by `turns`."""
    versus: dict[str, Any] = {"other_encoder_id": other["encoder_id"]}
    for variant in ("full", "last"):
        margins = [
            ev.compare_frontiers(_family(ours, "mtrouter"), _family(theirs, "mtrouter"))["mean_margin"]
            for ours, theirs in zip(report["runs"][variant], other["runs"][variant], strict=True)
        ]
        versus[variant] = {
            "mean_margin_per_repeat": margins,
            "repeats_at_or_above_on_average": sum(m is not None and m >= 0 for m in margins),
        }
    return versus


def format_ablation(report: dict[str, Any]) -> str:
    lines = [
        f"MT-Bench turn-2 ablation: full history vs last user message only ({report['folds']}-fold CV by "
        f"question, {report['repeats']} repeats), encoder {report['encoder_id']}",
        "",
    ]
    for variant, s in report["summary"].items():
        ratios = ", ".join(ev.fmt_number(x) for x in s["cost_ratio_at_best_single_quality"])
        lines.append(
            f"{variant:>4}: mtrouter cost_ratio_at_best_single_quality per repeat [{ratios}] "
            f"(reached {s['reached_best_single_quality']}/{len(s['cost_ratio_at_best_single_quality'])}, "
            f"mean where reached {ev.fmt_number(s['mean_ratio_where_reached'])}); "
            f"knn [{', '.join(ev.fmt_number(x) for x in s['knn_ratio'])}], "
            f"linear [{', '.join(ev.fmt_number(x) for x in s['linear_ratio'])}]"
        )
    fvl = report["full_vs_last_mtrouter"]
    margins = ", ".join(ev.fmt_number(x, 4) for x in fvl["mean_margin_per_repeat"])
    lines.append(
        "full-history frontier minus last-message frontier at the last-message Pareto points, mean margin "
        f"per repeat: [{margins}] (at or above on average in {fvl['repeats_at_or_above_on_average']} of "
        f"{report['repeats']}), at or above at every point: {fvl['at_or_above_per_repeat']}"
    )
    versus = report.get("versus_other_packing")
    if versus is not None:
        for variant in ("full", "last"):
            v = versus[variant]
            per_repeat = v["mean_margin_per_repeat"]
            lines.append(
                f"{variant} history, this packing's frontier minus {versus['other_encoder_id']}'s, mean "
                f"margin per repeat: [{', '.join(ev.fmt_number(x, 4) for x in per_repeat)}] "
                f"(at or above in {v['repeats_at_or_above_on_average']} of {len(per_repeat)})"
            )
    lines += ["", format_stability(report["stability"])]
    for variant, reports in report["runs"].items():
        lines.append("")
        lines.append(
            ev.format_report(reports[0], f"[{variant}] repeat 0, pooled out-of-fold turn-2 decisions")
        )
    return "\n".join(lines) + "\n"


def _plot_ablation(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5.5))
    for variant, color in (("full", "C3"), ("last", "C0")):
        for repeat, run in enumerate(report["runs"][variant]):
            pts = sorted(_family(run, "mtrouter"), key=lambda p: p.cost_usd)
            ax.plot(
                [p.cost_usd for p in pts],
                [p.quality for p in pts],
                color=color,
                alpha=0.8 if repeat == 0 else 0.3,
                linewidth=1,
                label=f"mtrouter, {variant} history" if repeat == 0 else None,
            )
    for p in report["runs"]["full"][0]["policies"]:
        if p["family"] in ("single", "reference"):
            ax.scatter([p["cost_usd"]], [p["quality"]], color="black", s=18, zorder=3)
            ax.annotate(
                p["name"],
                (p["cost_usd"], p["quality"]),
                fontsize=7,
                xytext=(3, 3),
                textcoords="offset points",
            )
    ax.set_xscale("log")
    ax.set_xlabel("total cost of the 80 turn-2 decisions (USD, log scale)")
    ax.set_ylabel("quality (mean score / 10)")
    packing = report["encoder_id"].split("packing=")[1].split("|")[0]
    ax.set_title(
        f"MT-Bench turn 2: full history vs last message ({packing} packing, CV, all repeats)", fontsize=10
    )
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
