"""Fitting the staged MTRouter estimator on logged steps (reference §7.3–§7.5, §11.2, §11.4).

`fit` trains the MLP network (stage 2); `fit_ridge` the per-model ridge (stage 1); `fit_estimator`
either, their average (`ensemble`), or - with `auto` - the one that cross-validates best on the
training rows alone: ridge while there are too few rows for the MLP (the reference's stage-2 entry
condition), else the least flexible of ridge, ensemble and MLP within one standard error of the best
on episode-grouped folds, under a criterion the caller gives (full-information data: the quality-cost
frontier; logged bandit data: held-out MSE).

Only the logged action of each step is supervised: the loss is the IPS-weighted squared error of the
score head against S'_t and of the cost head against log(1 + C̃_t), plus the residual regulariser.
Validation holds out whole episodes, never single steps: the steps of one episode share its final
score, so a step-level split would leak the target into validation and early-stop too late.

Runs on CPU outside the request path; deterministic for a given seed without touching the caller's
global RNG state.
"""

from __future__ import annotations

import copy
import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from mcp_router.cpu import torch_threads
from mcp_router.routing.mtrouter import ridge
from mcp_router.routing.mtrouter.checkpoint import Checkpoint, PoolMismatch, state_hash
from mcp_router.routing.mtrouter.network import MTRouterNet
from mcp_router.routing.mtrouter.pool import MetaNorm, ModelSpec, meta_features, spec_to_dict
from mcp_router.routing.mtrouter.train_config import ESTIMATORS, TrainConfig

__all__ = ["ESTIMATORS", "TrainConfig", "TrainingSet", "fit", "fit_estimator", "fit_ridge"]

log = logging.getLogger(__name__)

_EVAL_CHUNK = 8192
_FIT_KEYS = (
    "encoder_id",
    "zx_dim",
    "c_bar",
    "meta_norm",
    "specs",
    "train",
    "validation",
    "parent",
    "created_at",
    "checkpoint_id",
    "masked",
    "ridge_fit",
    "selection",
    "fit_seconds",
)
DEFAULT_CONFIG = TrainConfig()
RIDGE_VAL_FRACTION = 0.1  # sessions held out to choose the ridge's α when the config holds none out
CV_FOLDS = 5
# Stage 2 entry (reference §11.4): below these the MLP is not even cross-validated, ridge serves
MLP_MIN_ROWS = 2000
MLP_MIN_ROWS_PER_MODEL = 50


@dataclass
class TrainingSet:
    """One row per logged step: history embedding, chosen model (index into the pool), targets from
    `targets.episode_targets`, and the episode id the validation split groups by."""

    zx: np.ndarray  # float [n, D]
    model_idx: np.ndarray  # int [n]
    score: np.ndarray  # [n]
    cost: np.ndarray  # [n]
    weight: np.ndarray  # [n]
    episode: np.ndarray  # [n] str ids

    def __len__(self) -> int:
        return len(self.model_idx)

    def subset(self, rows: np.ndarray) -> TrainingSet:
        return TrainingSet(
            self.zx[rows],
            self.model_idx[rows],
            self.score[rows],
            self.cost[rows],
            self.weight[rows],
            self.episode[rows],
        )

    def check(self, n_models: int) -> None:
        n = len(self.model_idx)
        if self.zx.ndim != 2 or self.zx.shape[0] != n:
            raise ValueError(f"zx must be [n={n}, D], got {self.zx.shape}")
        for name in ("score", "cost", "weight", "episode"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"{name} has {len(getattr(self, name))} rows, model_idx has {n}")
        if n == 0:
            raise ValueError("the training set is empty")
        if self.model_idx.min() < 0 or self.model_idx.max() >= n_models:
            raise ValueError(f"model_idx must index the pool of {n_models} models")
        if not (np.all(np.isfinite(self.score)) and np.all(np.isfinite(self.cost))):
            raise ValueError("score and cost targets must be finite")
        if not (np.all(np.isfinite(self.weight)) and np.all(self.weight > 0)):
            raise ValueError("weights must be finite and > 0")


def split_by_episode(episode: np.ndarray, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train rows, validation rows): a seeded hold-out of `val_fraction` of the distinct episodes (at
    least one, never all). With fewer than 2 episodes or val_fraction <= 0 there is no validation set."""
    episodes = np.unique(np.asarray(episode).astype(str))
    rows = np.arange(len(episode))
    if len(episodes) < 2 or val_fraction <= 0:
        return rows, rows[:0]
    n_val = min(max(1, round(val_fraction * len(episodes))), len(episodes) - 1)
    held = np.random.default_rng(seed).choice(episodes, size=n_val, replace=False)
    is_val = np.isin(np.asarray(episode).astype(str), held)
    return rows[~is_val], rows[is_val]


def _adamw(net: MTRouterNet, config: TrainConfig) -> torch.optim.AdamW:
    """AdamW, fused where torch supports it on CPU (>= 2.4): about 20 % faster steps at batch 64."""
    try:
        return torch.optim.AdamW(net.parameters(), lr=config.lr, weight_decay=config.weight_decay, fused=True)
    except RuntimeError:
        return torch.optim.AdamW(net.parameters(), lr=config.lr, weight_decay=config.weight_decay)


def _losses(
    net: MTRouterNet,
    tensors: Mapping[str, torch.Tensor],
    rows: torch.Tensor,
    kappa: float,
    *,
    per_member: bool = False,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Weighted (total data loss, score MSE, cost MSE) over `rows` (no regulariser): of the members'
    average, or with `per_member` the sum of each member's own losses, whose gradient for each member
    is the one that member would get trained alone."""
    zx, idx = tensors["zx"][rows], tensors["model_idx"][rows]
    s_hat, c_hat = net.member_outputs(zx, idx) if per_member else net(zx, idx)
    w = tensors["weight"][rows]
    s_mse = ((w * (s_hat - tensors["score"][rows]).pow(2)).sum(-1) / w.sum()).sum()
    c_mse = ((w * (c_hat - tensors["cost"][rows]).pow(2)).sum(-1) / w.sum()).sum()
    return s_mse + kappa * c_mse, s_mse, c_mse


def _evaluate(
    net: MTRouterNet, tensors: Mapping[str, torch.Tensor], rows: np.ndarray, kappa: float
) -> tuple[float, float, float]:
    net.eval()
    total_w = float(tensors["weight"][torch.from_numpy(rows)].sum())
    s_sum = c_sum = 0.0
    with torch.inference_mode():
        for start in range(0, len(rows), _EVAL_CHUNK):
            chunk = torch.from_numpy(rows[start : start + _EVAL_CHUNK])
            share = float(tensors["weight"][chunk].sum()) / total_w
            _, s_mse, c_mse = _losses(net, tensors, chunk, kappa)
            s_sum += float(s_mse) * share
            c_sum += float(c_mse) * share
    return s_sum + kappa * c_sum, s_sum, c_sum


def _initial_net(
    data: TrainingSet,
    specs: Sequence[ModelSpec],
    encoder_id: str,
    init: Checkpoint | None,
    members: int,
) -> tuple[MTRouterNet, MetaNorm]:
    """A fresh network of `members` members with a newly fitted normalisation table, or a copy of
    `init`'s network (its frozen table and its own members, its metadata rows refreshed from `specs`)
    for a warm start."""
    names = tuple(s.name for s in specs)
    feats = np.stack([meta_features(s) for s in specs])
    if init is None or init.net is None:  # a ridge checkpoint has no network to warm-start from
        norm = MetaNorm.fit(specs)
        return MTRouterNet(data.zx.shape[1], norm.apply(feats), members=members), norm
    if init.pool != names or init.masked:
        raise PoolMismatch(
            f"warm start needs the checkpoint's pool {list(init.pool)} (masked: {list(init.masked)}), "
            f"got {list(names)}; train from scratch for a different pool"
        )
    if init.zx_dim != data.zx.shape[1] or init.meta.get("encoder_id") != encoder_id:
        raise ValueError(
            f"warm start from checkpoint {init.checkpoint_id} (encoder {init.meta.get('encoder_id')!r}, "
            f"zx_dim {init.zx_dim}) with encoder {encoder_id!r}, zx_dim {data.zx.shape[1]}; "
            "embed with the checkpoint's encoder or train from scratch"
        )
    norm = init.meta_norm
    net = copy.deepcopy(init.net)
    net.meta.copy_(torch.from_numpy(norm.apply(feats)))
    return net, norm


def fit(
    data: TrainingSet,
    pool: Sequence[ModelSpec],
    *,
    encoder_id: str,
    c_bar: float,
    config: TrainConfig = DEFAULT_CONFIG,
    init: Checkpoint | None = None,
    extra_meta: Mapping[str, Any] | None = None,
    threads: int = 1,
) -> Checkpoint:
    """Train and return a checkpoint whose weights are those of the best validation epoch.

    With fewer than 2 distinct episodes there is nothing to hold out without splitting an episode, so
    there is no validation: all `config.epochs` run and the final weights are kept.

    `extra_meta` (e.g. watermark, AEC config, rules version) is stored in the checkpoint's meta; its
    keys must not collide with the ones `fit` writes. `threads` caps torch's intra-op threads for the
    duration of the call only. The default is 1: at batch 64 a second thread gave no speed-up on an
    idle 2-core machine and made epochs ~4x slower while another process used a core.
    """
    started = time.monotonic()
    data.check(len(pool))
    _check_extra(extra_meta)
    train_rows, val_rows = split_by_episode(data.episode, config.val_fraction, config.seed)
    tensors = {
        "zx": torch.from_numpy(np.ascontiguousarray(data.zx, dtype=np.float32)),
        "model_idx": torch.from_numpy(np.asarray(data.model_idx, dtype=np.int64)),
        "score": torch.from_numpy(np.asarray(data.score, dtype=np.float32)),
        "cost": torch.from_numpy(np.asarray(data.cost, dtype=np.float32)),
        "weight": torch.from_numpy(np.asarray(data.weight, dtype=np.float32)),
    }
    rng = np.random.default_rng(config.seed)
    with torch_threads(threads), torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        net, norm = _initial_net(data, pool, encoder_id, init, config.members)
        opt = _adamw(net, config)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=config.epochs, eta_min=config.min_lr)
        best: tuple[float, float, float] | None = None
        best_state, best_epoch, stale, epochs_run, train_loss = None, 0, 0, 0, math.nan
        for epoch in range(1, config.epochs + 1):
            net.train()
            total, total_w = 0.0, 0.0
            perm = torch.from_numpy(rng.permutation(train_rows))
            for start in range(0, len(perm), config.batch_size):
                rows = perm[start : start + config.batch_size]
                loss, _, _ = _losses(net, tensors, rows, config.kappa, per_member=True)
                batch_w = float(tensors["weight"][rows].sum())
                opt.zero_grad(set_to_none=True)
                (loss + config.residual_weight * net.residual_penalty()).backward()
                net.clip_grad_norm_(config.grad_clip)
                opt.step()
                total, total_w = total + loss.item() / net.members * batch_w, total_w + batch_w
            sched.step()
            epochs_run, train_loss = epoch, total / total_w
            if len(val_rows) == 0:
                log.debug("epoch %d: train loss %.5f", epoch, train_loss)
                continue
            val = _evaluate(net, tensors, val_rows, config.kappa)
            log.debug("epoch %d: train loss %.5f, val loss %.5f", epoch, train_loss, val[0])
            if best is None or val[0] < best[0]:
                best, best_epoch, stale = val, epoch, 0
                best_state = copy.deepcopy(net.state_dict())
            else:
                stale += 1
                if stale >= config.patience:
                    break
        if best_state is not None:
            net.load_state_dict(best_state)
    net.eval()
    validation = {
        "seconds": round(time.monotonic() - started, 3),
        "epochs": epochs_run,
        "best_epoch": best_epoch if best is not None else epochs_run,
        "train_rows": len(train_rows),
        "val_rows": len(val_rows),
        "val_episodes": len(np.unique(np.asarray(data.episode)[val_rows].astype(str))),
        "train_loss": train_loss,
        # IPS-weighted, on the held-out episodes at the best epoch; None without a validation set
        "val_loss": best[0] if best else None,
        "score_mse": best[1] if best else None,
        "cost_mse": best[2] if best else None,
    }
    log.info(
        "mtrouter fit: %d epochs in %.1fs, val score MSE %s, cost MSE %s",
        epochs_run,
        validation["seconds"],
        validation["score_mse"],
        validation["cost_mse"],
    )
    meta = _meta(data, pool, norm, encoder_id, c_bar, config, init, extra_meta)
    checkpoint = Checkpoint(net=net, pool=tuple(s.name for s in pool), meta=meta)
    meta.update(validation=validation, checkpoint_id=state_hash(net))
    return checkpoint


def _meta(
    data: TrainingSet,
    pool: Sequence[ModelSpec],
    norm: MetaNorm,
    encoder_id: str,
    c_bar: float,
    config: TrainConfig,
    init: Checkpoint | None,
    extra_meta: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """The meta every estimator kind records (validation and checkpoint_id are the caller's)."""
    meta = {
        "encoder_id": encoder_id,
        "zx_dim": int(data.zx.shape[1]),
        "c_bar": c_bar,
        "meta_norm": norm.to_dict(),
        "specs": [spec_to_dict(s) for s in pool],
        "train": asdict(config),
        "parent": init.checkpoint_id if init is not None else None,
        "created_at": time.time(),
        "masked": [],
    }
    return {"watermark": None, **(extra_meta or {}), **meta}


def _check_extra(extra_meta: Mapping[str, Any] | None) -> None:
    clash = set(extra_meta or {}) & set(_FIT_KEYS)
    if clash:
        raise ValueError(f"extra_meta may not set {sorted(clash)}: fit writes those keys")


def _weighted_loss(
    score: np.ndarray, cost: np.ndarray, data: TrainingSet, kappa: float
) -> tuple[float, float, float]:
    """(score MSE + κ·cost MSE, score MSE, cost MSE) of [n, M] predictions on the logged model of each
    row, IPS-weighted like the MLP's validation loss."""
    rows = np.arange(len(data))
    s_err = (score[rows, data.model_idx] - data.score) ** 2
    c_err = (cost[rows, data.model_idx] - data.cost) ** 2
    s_mse, c_mse = (
        float(np.average(s_err, weights=data.weight)),
        float(np.average(c_err, weights=data.weight)),
    )
    return s_mse + kappa * c_mse, s_mse, c_mse


def fit_ridge(
    data: TrainingSet,
    pool: Sequence[ModelSpec],
    *,
    encoder_id: str,
    c_bar: float,
    config: TrainConfig = DEFAULT_CONFIG,
    extra_meta: Mapping[str, Any] | None = None,
) -> Checkpoint:
    """Stage 1: per-model ridge of the score and log-cost targets on z_x. α is the one with the lowest
    validation loss on held-out sessions (`config.val_fraction`, else 10 %, seeded by `config.seed`);
    the returned fit uses every row with that α."""
    started = time.monotonic()
    data.check(len(pool))
    _check_extra(extra_meta)
    m = len(pool)
    train_rows, val_rows = split_by_episode(
        data.episode, config.val_fraction or RIDGE_VAL_FRACTION, config.seed
    )
    losses: dict[float, float] = {}
    if len(val_rows):
        fit_part, val = data.subset(train_rows), data.subset(val_rows)
        path = ridge.fit_path(
            fit_part.zx, fit_part.model_idx, fit_part.score, fit_part.cost, fit_part.weight, m
        )
        for est in path:
            score, cost = est.predict(val.zx)
            known = est.fitted[val.model_idx]  # a model with no fitting rows cannot be scored
            if known.any():
                losses[est.alpha] = _weighted_loss(
                    score[known], cost[known], val.subset(np.flatnonzero(known)), config.kappa
                )[0]
    alpha = min(losses, key=losses.__getitem__) if losses else ridge.ALPHAS[len(ridge.ALPHAS) // 2]
    (est,) = ridge.fit_path(data.zx, data.model_idx, data.score, data.cost, data.weight, m, [alpha])
    norm = MetaNorm.fit(pool)
    meta = _meta(data, pool, norm, encoder_id, c_bar, config, None, extra_meta)
    score, cost = est.predict(data.zx)
    known = est.fitted[data.model_idx]
    meta["ridge_fit"] = {"alpha": alpha, "val_loss_by_alpha": {str(a): v for a, v in losses.items()}}
    meta["validation"] = {
        "seconds": round(time.monotonic() - started, 3),
        "train_rows": len(data),
        "val_rows": len(val_rows),
        "train_loss": _weighted_loss(
            score[known], cost[known], data.subset(np.flatnonzero(known)), config.kappa
        )[0],
        "val_loss": losses.get(alpha),
    }
    meta["checkpoint_id"] = state_hash(None, est)
    log.info("mtrouter ridge: alpha %g in %.1fs", alpha, meta["validation"]["seconds"])
    return Checkpoint(net=None, pool=tuple(s.name for s in pool), meta=meta, ridge=est)


def combine(mlp: Checkpoint, stage1: Checkpoint) -> Checkpoint:
    """The ensemble: the MLP's meta with the ridge's fit recorded beside it."""
    meta = {**mlp.meta, "ridge_fit": {**stage1.meta["ridge_fit"], "validation": stage1.meta["validation"]}}
    meta["checkpoint_id"] = state_hash(mlp.net, stage1.ridge)
    return Checkpoint(net=mlp.net, pool=mlp.pool, meta=meta, ridge=stage1.ridge)


# ------------------------------------------------------------------ the staged choice


@dataclass(frozen=True)
class Predictions:
    """Out-of-fold estimates of one estimator kind for every training row: score and cost [n, M]."""

    score: np.ndarray
    cost: np.ndarray


# ({kind: out-of-fold predictions}, row indices of each fold) -> {kind: merit on each fold}, higher is
# better
Criterion = Callable[[Mapping[str, Predictions], Sequence[np.ndarray]], dict[str, np.ndarray]]

# `auto`'s candidates, least flexible first: the ensemble shrinks the MLP halfway to the ridge
SIMPLEST_FIRST = ("ridge", "ensemble", "mlp")


def episode_folds(episode: np.ndarray, k: int, seed: int) -> list[np.ndarray]:
    """Row indices of `k` folds of whole episodes (seeded); fewer folds when there are fewer episodes."""
    episode = np.asarray(episode).astype(str)
    names = np.random.default_rng(seed).permutation(np.unique(episode))
    k = min(k, len(names))
    if k < 2:
        raise ValueError(f"cross-validation needs at least 2 episodes, got {len(names)}")
    return [np.flatnonzero(np.isin(episode, names[i::k])) for i in range(k)]


def cross_validate(
    data: TrainingSet,
    pool: Sequence[ModelSpec],
    *,
    encoder_id: str,
    c_bar: float,
    configs: Mapping[str, TrainConfig],
    folds: Sequence[np.ndarray],
    threads: int = 1,
) -> tuple[dict[str, Predictions], float]:
    """Out-of-fold predictions of the ridge, of the MLP under each named config (`configs`, e.g.
    {"mlp": cfg}), and of each MLP averaged with the ridge ("ensemble" for "mlp", "ensemble[x]" for
    "mlp[x]"), plus the seconds spent fitting. Fold f trains with seed config.seed + f."""
    n, m = len(data), len(pool)
    names = [s.name for s in pool]
    out: dict[str, Predictions] = {}
    started = time.monotonic()
    for f, held in enumerate(folds):
        rest = data.subset(np.setdiff1d(np.arange(n), held))
        zx = data.zx[held]
        base = next(iter(configs.values()), DEFAULT_CONFIG)
        stage1 = fit_ridge(rest, pool, encoder_id=encoder_id, c_bar=c_bar, config=_reseed(base, f))
        fold = {"ridge": stage1}
        for name, config in configs.items():
            mlp = fit(
                rest, pool, encoder_id=encoder_id, c_bar=c_bar, config=_reseed(config, f), threads=threads
            )
            fold[name] = mlp
            fold[name.replace("mlp", "ensemble", 1)] = combine(mlp, stage1)
        for kind, checkpoint in fold.items():
            pred = out.setdefault(kind, Predictions(np.zeros((n, m)), np.zeros((n, m))))
            pred.score[held], pred.cost[held] = checkpoint.predict(zx, names)
    return out, time.monotonic() - started


def _reseed(config: TrainConfig, offset: int) -> TrainConfig:
    return TrainConfig(**{**asdict(config), "seed": config.seed + offset})


def mse_criterion(data: TrainingSet, kappa: float) -> Criterion:
    """For logged (bandit) data, where only the chosen model's outcome is known: minus the held-out
    weighted loss on the logged model, per fold."""

    def merit(predictions: Mapping[str, Predictions], folds: Sequence[np.ndarray]) -> dict[str, np.ndarray]:
        return {
            k: np.array([-_weighted_loss(p.score[f], p.cost[f], data.subset(f), kappa)[0] for f in folds])
            for k, p in predictions.items()
        }

    return merit


def one_standard_error_choice(merit: Mapping[str, np.ndarray]) -> tuple[str, dict[str, Any]]:
    """The least flexible kind (`SIMPLEST_FIRST`) whose mean fold merit is within one standard error of
    the best kind's; the error is that of the paired per-fold difference from the best.

    Why not the best mean alone: the kinds' out-of-fold merits often differ by less than they move
    between folds and training seeds, so the top mean can be a fold's luck. This is the
    one-standard-error rule of cross-validation (Hastie, Tibshirani and Friedman, ESL §7.10): prefer
    the simpler model unless the more flexible one is better by more than CV can resolve."""
    means = {k: float(np.mean(v)) for k, v in merit.items()}
    best = max(SIMPLEST_FIRST, key=lambda k: means[k])  # first maximum: the simpler
    errors = {}
    for kind in SIMPLEST_FIRST:
        gap = np.asarray(merit[best]) - np.asarray(merit[kind])
        errors[kind] = float(gap.std(ddof=1) / math.sqrt(len(gap))) if len(gap) > 1 else 0.0
    chosen = next(k for k in SIMPLEST_FIRST if means[best] - means[k] <= errors[k])
    return chosen, {
        "rule": "least flexible kind within one standard error (paired, over folds) of the best mean",
        "merit": means,
        "merit_per_fold": {k: [float(x) for x in merit[k]] for k in SIMPLEST_FIRST},
        "best_mean": best,
        "standard_error_vs_best": errors,
    }


def mlp_stage_reached(data: TrainingSet, n_models: int) -> tuple[bool, str]:
    """The reference's stage-2 entry: enough rows overall and for every model."""
    per_model = np.bincount(data.model_idx, minlength=n_models)
    ok = len(data) >= MLP_MIN_ROWS and per_model.min() >= MLP_MIN_ROWS_PER_MODEL
    return bool(ok), (
        f"{len(data)} rows (stage 2 needs {MLP_MIN_ROWS}), fewest for one model {int(per_model.min())} "
        f"(needs {MLP_MIN_ROWS_PER_MODEL})"
    )


def fit_estimator(
    data: TrainingSet,
    pool: Sequence[ModelSpec],
    *,
    estimator: str = "auto",
    encoder_id: str,
    c_bar: float,
    config: TrainConfig = DEFAULT_CONFIG,
    init: Checkpoint | None = None,
    extra_meta: Mapping[str, Any] | None = None,
    threads: int = 1,
    folds: int = CV_FOLDS,
    criterion: Criterion | None = None,
) -> Checkpoint:
    """A checkpoint of kind `estimator` (one of `ESTIMATORS`). `auto` chooses ridge below the stage-2
    entry condition, else by `criterion` (default `mse_criterion`) on `folds` episode-grouped folds
    of `data`: the least flexible kind within one standard error of the best
    (`one_standard_error_choice`). The choice and the figures behind it are in meta["selection"].
    `init` warm-starts the MLP only."""
    if estimator not in ESTIMATORS:
        raise ValueError(f"estimator must be one of {ESTIMATORS}, not {estimator!r}")
    started = time.monotonic()
    data.check(len(pool))
    _check_extra(extra_meta)
    selection: dict[str, Any] = {"requested": estimator}
    kind = estimator
    if estimator == "auto":
        reached, why = mlp_stage_reached(data, len(pool))
        selection["stage_rule"] = why
        if not reached:
            kind = "ridge"
        else:
            split = episode_folds(data.episode, folds, config.seed)
            oof, seconds = cross_validate(
                data,
                pool,
                encoder_id=encoder_id,
                c_bar=c_bar,
                configs={"mlp": config},
                folds=split,
                threads=threads,
            )
            merit = (criterion or mse_criterion(data, config.kappa))(oof, split)
            kind, why = one_standard_error_choice(merit)
            selection.update(folds=len(split), cv_seconds=round(seconds, 2), **why)
    selection["chosen"] = kind
    stage1 = (
        fit_ridge(data, pool, encoder_id=encoder_id, c_bar=c_bar, config=config, extra_meta=extra_meta)
        if kind != "mlp"
        else None
    )
    mlp = (
        fit(
            data,
            pool,
            encoder_id=encoder_id,
            c_bar=c_bar,
            config=config,
            init=init,
            extra_meta=extra_meta,
            threads=threads,
        )
        if kind != "ridge"
        else None
    )
    checkpoint = combine(mlp, stage1) if mlp and stage1 else (mlp or stage1)
    assert checkpoint is not None  # kind is one of ridge, mlp, ensemble here
    checkpoint.meta["selection"] = selection
    checkpoint.meta["fit_seconds"] = round(time.monotonic() - started, 2)
    log.info("mtrouter estimator: %s (%s)", kind, selection)
    return checkpoint
