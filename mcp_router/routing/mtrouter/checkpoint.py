"""A trained MTRouter: the network, the pool it was trained on, and the metadata needed to use it safely.

Tensors go in a state-dict file loaded with `weights_only=True` (no pickle code runs on load); the rest
goes in a JSON sidecar next to it (reference §11.6). Both are written to a temporary file, fsynced and
renamed, so a crash never leaves a half-written checkpoint under the real name.

A checkpoint is tied to its pool: the network's rows are models by index. `with_pool` adapts it to a
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

log = logging.getLogger(__name__)

FORMAT = "mtrouter-checkpoint"
FORMAT_VERSION = 1


class PoolMismatch(ValueError):
    """The configured pool cannot be served by this checkpoint without retraining."""


def sidecar_path(path: Path) -> Path:
    return Path(path).with_suffix(".json")


def state_hash(net: MTRouterNet) -> str:
    """A short content hash of the network's tensors: the checkpoint id logged with every decision."""
    digest = hashlib.sha256()
    for key, tensor in sorted(net.state_dict().items()):
        digest.update(key.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


@dataclass
class Checkpoint:
    """`net` rows are `pool` in order. `meta` holds at least: format, format_version, encoder_id, zx_dim,
    c_bar, meta_norm, specs, net (hidden, dropout), train (config), validation, parent, created_at,
    checkpoint_id, masked (models removed by `with_pool`, scored −inf)."""

    net: MTRouterNet
    pool: tuple[str, ...]
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.pool = tuple(self.pool)
        if len(self.pool) != self.net.n_models or len(set(self.pool)) != len(self.pool):
            raise ValueError(f"pool {self.pool} must name the network's {self.net.n_models} rows, once each")

    @property
    def checkpoint_id(self) -> str:
        return str(self.meta.get("checkpoint_id") or state_hash(self.net))

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

        A model the network has no row for, or one masked by `with_pool`, gets score −inf and cost 0
        (0 rather than NaN/inf so `value` stays −inf for every λ)."""
        zx = np.asarray(zx, dtype=np.float32)
        if zx.ndim != 2 or zx.shape[1] != self.net.zx_dim:
            raise ValueError(
                f"zx must be [n, {self.net.zx_dim}] (this checkpoint's encoder "
                f"{self.meta.get('encoder_id')!r}), got {zx.shape}"
            )
        self.net.eval()
        with torch.inference_mode():
            score, cost = self.net(torch.from_numpy(zx))
        score_np, cost_np = score.numpy().astype(np.float64), cost.numpy().astype(np.float64)
        names = self.pool if pool is None else tuple(pool)
        masked = set(self.masked)
        row = {name: i for i, name in enumerate(self.pool) if name not in masked}
        out_s = np.full((zx.shape[0], len(names)), -np.inf)
        out_c = np.zeros((zx.shape[0], len(names)))
        for j, name in enumerate(names):
            if name in row:
                out_s[:, j], out_c[:, j] = score_np[:, row[name]], cost_np[:, row[name]]
        return out_s, out_c

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
        net, meta = self.net, dict(self.meta)
        if new:
            rows = self.meta_norm.apply(np.stack([meta_features(s) for s in new]))
            net = self.net.extended(rows)
            meta["specs"] = [*meta.get("specs", []), *(spec_to_dict(s) for s in new)]
            meta["derived_from"] = self.checkpoint_id
            meta["checkpoint_id"] = state_hash(net)
            log.info("checkpoint %s: added %s with zero residual", self.checkpoint_id, [s.name for s in new])
        meta["masked"] = [n for n in self.pool if n not in in_specs]
        return Checkpoint(net=net, pool=(*self.pool, *(s.name for s in new)), meta=meta)

    def save(self, path: Path) -> None:
        """Write `path` (state dict) and its ".json" sidecar, each atomically; the sidecar last, so a
        sidecar always describes weights that are on disk."""
        path = Path(path)
        self.meta["checkpoint_id"] = state_hash(self.net)
        state = {k: v.detach().cpu().clone() for k, v in self.net.state_dict().items()}
        sidecar = {
            **self.meta,
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "pool": list(self.pool),
            "zx_dim": self.net.zx_dim,
            "net": {"hidden": self.net.hidden, "dropout": self.net.dropout},
        }
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
        if meta.get("format_version") != FORMAT_VERSION:
            raise ValueError(
                f"{side}: checkpoint format version {meta.get('format_version')!r}, this code reads "
                f"{FORMAT_VERSION}; retrain, or load it with the mcp-router version that wrote it"
            )
        state = torch.load(path, map_location="cpu", weights_only=True)
        try:
            net = MTRouterNet(
                int(meta["zx_dim"]),
                state["meta"].numpy(),
                hidden=int(meta["net"]["hidden"]),
                dropout=float(meta["net"]["dropout"]),
            )
            net.load_state_dict(state)
        except (KeyError, RuntimeError, ValueError) as exc:
            raise ValueError(f"{path}: weights do not match the sidecar {side} ({exc})") from None
        if state_hash(net) != meta.get("checkpoint_id"):
            raise ValueError(
                f"{path}: weights hash {state_hash(net)} but sidecar {side} describes "
                f"{meta.get('checkpoint_id')}; the two files are from different saves"
            )
        net.eval()
        pool = meta.pop("pool")
        for key in ("format", "format_version", "net"):  # file-level keys, rewritten by `save`
            meta.pop(key)
        return cls(net=net, pool=tuple(pool), meta=meta)


def value(score_hat: np.ndarray, cost_hat: np.ndarray, lam: float) -> np.ndarray:
    """Q_λ = ŝ − λ·(exp(ĉ) − 1): the predicted score minus λ times the predicted remaining cost in units
    of the mean episode cost (ĉ is log(1 + C̃))."""
    return np.asarray(score_hat) - lam * np.expm1(np.asarray(cost_hat))
