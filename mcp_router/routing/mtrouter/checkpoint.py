"""A trained MTRouter: the network, the pool it was trained on, and the metadata needed to use it safely.

Tensors go in a state-dict file loaded with `weights_only=True` (no pickle code runs on load); the rest
goes in a JSON sidecar next to it (reference §11.6). Both are written to a temporary file, fsynced and
renamed, so a crash never leaves a half-written checkpoint under the real name.

A checkpoint holds the estimator `train.fit_estimator` chose (reference §11.4): the MLP network, the
per-model ridge of stage 1, or both averaged (`ensemble`). Every kind answers `predict` the same way,
so the server serves them alike. Ridge coefficients are tensors in the same state-dict file; format
version 1 files (MLP only, written before the ridge existed) still load.

A checkpoint is tied to its pool: the estimator's rows are models by index. `with_pool` adapts it to a
configured pool without retraining where that is sound - new models are appended with a zero residual
and metadata normalised by the frozen table, removed models are masked - and refuses a reordering of
the models both pools share, which signals a different pool that needs retraining.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mcp_router.atomic import atomic_write
from mcp_router.routing.mtrouter.network import MTRouterNet
from mcp_router.routing.mtrouter.pool import MetaNorm, ModelSpec, meta_features, spec_from_dict, spec_to_dict
from mcp_router.routing.mtrouter.ridge import RidgeEstimator

log = logging.getLogger(__name__)

FORMAT = "mtrouter-checkpoint"
FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)  # 1: MLP only, no "estimator" key
ESTIMATOR_KINDS = ("mlp", "ridge", "ensemble")
_RIDGE_KEYS = ("ridge.coef", "ridge.intercept", "ridge.fitted")


class PoolMismatch(ValueError):
    """The configured pool cannot be served by this checkpoint without retraining."""


def sidecar_path(path: Path) -> Path:
    return Path(path).with_suffix(".json")


def _ridge_state(ridge: RidgeEstimator) -> dict[str, torch.Tensor]:
    arrays = (ridge.coef, ridge.intercept, ridge.fitted)
    return {
        key: torch.from_numpy(np.ascontiguousarray(a)) for key, a in zip(_RIDGE_KEYS, arrays, strict=True)
    }


def state_hash(net: MTRouterNet | None, ridge: RidgeEstimator | None = None) -> str:
    """A short content hash of the estimator's tensors: the checkpoint id logged with every decision.
    An MLP-only checkpoint hashes exactly as format version 1 did, so old ids stay valid."""
    state = {
        **(net.state_dict() if net is not None else {}),
        **(_ridge_state(ridge) if ridge is not None else {}),
    }
    digest = hashlib.sha256()
    for key, tensor in sorted(state.items()):
        digest.update(key.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


@dataclass
class Checkpoint:
    """The rows of `net` and of `ridge` (either may be None, not both) are `pool` in order. `meta` holds
    at least: format, format_version, estimator, encoder_id, zx_dim, c_bar, meta_norm, specs, net
    (hidden, dropout; MLP only), train (config), validation, parent, created_at, checkpoint_id, masked
    (models removed by `with_pool`, scored −inf)."""

    net: MTRouterNet | None
    pool: tuple[str, ...]
    meta: dict[str, Any] = field(default_factory=dict)
    ridge: RidgeEstimator | None = None

    def __post_init__(self) -> None:
        self.pool = tuple(self.pool)
        parts = [p for p in (self.net, self.ridge) if p is not None]
        if not parts:
            raise ValueError("a checkpoint needs an MLP network, a ridge estimator, or both")
        if self.net is not None and self.ridge is not None and self.net.zx_dim != self.ridge.zx_dim:
            raise ValueError(f"MLP zx_dim {self.net.zx_dim} and ridge zx_dim {self.ridge.zx_dim} differ")
        for part in parts:
            if len(self.pool) != part.n_models or len(set(self.pool)) != len(self.pool):
                raise ValueError(
                    f"pool {self.pool} must name the estimator's {part.n_models} rows, once each"
                )

    @property
    def estimator(self) -> str:
        """The estimator kind: mlp, ridge, or ensemble (the average of the two)."""
        if self.net is not None and self.ridge is not None:
            return "ensemble"
        return "mlp" if self.net is not None else "ridge"

    @property
    def zx_dim(self) -> int:
        if self.net is not None:
            return self.net.zx_dim
        assert self.ridge is not None  # __post_init__: at least one part
        return self.ridge.zx_dim

    @property
    def checkpoint_id(self) -> str:
        return str(self.meta.get("checkpoint_id") or state_hash(self.net, self.ridge))

    @property
    def meta_norm(self) -> MetaNorm:
        return MetaNorm.from_dict(self.meta["meta_norm"])

    @property
    def masked(self) -> tuple[str, ...]:
        return tuple(self.meta.get("masked", ()))

    def specs(self) -> list[ModelSpec]:
        """The specs of `pool`, as recorded when the rows were made."""
        return [spec_from_dict(d["name"], d, where="checkpoint sidecar") for d in self.meta.get("specs", [])]

    def predict(self, zx: np.ndarray, pool: Sequence[str] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(score_hat, cost_hat), each [n, len(pool)] in the order of `pool` (default: own pool).

        A model the estimator has no row for, or one masked by `with_pool`, gets score −inf and cost 0
        (0 rather than NaN/inf so `value` stays −inf for every λ). An ensemble averages the MLP and the
        ridge; where the ridge has no fit for a model (no training rows, or added since) the MLP's
        estimate stands alone, and a ridge-only checkpoint cannot score that model at all."""
        zx = np.asarray(zx, dtype=np.float32)
        if zx.ndim != 2 or zx.shape[1] != self.zx_dim:
            raise ValueError(
                f"zx must be [n, {self.zx_dim}] (this checkpoint's encoder "
                f"{self.meta.get('encoder_id')!r}), got {zx.shape}"
            )
        score_np, cost_np = self._raw_predict(zx)
        names = self.pool if pool is None else tuple(pool)
        masked = set(self.masked)
        row = {name: i for i, name in enumerate(self.pool) if name not in masked}
        out_s = np.full((zx.shape[0], len(names)), -np.inf)
        out_c = np.zeros((zx.shape[0], len(names)))
        for j, name in enumerate(names):
            if name in row and np.all(np.isfinite(score_np[:, row[name]])):
                out_s[:, j], out_c[:, j] = score_np[:, row[name]], cost_np[:, row[name]]
        return out_s, out_c

    def _raw_predict(self, zx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(score, cost) [n, own pool] of the estimator; NaN where the ridge alone has no fit."""
        if self.net is None:
            assert self.ridge is not None  # __post_init__: at least one part
            return self.ridge.predict(zx)
        self.net.eval()
        with torch.inference_mode():
            score, cost = self.net(torch.from_numpy(zx))
        mlp_s, mlp_c = score.numpy().astype(np.float64), cost.numpy().astype(np.float64)
        if self.ridge is None:
            return mlp_s, mlp_c
        ridge_s, ridge_c = self.ridge.predict(zx)
        fitted = self.ridge.fitted
        return np.where(fitted, (mlp_s + ridge_s) / 2, mlp_s), np.where(fitted, (mlp_c + ridge_c) / 2, mlp_c)

    def with_pool(self, specs: Sequence[ModelSpec]) -> Checkpoint:
        """This checkpoint adapted to the configured pool `specs`.

        Models in both must keep their relative order, else `PoolMismatch`. New models get network rows
        after the existing ones (zero residual, metadata normalised with the frozen table), whatever
        their position in `specs`; models missing from `specs` are masked (they keep their rows, so
        putting them back unmasks them). Known models keep the metadata they were trained with.
        """
        names = [s.name for s in specs]
        if len(set(names)) != len(names):
            raise ValueError(f"pool lists a model twice: {names}")
        in_specs, known = set(names), set(self.pool)
        shared_ckpt = [n for n in self.pool if n in in_specs]
        shared_cfg = [n for n in names if n in known]
        if shared_ckpt != shared_cfg:
            raise PoolMismatch(
                f"the models in both pools are ordered {shared_ckpt} in checkpoint {self.checkpoint_id} but "
                f"{shared_cfg} in the configured pool; restore the checkpoint's order in the models file, "
                "or retrain the router on the new pool"
            )
        new = [s for s in specs if s.name not in known]
        net, ridge, meta = self.net, self.ridge, dict(self.meta)
        if new:
            if net is not None:
                net = net.extended(self.meta_norm.apply(np.stack([meta_features(s) for s in new])))
            if ridge is not None:
                ridge = ridge.extended(len(new))
            meta["specs"] = [*meta.get("specs", []), *(spec_to_dict(s) for s in new)]
            meta["derived_from"] = self.checkpoint_id
            meta["checkpoint_id"] = state_hash(net, ridge)
            log.info(
                "checkpoint %s (%s): added %s (%s)",
                self.checkpoint_id,
                self.estimator,
                [s.name for s in new],
                "no ridge estimate until retrained" if net is None else "zero residual",
            )
        meta["masked"] = [n for n in self.pool if n not in in_specs]
        return Checkpoint(net=net, pool=(*self.pool, *(s.name for s in new)), meta=meta, ridge=ridge)

    def save(self, path: Path) -> None:
        """Write `path` (state dict) and its ".json" sidecar, each atomically; the sidecar last, so a
        sidecar always describes weights that are on disk."""
        path = Path(path)
        self.meta["checkpoint_id"] = state_hash(self.net, self.ridge)
        state = (
            {k: v.detach().cpu().clone() for k, v in self.net.state_dict().items()}
            if self.net is not None
            else {}
        )
        sidecar = {
            **self.meta,
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "estimator": self.estimator,
            "pool": list(self.pool),
            "zx_dim": self.zx_dim,
        }
        if self.net is not None:
            sidecar["net"] = {
                "hidden": self.net.hidden,
                "dropout": self.net.dropout,
                "members": self.net.members,
            }
        if self.ridge is not None:
            state.update(_ridge_state(self.ridge))
            sidecar["ridge"] = {"alpha": self.ridge.alpha}
        atomic_write(path, lambda fh: torch.save(state, fh))
        atomic_write(sidecar_path(path), lambda fh: fh.write(json.dumps(sidecar, indent=2).encode()))

    @classmethod
    def load(cls, path: Path) -> Checkpoint:
        path = Path(path)
        side = sidecar_path(path)
        if not path.is_file():
            raise FileNotFoundError(f"no checkpoint weights at {path}")
        if not side.is_file():
            raise FileNotFoundError(
                f"checkpoint {path} has no sidecar {side}; Checkpoint.save writes both files, "
                "copy them together"
            )
        try:
            meta = json.loads(side.read_text())
        except json.JSONDecodeError as exc:
            raise ValueError(f"{side}: not valid JSON ({exc})") from None
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise ValueError(f"{side}: not an MTRouter checkpoint sidecar (format {FORMAT!r} expected)")
        if meta.get("format_version") not in READABLE_VERSIONS:
            raise ValueError(
                f"{side}: checkpoint format version {meta.get('format_version')!r}, this code reads "
                f"{list(READABLE_VERSIONS)}; retrain, or load it with the mcp-router version that wrote it"
            )
        kind = meta.get("estimator", "mlp")
        if kind not in ESTIMATOR_KINDS:
            raise ValueError(f"{side}: unknown estimator {kind!r}, expected one of {ESTIMATOR_KINDS}")
        state = torch.load(path, map_location="cpu", weights_only=True)
        try:
            net = _load_net(state, meta) if kind != "ridge" else None
            ridge = _load_ridge(state, meta) if kind != "mlp" else None
        except (KeyError, RuntimeError, ValueError) as exc:
            raise ValueError(f"{path}: weights do not match the sidecar {side} ({exc})") from None
        if state_hash(net, ridge) != meta.get("checkpoint_id"):
            raise ValueError(
                f"{path}: weights hash {state_hash(net, ridge)} but sidecar {side} describes "
                f"{meta.get('checkpoint_id')}; the two files are from different saves"
            )
        pool = meta.pop("pool")
        for key in ("format", "format_version", "net", "ridge", "estimator"):  # rewritten by `save`
            meta.pop(key, None)
        return cls(net=net, pool=tuple(pool), meta=meta, ridge=ridge)


def _load_net(state: dict[str, torch.Tensor], meta: dict[str, Any]) -> MTRouterNet:
    net = MTRouterNet(
        int(meta["zx_dim"]),
        state["meta"].numpy(),
        hidden=int(meta["net"]["hidden"]),
        dropout=float(meta["net"]["dropout"]),
        members=int(meta["net"].get("members", 1)),  # written before bags: one network
    )
    net.load_any_state({k: v for k, v in state.items() if k not in _RIDGE_KEYS})
    return net.eval()


def _load_ridge(state: dict[str, torch.Tensor], meta: dict[str, Any]) -> RidgeEstimator:
    coef, intercept, fitted = (state[key].numpy() for key in _RIDGE_KEYS)
    if coef.ndim != 3 or coef.shape[1] != int(meta["zx_dim"]) or coef.shape[2] != 2:
        raise ValueError(f"ridge coefficients of shape {coef.shape}, expected [M, {meta['zx_dim']}, 2]")
    return RidgeEstimator(coef, intercept, fitted.astype(bool), float(meta["ridge"]["alpha"]))


def value(score_hat: np.ndarray, cost_hat: np.ndarray, lam: float) -> np.ndarray:
    """Q_λ = ŝ − λ·(exp(ĉ) − 1): the predicted score minus λ times the predicted remaining cost in units
    of the mean episode cost (ĉ is log(1 + C̃))."""
    return np.asarray(score_hat) - lam * np.expm1(np.asarray(cost_hat))
