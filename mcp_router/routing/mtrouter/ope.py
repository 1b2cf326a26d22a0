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

**Intervals.** Bootstrap over whole sessions (the steps of a session share its outcome, so they are
not independent), from a seeded generator. Two policies are compared on the *same* resamples, so the
interval of their difference excludes the variance they share (a paired bootstrap). Three kinds
(`INTERVALS`), all from the same resamples:
- `normal`: the estimate ± z·(standard deviation of the resampled estimates), Efron's standard
  interval with a bootstrap standard error. It ignores the resamples' skew, and that is why it wins
  here: with heavy weights the skew of a resample mirrors how many matching steps the sample happened
  to hold, not how the estimator errs, so following it misplaces the interval.
- `percentile`: the quantiles of the resampled estimates.
- `studentized` (bootstrap-t): each resample's estimate is centred on the full-sample one and divided
  by its own standard error, and the quantiles of that ratio scale the full-sample standard error.
  Every estimate is a ratio of per-session sums, ΣA/ΣB, so its standard error is the linearised one,
  √(Σ_s (A_s − R·B_s)²) / ΣB (and for a difference, of the difference of the two linearisations).
  It corrects the percentile interval's reach on the heavy side of IPS (Efron & Tibshirani 1993,
  ch. 12; Hall 1988), but DR's correction terms are skewed either way.
`normal` is the default, chosen by `mcp-router bench ope` by a rule fixed before it ran (DR value
coverage nearest 95 % over the scenarios other than the one the tests check); see
benchmarks/results/ope.txt for every kind's coverage.

numpy only: the server, the trainer and the benchmark share it.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import numpy as np

ESTIMATORS = ("ips", "snips", "dr")
METRICS = ("quality", "cost", "value")
INTERVALS = ("normal", "percentile", "studentized")  # the first is the default (`bench ope` chose it)
_RESAMPLE_CELLS = 1 << 18  # resamples × sessions held at once: bounds the memory of a chunk

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
    interval: str = INTERVALS[0]

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
            "interval": self.interval,
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


def _ratio_columns(sums: np.ndarray, lam: float) -> dict[str, dict[str, tuple[np.ndarray, np.ndarray]]]:
    """Every estimate as a ratio of per-session sums: (numerator A [S], denominator B [S]) per
    estimator and metric; the estimate on a resample with session counts c is (c·A) / (c·B)."""
    n, w = sums[:, _N], sums[:, _W]
    parts = {"ips": (sums[:, _WQ], sums[:, _WC], n), "snips": (sums[:, _WQ], sums[:, _WC], w)}
    parts["dr"] = (sums[:, _DQ], sums[:, _DC], n)
    return {
        e: {"quality": (q, b), "cost": (c, b), "value": (q - lam * c, b)} for e, (q, c, b) in parts.items()
    }


def _ratio(
    counts: np.ndarray, a: np.ndarray, b: np.ndarray, influence: bool
) -> tuple[np.ndarray, np.ndarray | None]:
    """(estimates [r], influence [r, S] or None) of ΣA/ΣB under session counts [r, S]: the influence,
    only when asked for, is the per-session linearisation (A_s − R·B_s) / mean(B) whose
    count-weighted square sum gives the standard error (`_std_error`)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        den = counts @ b
        estimate = (counts @ a) / den
        if not influence:
            return estimate, None
        return estimate, (a[None, :] - estimate[:, None] * b[None, :]) / (den[:, None] / counts.shape[1])


def _std_error(counts: np.ndarray, influence: np.ndarray | None) -> np.ndarray:
    """The linearised standard errors of `_ratio`'s estimates; NaN where no influence was computed."""
    if influence is None:
        return np.full(len(counts), np.nan)
    with np.errstate(invalid="ignore"):
        return np.sqrt((counts * influence**2).sum(axis=1)) / counts.shape[1]


@dataclass(frozen=True)
class _Sampled:
    """An estimate and its standard error on the sample, and both again on every resample."""

    estimate: float
    std_error: float
    draws: np.ndarray
    draw_errors: np.ndarray


def _resample_counts(sessions: int, resamples: int, seed: int) -> Iterator[np.ndarray]:
    """How often each session is drawn in each resample, in chunks ([chunk, S] each), drawn lazily."""
    rng = np.random.default_rng(seed)
    share = np.full(sessions, 1.0 / sessions)
    chunk = max(1, _RESAMPLE_CELLS // sessions)
    for start in range(0, resamples, chunk):
        yield rng.multinomial(sessions, share, size=min(chunk, resamples - start))


def _interval(sampled: _Sampled, level: float, kind: str) -> Interval:
    """The `kind` interval (see `INTERVALS`) of an estimate from its resamples."""
    tail = (1.0 - level) / 2.0
    estimate, values = sampled.estimate, sampled.draws
    finite = np.isfinite(values)
    if not np.isfinite(estimate) or not finite.any():
        return Interval(estimate, float("nan"), float("nan"))
    if kind == "percentile":
        low, high = np.quantile(values[finite], [tail, 1.0 - tail])
        return Interval(estimate, float(low), float(high))
    if kind == "normal":  # ± z bootstrap standard errors
        draws = values[finite]
        spread = NormalDist().inv_cdf(1.0 - tail) * (float(draws.std(ddof=1)) if len(draws) > 1 else 0.0)
        return Interval(estimate, estimate - spread, estimate + spread)
    with np.errstate(invalid="ignore", divide="ignore"):
        t = (values - estimate) / sampled.draw_errors
    t = t[np.isfinite(t)]
    if sampled.std_error == 0.0 or not len(t):  # no spread to scale (e.g. every weight 0)
        return Interval(estimate, estimate, estimate)
    t_low, t_high = np.quantile(t, [tail, 1.0 - tail])
    return Interval(
        estimate, estimate - float(t_high) * sampled.std_error, estimate - float(t_low) * sampled.std_error
    )


def _support(logged: LoggedSteps, target: np.ndarray) -> dict[str, float]:
    """How much of the log speaks for the target: the share of steps whose logged choice the target
    could make, the effective sample size of the weights, and the largest weight."""
    w = np.asarray(target)[np.arange(len(logged)), logged.action] / logged.propensity
    ess = float(w.sum() ** 2 / (w**2).sum()) if (w > 0).any() else 0.0
    return {"matched_share": float(np.mean(w > 0)), "effective_steps": ess, "max_weight": float(w.max())}


def _check_settings(lam: float, level: float, resamples: int, interval: str) -> None:
    if interval not in INTERVALS:
        raise ValueError(f"interval must be one of {INTERVALS}, got {interval!r}")
    if not (np.isfinite(lam) and lam >= 0):
        raise ValueError(f"lambda must be a finite number >= 0, got {lam}")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), e.g. 0.95, got {level}")
    if resamples < 1:
        raise ValueError(f"resamples must be >= 1, got {resamples}")


Sampled = dict[str, dict[str, dict[str, _Sampled]]]  # policy (or "difference") -> estimator -> metric


def _bootstrap(
    logged: LoggedSteps,
    policies: Mapping[str, np.ndarray],
    model: DirectModel,
    lam: float,
    *,
    resamples: int,
    seed: int,
    interval: str,
) -> tuple[Sampled, int]:
    """Every estimate of every policy in `policies` (name -> π [n, M]) on the sample and on the same
    session resamples, and the number of sessions. With two policies, also their "difference" (first
    minus second), whose standard errors come from the difference of their linearisations. Resamples
    are drawn in chunks and reduced to an estimate (and, for the `studentized` interval, which alone
    uses them, a standard error) each, so memory stays bounded whatever the number of sessions."""
    errors = interval == "studentized"
    columns = {
        name: _ratio_columns(_session_sums(logged, probs, model), lam) for name, probs in policies.items()
    }
    names = list(columns)
    sessions = len(columns[names[0]]["dr"]["value"][1])
    keys = [(e, m) for e in ESTIMATORS for m in METRICS]
    out_names = names + (["difference"] if len(names) == 2 else [])
    found: dict[tuple[str, str, str], list[tuple[np.ndarray, np.ndarray]]] = {}
    for counts in itertools.chain([np.ones((1, sessions))], _resample_counts(sessions, resamples, seed)):
        for e, m in keys:
            parts = {name: _ratio(counts, *columns[name][e][m], errors) for name in names}
            if len(names) == 2:
                (est_a, infl_a), (est_b, infl_b) = parts[names[0]], parts[names[1]]
                both = infl_a is not None and infl_b is not None
                parts["difference"] = (est_a - est_b, infl_a - infl_b if both else None)
            for name, (estimate, influence) in parts.items():
                found.setdefault((name, e, m), []).append((estimate, _std_error(counts, influence)))
    out: Sampled = {name: {e: {} for e in ESTIMATORS} for name in out_names}
    for (name, e, m), pieces in found.items():
        (point, point_se), rest = pieces[0], pieces[1:]
        out[name][e][m] = _Sampled(
            float(point[0]),
            float(point_se[0]),
            np.concatenate([p[0] for p in rest]),
            np.concatenate([p[1] for p in rest]),
        )
    return out, sessions


def evaluate(
    logged: LoggedSteps,
    target: np.ndarray,
    model: DirectModel,
    lam: float,
    *,
    resamples: int = 1000,
    level: float = 0.95,
    seed: int = 0,
    interval: str = INTERVALS[0],
) -> PolicyEstimate:
    """IPS, SNIPS and DR estimates of one target policy's quality, cost and value, with intervals."""
    _check_settings(lam, level, resamples, interval)
    sampled, _ = _bootstrap(
        logged, {"target": target}, model, lam, resamples=resamples, seed=seed, interval=interval
    )
    return _estimate(sampled["target"], logged, target, level, interval)


def _intervals(
    sampled: Mapping[str, Mapping[str, _Sampled]], level: float, interval: str
) -> dict[str, dict[str, Interval]]:
    return {e: {m: _interval(x, level, interval) for m, x in ms.items()} for e, ms in sampled.items()}


def _estimate(
    sampled: Mapping[str, Mapping[str, _Sampled]],
    logged: LoggedSteps,
    probs: np.ndarray,
    level: float,
    interval: str,
) -> PolicyEstimate:
    return PolicyEstimate(_intervals(sampled, level, interval), _support(logged, probs))


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
    interval: str = INTERVALS[0],
) -> Comparison:
    """A candidate policy against a baseline on one log, with the paired interval of the difference."""
    _check_settings(lam, level, resamples, interval)
    policies = {"candidate": candidate, "baseline": baseline}
    sampled, sessions = _bootstrap(
        logged, policies, model, lam, resamples=resamples, seed=seed, interval=interval
    )
    return Comparison(
        candidate=_estimate(sampled["candidate"], logged, candidate, level, interval),
        baseline=_estimate(sampled["baseline"], logged, baseline, level, interval),
        difference=_intervals(sampled["difference"], level, interval),
        steps=len(logged),
        sessions=sessions,
        lam=lam,
        level=level,
        resamples=resamples,
        seed=seed,
        interval=interval,
    )
