"""Offline fitting of an MTRouter network on logged steps (reference §7.3–§7.5, §11.2).

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
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from mcp_router.cpu import torch_threads
from mcp_router.routing.mtrouter.checkpoint import Checkpoint, PoolMismatch, state_hash
from mcp_router.routing.mtrouter.network import MTRouterNet
from mcp_router.routing.mtrouter.pool import MetaNorm, ModelSpec, meta_features, spec_to_dict

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
)


@dataclass(frozen=True)
class TrainConfig:
    lr: float = 1e-3
    weight_decay: float = 0.01
    batch_size: int = 64
    epochs: int = 100
    patience: int = 3  # epochs without a better validation loss before stopping
    val_fraction: float = 0.1  # of distinct episodes
    residual_weight: float = 1e-4  # w in w·‖U‖²_F (the authors' training config; their code default is 1e-2)
    kappa: float = 1.0  # weight of the cost head's loss
    min_lr: float = 1e-5  # end of the cosine schedule
    grad_clip: float = 1.0
    seed: int = 0


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
    net: MTRouterNet, tensors: Mapping[str, torch.Tensor], rows: torch.Tensor, kappa: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Weighted (total data loss, score MSE, cost MSE) over `rows` (no regulariser)."""
    s_hat, c_hat = net(tensors["zx"][rows], tensors["model_idx"][rows])
    w = tensors["weight"][rows]
    s_mse = (w * (s_hat - tensors["score"][rows]).pow(2)).sum() / w.sum()
    c_mse = (w * (c_hat - tensors["cost"][rows]).pow(2)).sum() / w.sum()
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
    data: TrainingSet, specs: Sequence[ModelSpec], encoder_id: str, init: Checkpoint | None
) -> tuple[MTRouterNet, MetaNorm]:
    """A fresh network with a newly fitted normalisation table, or a copy of `init`'s network (its
    frozen table, its metadata rows refreshed from `specs`) for a warm start."""
    names = tuple(s.name for s in specs)
    feats = np.stack([meta_features(s) for s in specs])
    if init is None:
        norm = MetaNorm.fit(specs)
        return MTRouterNet(data.zx.shape[1], norm.apply(feats)), norm
    if init.pool != names or init.masked:
        raise PoolMismatch(
            f"warm start needs the checkpoint's pool {list(init.pool)} (masked: {list(init.masked)}), "
            f"got {list(names)}; train from scratch for a different pool"
        )
    if init.net.zx_dim != data.zx.shape[1] or init.meta.get("encoder_id") != encoder_id:
        raise ValueError(
            f"warm start from checkpoint {init.checkpoint_id} (encoder {init.meta.get('encoder_id')!r}, "
            f"zx_dim {init.net.zx_dim}) with encoder {encoder_id!r}, zx_dim {data.zx.shape[1]}; "
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
    config: TrainConfig = TrainConfig(),
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
    clash = set(extra_meta or {}) & set(_FIT_KEYS)
    if clash:
        raise ValueError(f"extra_meta may not set {sorted(clash)}: fit writes those keys")
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
        net, norm = _initial_net(data, pool, encoder_id, init)
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
                loss, _, _ = _losses(net, tensors, rows, config.kappa)
                batch_w = float(tensors["weight"][rows].sum())
                opt.zero_grad(set_to_none=True)
                (loss + config.residual_weight * net.residual_penalty()).backward()
                torch.nn.utils.clip_grad_norm_(net.parameters(), config.grad_clip, foreach=True)
                opt.step()
                total, total_w = total + loss.item() * batch_w, total_w + batch_w
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
    meta: dict[str, Any] = {
        "encoder_id": encoder_id,
        "zx_dim": net.zx_dim,
        "c_bar": c_bar,
        "meta_norm": norm.to_dict(),
        "specs": [spec_to_dict(s) for s in pool],
        "train": asdict(config),
        "validation": validation,
        "parent": init.checkpoint_id if init is not None else None,
        "created_at": time.time(),
        "checkpoint_id": state_hash(net),
        "masked": [],
    }
    log.info(
        "mtrouter fit: %d epochs in %.1fs, val score MSE %s, cost MSE %s",
        epochs_run,
        validation["seconds"],
        validation["score_mse"],
        validation["cost_mse"],
    )
    meta = {"watermark": None, **(extra_meta or {}), **meta}
    return Checkpoint(net=net, pool=tuple(s.name for s in pool), meta=meta)
