"""Off-policy evaluation: what a target policy would have earned, estimated from decisions logged
under another policy, using the propensities the logging policy recorded.

**Unit.** One logged decision (a step). Step i has the logged action a_i (the model the logging policy
*chose*), its propensity μ_i = μ(a_i | x_i) > 0, and the observed outcome: quality q_i and cost c_i
(in whatever unit λ is meant for). The value of a step is v = q − λ·c. Every estimate below is a mean
per step; with one step per session it is the value per session.

**Estimators**, for r ∈ {q, c, v}, with w_i = π(a_i | x_i) / μ_i:
- IPS:   V̂ = (1/n)·Σ w_i·r_i. Unbiased when the propensities are exact; its variance grows with the
  weights (a target that often picks what the logging policy rarely explored).
- SNIPS: V̂ = Σ w_i·r_i / Σ w_i. Self-normalised: a small bias, less variance, and never outside the
  range of the outcomes.
- DR:    V̂ = (1/n)·Σ [Σ_a π(a | x_i)·r̂(x_i, a) + w_i·(r_i − r̂(x_i, a_i))], with r̂ a direct model
  (predicted quality and cost per model). Unbiased whatever r̂ is, as long as the propensities are
  exact; a good r̂ only lowers the variance. A non-finite prediction (a model the direct model has no
  row for) counts as 0, which leaves that term to the IPS correction.
All three are linear in r with shared weights, so each value estimate is exactly its quality estimate
minus λ times its cost estimate.

**Fallbacks.** When the chosen model failed and another served the call, the action is still the
*choice* a_i, with its logged propensity, and the outcome is what the call produced (the fallback's
quality and cost): a fallback is a consequence of choosing a_i, which a target choosing a_i would
meet in the same way. The direct model's r̂(x, a_i) is the prediction for a_i itself; the DR
correction absorbs the difference.

**Intervals.** Percentile bootstrap over whole sessions (the steps of a session share its outcome, so
they are not independent), from a seeded generator. Two policies are compared on the *same* resamples,
so the interval of their difference excludes the variance they share (a paired bootstrap).

numpy only: the server, the trainer and the benchmark share it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

ESTIMATORS = ("ips", "snips", "dr")
METRICS = ("quality", "cost", "value")
_RESAMPLE_CHUNK = 128  # resamples drawn at once: bounds memory at chunk × sessions counts

# columns of the per-session sums every estimate is computed from
_N, _W, _WQ, _WC, _DQ, _DC = range(6)


@dataclass(frozen=True)
class LoggedSteps:
    """The logged side: one entry per step. `session` groups steps for the bootstrap."""

    session: np.ndarray  # [n] session ids
    action: np.ndarray  # [n] int: index of the chosen model
    propensity: np.ndarray  # [n] μ(a_i | x_i) in (0, 1]
    quality: np.ndarray  # [n]
    cost: np.ndarray  # [n]

    def __post_init__(self) -> None:
        n = len(self.action)
        for name in ("session", "propensity", "quality", "cost"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"{name} has {len(getattr(self, name))} entries, action has {n}")
        if n == 0:
            raise ValueError("no logged step to evaluate on")
        p = np.asarray(self.propensity, dtype=np.float64)
        if not np.all((p > 0) & (p <= 1)):
            raise ValueError("propensities must be in (0, 1]; a step without one cannot be evaluated on")
        if not (np.all(np.isfinite(self.quality)) and np.all(np.isfinite(self.cost))):
            raise ValueError("logged quality and cost must be finite")

    def __len__(self) -> int:
        return len(self.action)


@dataclass(frozen=True)
class DirectModel:
    """Predicted quality and cost of every model at every logged step, [n, M] each (same units as
    the logged outcomes)."""

    quality: np.ndarray
    cost: np.ndarray


@dataclass(frozen=True)
class Interval:
    estimate: float
    low: float
    high: float

    def to_dict(self) -> dict[str, float]:
        return {"estimate": self.estimate, "low": self.low, "high": self.high}


@dataclass(frozen=True)
class PolicyEstimate:
    """`intervals[estimator][metric]`, and how well the log supports the target (`support`)."""

    intervals: dict[str, dict[str, Interval]]
    support: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        return {
            "estimates": {e: {m: i.to_dict() for m, i in ms.items()} for e, ms in self.intervals.items()},
            "support": self.support,
        }


@dataclass(frozen=True)
class Comparison:
    """Two policies on the same log: each one's estimates, and their difference (candidate − baseline)
    on the same bootstrap resamples."""

    candidate: PolicyEstimate
    baseline: PolicyEstimate
    difference: dict[str, dict[str, Interval]]
    steps: int
    sessions: int
    lam: float
    level: float
    resamples: int
    seed: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "candidate": self.candidate.to_dict(),
            "baseline": self.baseline.to_dict(),
            "difference": {e: {m: i.to_dict() for m, i in ms.items()} for e, ms in self.difference.items()},
            "steps": self.steps,
            "sessions": self.sessions,
            "lambda": self.lam,
            "level": self.level,
            "resamples": self.resamples,
            "seed": self.seed,
        }


def mixed_probs(q_values: np.ndarray, beta: float = 1.0) -> np.ndarray:
    """π(a | x_i) [n, M] of the β-mixed greedy policy on `q_values` (−inf: not allowed): the argmax
    with probability β (ties to the first model, the pool order, as `policy.pick`), otherwise uniform
    over the allowed models. β = 1 is the deterministic greedy policy."""
    if not 0.0 <= beta <= 1.0:
        raise ValueError(f"beta must be in [0, 1], got {beta}")
    q = np.asarray(q_values, dtype=np.float64)
    allowed = np.isfinite(q)
    empty = ~allowed.any(axis=1)
    if empty.any():
        raise ValueError(f"step {int(np.argmax(empty))} allows no model: every step needs one")
    greedy = np.argmax(np.where(allowed, q, -np.inf), axis=1)
    probs = (1.0 - beta) * allowed / allowed.sum(axis=1, keepdims=True)
    probs[np.arange(len(q)), greedy] += beta
    return probs


def _session_sums(logged: LoggedSteps, target: np.ndarray, model: DirectModel) -> np.ndarray:
    """Per-session sums of the six quantities every estimator needs: [S, 6]."""
    n = len(logged)
    target = np.asarray(target, dtype=np.float64)
    if target.ndim != 2 or target.shape[0] != n:
        raise ValueError(f"target probabilities must be [n={n}, M], got {target.shape}")
    if model.quality.shape != target.shape or model.cost.shape != target.shape:
        raise ValueError(f"direct-model predictions must be {target.shape} like the target's")
    if not np.allclose(target.sum(axis=1), 1.0, atol=1e-6) or (target < 0).any():
        raise ValueError("target probabilities must be >= 0 and sum to 1 over the models at every step")
    action = np.asarray(logged.action, dtype=np.int64)
    if action.min() < 0 or action.max() >= target.shape[1]:
        raise ValueError(f"logged actions must index the {target.shape[1]} models")
    rows = np.arange(n)
    q_hat = np.where(np.isfinite(model.quality), model.quality, 0.0)
    c_hat = np.where(np.isfinite(model.cost), model.cost, 0.0)
    w = target[rows, action] / np.asarray(logged.propensity, dtype=np.float64)
    q, c = np.asarray(logged.quality, dtype=np.float64), np.asarray(logged.cost, dtype=np.float64)
    per_step = np.stack(
        [
            np.ones(n),
            w,
            w * q,
            w * c,
            (target * q_hat).sum(axis=1) + w * (q - q_hat[rows, action]),
            (target * c_hat).sum(axis=1) + w * (c - c_hat[rows, action]),
        ],
        axis=1,
    )
    _, session = np.unique(np.asarray(logged.session).astype(str), return_inverse=True)
    sums = np.zeros((session.max() + 1, per_step.shape[1]))
    np.add.at(sums, session, per_step)
    return sums


def _estimates(totals: np.ndarray, lam: float) -> dict[str, dict[str, np.ndarray]]:
    """Each estimator's quality, cost and value from summed columns (rows: resamples, or one row)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        raw = {
            "ips": (totals[:, _WQ] / totals[:, _N], totals[:, _WC] / totals[:, _N]),
            "snips": (totals[:, _WQ] / totals[:, _W], totals[:, _WC] / totals[:, _W]),
            "dr": (totals[:, _DQ] / totals[:, _N], totals[:, _DC] / totals[:, _N]),
        }
    return {e: {"quality": q, "cost": c, "value": q - lam * c} for e, (q, c) in raw.items()}


def _resample_counts(sessions: int, resamples: int, seed: int) -> list[np.ndarray]:
    """How often each session is drawn in each resample, in chunks ([chunk, S] each)."""
    rng = np.random.default_rng(seed)
    share = np.full(sessions, 1.0 / sessions)
    return [
        rng.multinomial(sessions, share, size=min(_RESAMPLE_CHUNK, resamples - start))
        for start in range(0, resamples, _RESAMPLE_CHUNK)
    ]


def _interval(point: float, draws: np.ndarray, level: float) -> Interval:
    tail = (1.0 - level) / 2.0
    finite = draws[np.isfinite(draws)]
    if not np.isfinite(point) or len(finite) == 0:
        return Interval(float(point), float("nan"), float("nan"))
    low, high = np.quantile(finite, [tail, 1.0 - tail])
    return Interval(float(point), float(low), float(high))


def _support(logged: LoggedSteps, target: np.ndarray) -> dict[str, float]:
    """How much of the log speaks for the target: the share of steps whose logged choice the target
    could make, the effective sample size of the weights, and the largest weight."""
    w = np.asarray(target)[np.arange(len(logged)), logged.action] / logged.propensity
    ess = float(w.sum() ** 2 / (w**2).sum()) if (w > 0).any() else 0.0
    return {"matched_share": float(np.mean(w > 0)), "effective_steps": ess, "max_weight": float(w.max())}


def _check_settings(lam: float, level: float, resamples: int) -> None:
    if not (np.isfinite(lam) and lam >= 0):
        raise ValueError(f"lambda must be a finite number >= 0, got {lam}")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), e.g. 0.95, got {level}")
    if resamples < 1:
        raise ValueError(f"resamples must be >= 1, got {resamples}")


def _bootstrap(
    logged: LoggedSteps,
    policies: Mapping[str, np.ndarray],
    model: DirectModel,
    lam: float,
    *,
    resamples: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> dict[str, Any]:
    """Estimates for every policy in `policies` (name -> π [n, M]) and the bootstrap draws behind
    them, all on the same resamples: {"points", "draws", "support", "sessions"}."""
    _check_settings(lam, level, resamples)
    sums = {name: _session_sums(logged, probs, model) for name, probs in policies.items()}
    sessions = next(iter(sums.values())).shape[0]
    points = {name: _estimates(s.sum(axis=0, keepdims=True), lam) for name, s in sums.items()}
    draws: dict[str, dict[str, dict[str, list[np.ndarray]]]] = {
        name: {e: {m: [] for m in METRICS} for e in ESTIMATORS} for name in policies
    }
    for counts in _resample_counts(sessions, resamples, seed):
        for name, s in sums.items():
            for e, metrics in _estimates(counts @ s, lam).items():
                for m, values in metrics.items():
                    draws[name][e][m].append(values)
    return {
        "points": points,
        "draws": {
            name: {e: {m: np.concatenate(v) for m, v in ms.items()} for e, ms in d.items()}
            for name, d in draws.items()
        },
        "support": {name: _support(logged, probs) for name, probs in policies.items()},
        "sessions": sessions,
    }


def evaluate(
    logged: LoggedSteps,
    target: np.ndarray,
    model: DirectModel,
    lam: float,
    *,
    resamples: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> PolicyEstimate:
    """IPS, SNIPS and DR estimates of one target policy's quality, cost and value, with intervals."""
    raw = _bootstrap(logged, {"target": target}, model, lam, resamples=resamples, level=level, seed=seed)
    return _policy_estimate(raw, "target", level)


def _policy_estimate(raw: Mapping[str, Any], name: str, level: float) -> PolicyEstimate:
    return PolicyEstimate(
        intervals={
            e: {
                m: _interval(float(raw["points"][name][e][m][0]), raw["draws"][name][e][m], level)
                for m in METRICS
            }
            for e in ESTIMATORS
        },
        support=raw["support"][name],
    )


def compare_two(
    logged: LoggedSteps,
    candidate: np.ndarray,
    baseline: np.ndarray,
    model: DirectModel,
    lam: float,
    *,
    resamples: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> Comparison:
    """A candidate policy against a baseline on one log, with the paired interval of the difference."""
    raw = _bootstrap(
        logged,
        {"candidate": candidate, "baseline": baseline},
        model,
        lam,
        resamples=resamples,
        level=level,
        seed=seed,
    )
    points, draws = raw["points"], raw["draws"]
    difference = {
        e: {
            m: _interval(
                float(points["candidate"][e][m][0] - points["baseline"][e][m][0]),
                draws["candidate"][e][m] - draws["baseline"][e][m],
                level,
            )
            for m in METRICS
        }
        for e in ESTIMATORS
    }
    return Comparison(
        candidate=_policy_estimate(raw, "candidate", level),
        baseline=_policy_estimate(raw, "baseline", level),
        difference=difference,
        steps=len(logged),
        sessions=raw["sessions"],
        lam=lam,
        level=level,
        resamples=resamples,
        seed=seed,
    )
