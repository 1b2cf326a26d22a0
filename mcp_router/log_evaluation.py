"""Off-policy evaluation of MTRouter policies on the server's own logged sessions: the estimates
behind `mcp-router eval --from-db` and the doubly robust promotion gate of `train --from-db`.

**Steps evaluated.** Every step of a rated session (`logged_sessions.episodes_from_steps`) whose
chosen model is in the pool. Its outcome is the pair the estimator is trained on:
- quality = S'_t, the session's score minus the annealed error cost from step t on;
- cost = C_rem(t) / c̄, the cost from step t to the end of the session in units of c̄, which is what λ
  weighs in Q = ŝ − λ·(exp(ĉ) − 1). c̄ is the candidate checkpoint's (the mean session cost of its
  training data), so λ means what it means when that checkpoint serves.
Both are returns to the end of the session, so steps are treated as independent bandit rounds, the
reference's approximation (§11.5); with one step per session it is exact. The action is the chosen
model with its logged propensity, also when a fallback served the call (see `ope`).

**Policies.** A checkpoint's policy is β-mixed greedy on its Q (β = 1, plain greedy, by default: the
policy the checkpoint exploits with). The priors policy, which serves before any checkpoint, is Q₀ of
`policy.prior_values`, recomputed from the logged message list, the logged max_tokens (the chosen
model's allowance, so a lower bound of the request's) and the remaining budget. At each step only the
models the logging policy could choose are allowed (the logged `excluded` ones are not): the target
meets the same budget and context filters. The stay bonus is left out: it depends on the target's own
previous choice, which the log does not record.

**Direct model** (for DR), the same for both policies, chosen separately for quality and for cost:
of the candidate's predictions, the policy in force's (when it is a checkpoint) and a per-model ridge
of the logged outcomes on z_x cross-fitted over sessions (each step predicted by the fit on the other
folds, α by out-of-fold error), the one with the lowest squared error on the logged outcomes of the
chosen models. A broken candidate is thus not chosen and cannot widen the comparison through its own
predictions, while a candidate trained on full or plentiful data lends its better outcome model. DR
stays unbiased for any fixed direct model; choosing among three by their fit adds a small dependence.

**Promotion rule** (`dr_verdict`): the candidate passes unless the paired bootstrap interval of
DR value(candidate) − DR value(policy in force) lies wholly below zero, i.e. unless the log shows it
worse at the interval's level. "Not worse within the interval" therefore lets an equal or untested
candidate through on little data (the held-out MSE gate still applies) and stops one the log
shows losing value.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from mcp_router.logged_sessions import Episode, step_targets
from mcp_router.routing.mtrouter import ope, ridge
from mcp_router.routing.mtrouter.checkpoint import value
from mcp_router.routing.mtrouter.policy import admit, prior_values
from mcp_router.routing.mtrouter.pool import ModelSpec
from mcp_router.routing.mtrouter.targets import AECConfig

DM_FOLDS = 5
DEFAULT_RESAMPLES = 1000
DEFAULT_LEVEL = 0.95
RULE = (
    "promote unless the paired-bootstrap {level:.0%} interval of DR value(candidate) − DR value(policy "
    "in force) lies wholly below 0"
)


@dataclass(frozen=True)
class LoggedEvaluation:
    """The logged side of an evaluation, shared by every policy compared on it."""

    logged: ope.LoggedSteps
    steps: list[dict[str, Any]]  # the evaluated rows, aligned with `logged` and `zx`
    zx: np.ndarray  # history embeddings of those steps
    allowed: np.ndarray  # bool [n, M]: the models the logging policy could choose at each step
    c_bar: float  # USD: the cost unit of the outcomes
    skipped: int  # steps whose chosen model is not in the pool


def logged_evaluation(
    episodes: Sequence[Episode], names: Sequence[str], zx: np.ndarray, c_bar: float
) -> LoggedEvaluation:
    """The steps of `episodes` as OPE input; `zx` rows follow the episodes' steps in order."""
    if c_bar <= 0:
        raise ValueError(f"c_bar must be > 0 (the mean session cost in USD), got {c_bar}")
    aec = AECConfig()
    rows: list[tuple[int, str, dict[str, Any], float, float]] = []
    index, skipped = 0, 0
    for episode in episodes:
        for step, target in zip(episode.steps, step_targets(episode, c_bar, aec), strict=True):
            if step["chosen_model"] in names:
                rows.append((index, episode.session_id, step, target.score, float(np.expm1(target.cost))))
            else:
                skipped += 1
            index += 1
    if not rows:
        raise ValueError(
            "no logged step to evaluate on: no rated session has a step whose chosen model is in the pool"
        )
    steps = [r[2] for r in rows]
    allowed = np.array([[n not in (s["excluded"] or {}) for n in names] for s in steps])
    logged = ope.LoggedSteps(
        session=np.array([r[1] for r in rows]),
        action=np.array([list(names).index(s["chosen_model"]) for s in steps]),
        propensity=np.array([float(s["propensity"]) for s in steps]),
        quality=np.array([r[3] for r in rows]),
        cost=np.array([r[4] for r in rows]),
    )
    return LoggedEvaluation(logged, steps, np.asarray(zx)[[r[0] for r in rows]], allowed, c_bar, skipped)


def checkpoint_q(checkpoint: Any, data: LoggedEvaluation, names: Sequence[str], lam: float) -> np.ndarray:
    """Q = ŝ − λ·(exp(ĉ) − 1) of `checkpoint` at every step, −inf where a model may not be chosen."""
    score, cost = checkpoint.predict(np.asarray(data.zx, dtype=np.float32), list(names))
    q = value(score, cost, lam)
    return np.where(data.allowed & np.isfinite(q), q, -np.inf)


def prior_q(
    data: LoggedEvaluation, specs: Sequence[ModelSpec], lam: float, typical_cost_usd: float
) -> np.ndarray:
    """Q₀ of the priors policy at every step (see the module doc), −inf where a model may not be chosen."""
    names = [s.name for s in specs]
    q = np.full(data.allowed.shape, -np.inf)
    for i, step in enumerate(data.steps):
        budget = step["budget_usd"]
        remaining = None if budget is None else budget - float(step["spent_before_usd"] or 0.0)
        admission = admit(specs, step["history"], int(step["max_tokens"]), remaining)
        for name, q0 in prior_values(specs, admission, lam, typical_cost_usd).items():
            q[i, names.index(name)] = q0
    q[~data.allowed] = -np.inf
    return q


def crossfit_ridge(data: LoggedEvaluation, n_models: int, seed: int = 0) -> ope.DirectModel:
    """The cross-fitted ridge of the module doc: predicted quality and cost [n, M] at every step; a
    model no other fold logged is predicted by the mean outcome."""
    logged = data.logged
    _, session = np.unique(np.asarray(logged.session).astype(str), return_inverse=True)
    fold_of = np.random.default_rng(seed).permutation(session.max() + 1) % DM_FOLDS
    fold = fold_of[session]
    n = len(logged)
    quality = np.full((len(ridge.ALPHAS), n, n_models), np.nan)
    cost = np.full((len(ridge.ALPHAS), n, n_models), np.nan)
    # one BLAS thread: the matrices are small (D × D), and on a busy machine BLAS threads waiting for
    # each other made these fits a hundred times slower
    with threadpool_limits(1):
        for k in np.unique(fold):
            fit, held = fold != k, fold == k
            if not fit.any():  # a single session: nothing to fit on but itself
                continue
            path = ridge.fit_path(
                data.zx[fit],
                logged.action[fit],
                logged.quality[fit],
                logged.cost[fit],
                np.ones(fit.sum()),
                n_models,
            )
            for a, estimator in enumerate(path):
                quality[a, held], cost[a, held] = estimator.predict(data.zx[held])
    rows = np.arange(n)
    predicted = np.isfinite(quality[0, rows, logged.action])  # the same steps for every α
    errors = [
        np.mean((quality[a, rows, logged.action] - logged.quality)[predicted] ** 2)
        + np.mean((cost[a, rows, logged.action] - logged.cost)[predicted] ** 2)
        for a in range(len(ridge.ALPHAS))
    ]
    best = int(np.argmin(errors)) if predicted.any() else 0
    return ope.DirectModel(
        quality=np.where(np.isnan(quality[best]), logged.quality.mean(), quality[best]),
        cost=np.where(np.isnan(cost[best]), logged.cost.mean(), cost[best]),
    )


def checkpoint_predictions(checkpoint: Any, data: LoggedEvaluation, names: Sequence[str]) -> ope.DirectModel:
    """A checkpoint's predictions in the outcomes' units (its cost head is log(1 + C/c̄_checkpoint))."""
    score, cost = checkpoint.predict(np.asarray(data.zx, dtype=np.float32), list(names))
    return ope.DirectModel(quality=score, cost=np.expm1(cost) * float(checkpoint.meta["c_bar"]) / data.c_bar)


def direct_model(
    data: LoggedEvaluation, specs: Sequence[ModelSpec], checkpoints: dict[str, Any], seed: int = 0
) -> tuple[ope.DirectModel, dict[str, str]]:
    """The direct model of the module doc, and which option predicts quality and which cost.
    `checkpoints` maps a label to a checkpoint (or None, skipped)."""
    options = {"cross-fitted ridge": crossfit_ridge(data, len(specs), seed)}
    for label, checkpoint in checkpoints.items():
        if checkpoint is not None:
            options[label] = checkpoint_predictions(checkpoint, data, [s.name for s in specs])
    logged, rows = data.logged, np.arange(len(data.logged))

    def error(predicted: np.ndarray, observed: np.ndarray) -> float:
        residual = predicted[rows, logged.action] - observed
        return float(np.mean(residual**2)) if np.all(np.isfinite(residual)) else np.inf

    quality = min(options, key=lambda k: error(options[k].quality, logged.quality))
    cost = min(options, key=lambda k: error(options[k].cost, logged.cost))
    return (
        ope.DirectModel(quality=options[quality].quality, cost=options[cost].cost),
        {"quality": quality, "cost": cost},
    )


@dataclass(frozen=True)
class PolicyComparison:
    comparison: ope.Comparison
    direct_model: dict[str, str]  # metric -> the option that predicted it


@dataclass(frozen=True)
class PolicySettings:
    lam: float
    typical_cost_usd: float  # the priors policy's cost unit (mtrouter.typical_conversation_cost_usd)
    beta: float = 1.0  # of the evaluated policies: 1 = greedy
    resamples: int = DEFAULT_RESAMPLES
    level: float = DEFAULT_LEVEL
    seed: int = 0
    interval: str = ope.INTERVALS[0]  # see `ope`: normal unless asked otherwise


def policy_q(
    checkpoint: Any, data: LoggedEvaluation, specs: Sequence[ModelSpec], settings: PolicySettings
) -> np.ndarray:
    """Q at every step of the checkpoint's policy, or of the priors policy when `checkpoint` is None."""
    if checkpoint is None:
        return prior_q(data, specs, settings.lam, settings.typical_cost_usd)
    return checkpoint_q(checkpoint, data, [s.name for s in specs], settings.lam)


def compare_policies(
    data: LoggedEvaluation,
    candidate: Any,
    current: Any,
    specs: Sequence[ModelSpec],
    settings: PolicySettings,
) -> PolicyComparison:
    """The candidate checkpoint against the policy in force (`current`: a checkpoint, or None for the
    priors), with the direct model of the module doc."""
    model, chosen = direct_model(
        data, specs, {"candidate": candidate, "policy in force": current}, settings.seed
    )
    comparison = ope.compare_two(
        data.logged,
        ope.mixed_probs(policy_q(candidate, data, specs, settings), settings.beta),
        ope.mixed_probs(policy_q(current, data, specs, settings), settings.beta),
        model,
        settings.lam,
        resamples=settings.resamples,
        level=settings.level,
        seed=settings.seed,
        interval=settings.interval,
    )
    return PolicyComparison(comparison, chosen)


def dr_verdict(result: PolicyComparison, baseline: str) -> dict[str, Any]:
    """The promotion rule of the module doc, with the estimates it rests on (stored with the checkpoint
    and shown by `router://models`)."""
    comparison = result.comparison
    diff = comparison.difference["dr"]["value"]
    passes = bool(np.isfinite(diff.high) and diff.high >= 0)
    return {
        "passes": passes,
        "rule": RULE.format(level=comparison.level),
        "baseline": baseline,
        "candidate_value": comparison.candidate.intervals["dr"]["value"].to_dict(),
        "baseline_value": comparison.baseline.intervals["dr"]["value"].to_dict(),
        "difference": diff.to_dict(),
        "direct_model": result.direct_model,
        "steps": comparison.steps,
        "sessions": comparison.sessions,
        "lambda": comparison.lam,
        **({} if passes else {"reason": _reason(diff, comparison.level)}),
    }


def _reason(diff: ope.Interval, level: float) -> str:
    if not np.isfinite(diff.high):
        return "the doubly robust difference could not be estimated on the held-out sessions"
    return (
        f"doubly robust value is worse than the policy in force: difference {diff.estimate:+.4f}, "
        f"{level:.0%} interval [{diff.low:+.4f}, {diff.high:+.4f}] wholly below 0"
    )
