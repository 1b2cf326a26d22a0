"""Stage 1 of the staged estimator (reference §11.4): per-model ridge regression on the history embedding.

A closed form needs no schedule, no early stopping and no seed, so it is the estimator to serve while
the logs are too small for the MLP. Each model gets its own linear score head and log-cost head on
z_x (the model's metadata is constant within its rows, so it would only move the intercept, which is
fitted per model anyway). The intercept is not penalised; a model with no rows has no estimate
(`fitted` is False) rather than a made-up one.

`solve_path` is the one ridge solver of the package: the per-model estimator here and the full-
information `linear` baseline of `evaluate` both call it. It eigendecomposes the D×D weighted Gram
matrix of the centred design once, after which every α costs one D×D product, for any number of rows.
numpy only, so evaluation and serving need no torch for it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

ALPHAS: tuple[float, ...] = (0.1, 1.0, 10.0, 100.0, 1000.0)


@dataclass(frozen=True)
class LinearMap:
    """y ≈ x @ coef + intercept, coef [D, T], intercept [T]."""

    coef: np.ndarray
    intercept: np.ndarray

    def predict(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(x, dtype=np.float64) @ self.coef + self.intercept


@dataclass(frozen=True)
class Design:
    """The centred, weighted design of a ridge fit, eigendecomposed once for every α and target."""

    x: np.ndarray  # [n, D]
    x_mean: np.ndarray  # [D]
    weighted: np.ndarray  # [n, D] (x − x̄_w) · w
    weight: np.ndarray  # [n]
    eigval: np.ndarray  # [D]
    eigvec: np.ndarray  # [D, D]

    @classmethod
    def of(cls, x: np.ndarray, weight: np.ndarray | None = None) -> Design:
        x = np.asarray(x, dtype=np.float64)
        if len(x) == 0:
            raise ValueError("ridge needs at least one row")
        w = np.ones(len(x)) if weight is None else np.asarray(weight, dtype=np.float64)
        x_mean = w @ x / w.sum()
        xc = x - x_mean
        weighted = xc * w[:, None]
        eigval, eigvec = np.linalg.eigh(weighted.T @ xc)
        # round-off can make the smallest eigenvalues slightly negative
        return cls(x, x_mean, weighted, w, np.clip(eigval, 0.0, None), eigvec)

    def same_as(self, x: np.ndarray, weight: np.ndarray) -> bool:
        """Whether (x, weight) is this design (full-information data: every model has the same rows)."""
        return np.array_equal(weight, self.weight) and np.array_equal(x, self.x)


def solve_path(
    x: np.ndarray,
    y: np.ndarray,
    alphas: Sequence[float],
    weight: np.ndarray | None = None,
    design: Design | None = None,
) -> list[LinearMap]:
    """Weighted ridge of every column of `y` [n, T] on `x` [n, D] for each α (intercept unpenalised):
    minimises Σ w_i (y_i − b − x_i·β)² + α‖β‖² per column. `design` reuses `Design.of(x, weight)`."""
    if any(a <= 0 for a in alphas):
        raise ValueError(f"ridge α must be > 0, got {list(alphas)}")
    design = design or Design.of(x, weight)
    y = np.asarray(y, dtype=np.float64).reshape(len(design.weight), -1)
    y_mean = design.weight @ y / design.weight.sum()
    projected = design.eigvec.T @ (design.weighted.T @ (y - y_mean))  # [D, T]
    maps = []
    for alpha in alphas:
        coef = design.eigvec @ (projected / (design.eigval + alpha)[:, None])
        maps.append(LinearMap(coef, y_mean - design.x_mean @ coef))
    return maps


@dataclass(frozen=True)
class RidgeEstimator:
    """Per-model score and log-cost heads: coef [M, D, 2], intercept [M, 2] (column 0 score, 1 cost);
    `fitted[m]` is False for a model that had no training rows (or was added after training)."""

    coef: np.ndarray
    intercept: np.ndarray
    fitted: np.ndarray
    alpha: float

    @property
    def n_models(self) -> int:
        return int(self.coef.shape[0])

    @property
    def zx_dim(self) -> int:
        return int(self.coef.shape[1])

    def predict(self, zx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(score, cost) [n, M] each; NaN for the columns of unfitted models."""
        flat = self.coef.transpose(1, 0, 2).reshape(self.zx_dim, -1)  # one BLAS product for all heads
        out = (np.asarray(zx, dtype=np.float64) @ flat).reshape(len(zx), self.n_models, 2) + self.intercept
        out[:, ~self.fitted, :] = np.nan
        return out[..., 0], out[..., 1]

    def extended(self, k: int) -> RidgeEstimator:
        """A copy with `k` unfitted models appended (for `Checkpoint.with_pool`)."""
        return RidgeEstimator(
            np.concatenate([self.coef, np.zeros((k, self.zx_dim, 2))]),
            np.concatenate([self.intercept, np.zeros((k, 2))]),
            np.concatenate([self.fitted, np.zeros(k, dtype=bool)]),
            self.alpha,
        )


def fit_path(
    zx: np.ndarray,
    model_idx: np.ndarray,
    score: np.ndarray,
    cost: np.ndarray,
    weight: np.ndarray,
    n_models: int,
    alphas: Sequence[float] = ALPHAS,
) -> list[RidgeEstimator]:
    """One `RidgeEstimator` per α, each model fitted on its own rows (the logged choices of that model)."""
    zx = np.asarray(zx, dtype=np.float64)
    model_idx = np.asarray(model_idx)
    coef = np.zeros((len(alphas), n_models, zx.shape[1], 2))
    intercept = np.zeros((len(alphas), n_models, 2))
    fitted = np.zeros(n_models, dtype=bool)
    targets = np.stack([np.asarray(score), np.asarray(cost)], axis=1)
    design: Design | None = None
    for m in range(n_models):
        rows = np.flatnonzero(model_idx == m)
        if len(rows) == 0:
            continue
        fitted[m] = True
        x, w = zx[rows], np.asarray(weight, dtype=np.float64)[rows]
        if design is None or not design.same_as(x, w):
            design = Design.of(x, w)
        for a, linear in enumerate(solve_path(x, targets[rows], alphas, design=design)):
            coef[a, m], intercept[a, m] = linear.coef, linear.intercept
    return [
        RidgeEstimator(coef[a], intercept[a], fitted.copy(), float(alpha)) for a, alpha in enumerate(alphas)
    ]
