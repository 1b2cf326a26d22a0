"""Offline evaluation of routing policies on full-information routing records.

Every record carries every model's outcome, so any policy can be scored exactly: it picks one model per
record, and its quality is the mean true score and its cost the total true cost of the picks. Learned
policies trade quality for cost through λ and are swept over a grid, giving a quality-cost frontier;
the question the issue asks is where MTRouter's frontier lies against the single models (its cost at
best-single quality) and against two simpler estimators on the same embeddings (knn and ridge).

All estimators are compared in one value form, Q = ŝ − λ·ĉ/c̄, with ĉ the predicted cost in USD and c̄
the training set's mean per-record cost: MTRouter's cost head predicts log(1 + ĉ/c̄), so its
`checkpoint.value` is exactly this, and one λ means the same trade-off for every estimator.
This module is numpy only; training and embedding live in `offline`.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mcp_router.routing.mtrouter import ridge
from mcp_router.routing.mtrouter.data import RoutingRecord

DEFAULT_LAMBDAS: tuple[float, ...] = (0.0, *(float(x) for x in np.round(np.logspace(-3, 1, 41), 6)))
KNN_KS = (5, 10, 20, 50, 100)
MARGIN_RESAMPLES = 1000  # bootstrap resamples of the records behind each frontier margin's interval
RIDGE_ALPHAS = ridge.ALPHAS


@dataclass(frozen=True)
class OutcomeMatrix:
    """True outcomes of the evaluated records: score and cost [n, M] in the order of `models`."""

    models: tuple[str, ...]
    score: np.ndarray
    cost: np.ndarray
    missing_costs: int = 0  # outcomes with cost_usd null, counted as 0


@dataclass(frozen=True)
class Estimates:
    """A predictor's per-record estimates [n, M]: score ŝ and cost in units of c̄ (ĉ/c̄)."""

    score: np.ndarray
    cost_units: np.ndarray


@dataclass(frozen=True)
class PolicyResult:
    name: str
    quality: float  # mean true score of the picks
    cost_usd: float  # total true cost of the picks
    lam: float | None = None
    shares: dict[str, float] = field(default_factory=dict)  # fraction of records routed to each model
    family: str = ""  # "mtrouter", "knn", "linear", "single", "reference"


def outcome_matrix(records: Sequence[RoutingRecord], models: Sequence[str]) -> OutcomeMatrix:
    """Records -> OutcomeMatrix; every record must have an outcome for every model (full information)."""
    n, m = len(records), len(models)
    score, cost, missing = np.zeros((n, m)), np.zeros((n, m)), 0
    for i, record in enumerate(records):
        absent = [name for name in models if name not in record.outcomes]
        if absent:
            raise ValueError(
                f"record {record.id!r} has no outcome for {absent}: offline evaluation needs every "
                "model's outcome on every record; drop those models from the models file or the record"
            )
        for j, name in enumerate(models):
            outcome = record.outcomes[name]
            score[i, j] = outcome.score
            if outcome.cost_usd is None:
                missing += 1
            else:
                cost[i, j] = outcome.cost_usd
    return OutcomeMatrix(tuple(models), score, cost, missing)


def score_choice(
    name: str, choice: np.ndarray, truth: OutcomeMatrix, *, lam: float | None = None, family: str = ""
) -> PolicyResult:
    rows = np.arange(len(choice))
    counts = np.bincount(choice, minlength=len(truth.models)) / max(len(choice), 1)
    return PolicyResult(
        name=name,
        quality=float(truth.score[rows, choice].mean()) if len(choice) else math.nan,
        cost_usd=float(truth.cost[rows, choice].sum()),
        lam=lam,
        shares={m: round(float(c), 4) for m, c in zip(truth.models, counts, strict=True) if c > 0},
        family=family,
    )


def greedy_choice(estimates: Estimates, lam: float) -> np.ndarray:
    """argmax of Q = ŝ − λ·ĉ/c̄ per record (the first model wins ties, i.e. pool order)."""
    return np.argmax(estimates.score - lam * estimates.cost_units, axis=1)


def sweep(
    family: str, estimates: Estimates, truth: OutcomeMatrix, lambdas: Sequence[float]
) -> list[PolicyResult]:
    return [
        score_choice(f"{family}@{lam:g}", greedy_choice(estimates, lam), truth, lam=lam, family=family)
        for lam in lambdas
    ]


# ------------------------------------------------------------------ baseline estimators


def _unit(zx: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(zx, axis=1, keepdims=True)
    return np.divide(zx, norms, out=np.zeros_like(zx, dtype=np.float64), where=norms > 0)


def knn_estimates(
    train_zx: np.ndarray, train: OutcomeMatrix, test_zx: np.ndarray, k: int, c_bar: float
) -> Estimates:
    """Per model, the mean score and cost of the k training histories nearest by cosine."""
    a, b = _unit(np.asarray(test_zx, dtype=np.float64)), _unit(np.asarray(train_zx, dtype=np.float64))
    k = min(k, len(b))
    scores, costs = np.zeros((len(a), train.score.shape[1])), np.zeros((len(a), train.score.shape[1]))
    for start in range(0, len(a), 1024):
        sim = a[start : start + 1024] @ b.T
        nearest = np.argpartition(-sim, k - 1, axis=1)[:, :k]
        scores[start : start + 1024] = train.score[nearest].mean(axis=1)
        costs[start : start + 1024] = train.cost[nearest].mean(axis=1)
    return Estimates(scores, costs / c_bar if c_bar > 0 else np.zeros_like(costs))


def _ridge_path(
    train_zx: np.ndarray, train: OutcomeMatrix, test_zx: np.ndarray, alphas: Sequence[float]
) -> list[np.ndarray]:
    """Ridge predictions [n_test, 2M] (scores then costs) for each α: with full-information data every
    model shares the design matrix, so one `ridge.solve_path` serves all 2M targets."""
    targets = np.concatenate([train.score, train.cost], axis=1)
    return [linear.predict(test_zx) for linear in ridge.solve_path(train_zx, targets, alphas)]


def ridge_estimates(
    train_zx: np.ndarray, train: OutcomeMatrix, test_zx: np.ndarray, alpha: float, c_bar: float
) -> Estimates:
    """Per-model ridge regression of score and of cost (USD) on the embeddings."""
    (pred,) = _ridge_path(train_zx, train, test_zx, [alpha])
    return _split_prediction(pred, train.score.shape[1], c_bar)


def _split_prediction(pred: np.ndarray, m: int, c_bar: float) -> Estimates:
    costs = pred[:, m:]
    return Estimates(pred[:, :m], costs / c_bar if c_bar > 0 else np.zeros_like(costs))


def _score_mse(estimates: Estimates, truth: OutcomeMatrix) -> float:
    return float(((estimates.score - truth.score) ** 2).mean())


def select_baselines(
    train_zx: np.ndarray, train: OutcomeMatrix, val_rows: np.ndarray, c_bar: float
) -> dict[str, dict[str, float]]:
    """k for knn and α for ridge, each chosen by score MSE on held-out training rows (`val_rows`, whole
    sessions), so the baselines are tuned as fairly as MTRouter's early stopping, never on test data."""
    is_val = np.zeros(len(train_zx), dtype=bool)
    is_val[val_rows] = True
    fit_zx, val_zx = train_zx[~is_val], train_zx[is_val]
    fit = OutcomeMatrix(train.models, train.score[~is_val], train.cost[~is_val])
    val = OutcomeMatrix(train.models, train.score[is_val], train.cost[is_val])
    knn = {k: _score_mse(knn_estimates(fit_zx, fit, val_zx, k, c_bar), val) for k in KNN_KS}
    path = _ridge_path(fit_zx, fit, val_zx, RIDGE_ALPHAS)
    m = train.score.shape[1]
    ridge = {
        a: _score_mse(_split_prediction(p, m, c_bar), val) for a, p in zip(RIDGE_ALPHAS, path, strict=True)
    }
    best_k, best_alpha = min(knn, key=knn.__getitem__), min(ridge, key=ridge.__getitem__)
    return {
        "knn": {"k": best_k, "val_score_mse": knn[best_k]},
        "linear": {"alpha": best_alpha, "val_score_mse": ridge[best_alpha]},
    }


# ------------------------------------------------------------------ frontiers


def pareto(points: Sequence[PolicyResult]) -> list[PolicyResult]:
    """The points no other point beats on both axes (cheaper-or-equal and better), by increasing cost."""
    front: list[PolicyResult] = []
    for p in sorted(points, key=lambda p: (p.cost_usd, -p.quality)):
        if not front or p.quality > front[-1].quality:
            front.append(p)
    return front


def quality_at_cost(points: Sequence[PolicyResult], cost: float) -> float | None:
    """The frontier's quality at `cost`: linear interpolation between consecutive Pareto points (a
    mixture of the two λ policies reaches it), flat beyond the most expensive one; None below the
    cheapest point, which the family cannot reach."""
    front = pareto(points)
    if not front or cost < front[0].cost_usd:
        return None
    for lo, hi in itertools.pairwise(front):
        if cost <= hi.cost_usd:
            share = (cost - lo.cost_usd) / (hi.cost_usd - lo.cost_usd) if hi.cost_usd > lo.cost_usd else 1.0
            return lo.quality + share * (hi.quality - lo.quality)
    return front[-1].quality


def cost_ratio_at_quality(
    points: Sequence[PolicyResult], quality: float, reference_cost: float
) -> float | None:
    """Cost of the cheapest point with quality >= `quality`, divided by `reference_cost` (None if none)."""
    reaching = [p.cost_usd for p in points if p.quality >= quality - 1e-12]
    if not reaching or reference_cost <= 0:
        return None
    return min(reaching) / reference_cost


def compare_frontiers(ours: Sequence[PolicyResult], theirs: Sequence[PolicyResult]) -> dict[str, Any]:
    """At each Pareto point of `theirs`, our frontier's quality at the same cost minus theirs."""
    rows = []
    for p in pareto(theirs):
        q = quality_at_cost(ours, p.cost_usd)
        rows.append(
            {
                "lam": p.lam,
                "cost_usd": p.cost_usd,
                "quality": p.quality,
                "ours_at_cost": q,
                "margin": None if q is None else q - p.quality,
            }
        )
    margins = [r["margin"] for r in rows if r["margin"] is not None]
    return {
        "points": rows,
        "compared": len(margins),
        "below_our_range": len(rows) - len(margins),  # cheaper than our cheapest point: not comparable
        "min_margin": min(margins) if margins else None,
        "mean_margin": float(np.mean(margins)) if margins else None,
        "share_at_or_above": float(np.mean([m >= -1e-9 for m in margins])) if margins else None,
        "at_or_above": bool(margins) and min(margins) >= -1e-9,
    }


def margin_interval(
    truth: OutcomeMatrix,
    ours: Estimates,
    theirs: Estimates,
    lambdas: Sequence[float],
    *,
    resamples: int = MARGIN_RESAMPLES,
    seed: int = 0,
) -> dict[str, Any]:
    """The mean frontier margin (`compare_frontiers`) of `ours` over `theirs` on bootstrap resamples of
    the records, each policy's picks held fixed: how far the margin moves with which records the test
    file happens to hold. One test question is 1/n of quality, so a margin of a few questions either
    way is within this interval; `share_at_or_above` is the share of resamples with margin >= 0."""
    n = truth.score.shape[0]
    rows = np.arange(n)[None, :]
    picks = [np.stack([greedy_choice(e, lam) for lam in lambdas]) for e in (ours, theirs)]
    scores = [truth.score[rows, c] for c in picks]  # [λ, n] true score of each λ policy's pick
    costs = [truth.cost[rows, c] for c in picks]
    rng = np.random.default_rng(seed)
    margins = []
    for _ in range(resamples):
        counts = np.bincount(rng.integers(0, n, n), minlength=n)
        ours_pts, theirs_pts = (
            [PolicyResult("", float(q), float(c)) for q, c in zip(s @ counts / n, k @ counts, strict=True)]
            for s, k in zip(scores, costs, strict=True)
        )
        margin = compare_frontiers(ours_pts, theirs_pts)["mean_margin"]
        if margin is not None:
            margins.append(margin)
    if not margins:
        return {"resamples": resamples, "ci95": None, "share_at_or_above": None}
    low, high = np.quantile(margins, [0.025, 0.975])
    return {
        "resamples": resamples,
        "ci95": [float(low), float(high)],
        "share_at_or_above": float(np.mean(np.asarray(margins) >= -1e-9)),
    }


def frontier_area(
    points: Sequence[PolicyResult], low: float, high: float, floor: float, n: int = 41
) -> float:
    """Mean frontier quality over `n` log-spaced costs from `low` to `high` (e.g. the cheapest and the
    best single model's costs): one number for "higher at equal cost" over the range a router is for.
    Below the family's cheapest point it is credited `floor` (e.g. the cheapest model's quality)."""
    costs = np.geomspace(low, high, n) if 0 < low < high else np.array([high])
    return float(np.mean([_or(quality_at_cost(points, c), floor) for c in costs]))


def _or(value: float | None, default: float) -> float:
    return default if value is None else value


def frontier_merit(
    truth: OutcomeMatrix, estimates: Mapping[str, Estimates], lambdas: Sequence[float] = DEFAULT_LAMBDAS
) -> dict[str, float]:
    """`frontier_area` of each estimator's λ sweep between the cheapest and the best single model of
    `truth` (training data: this is for choosing an estimator, never for reporting test results)."""
    quality, cost = truth.score.mean(axis=0), truth.cost.sum(axis=0)
    best, cheap = int(np.argmax(quality)), int(np.argmin(cost))
    return {
        name: frontier_area(sweep(name, est, truth, lambdas), cost[cheap], cost[best], quality[cheap])
        for name, est in estimates.items()
    }


# ------------------------------------------------------------------ the whole report


def evaluate_policies(
    truth: OutcomeMatrix,
    estimates: Mapping[str, Estimates],
    train_means: Mapping[str, Mapping[str, float]],
    *,
    lambdas: Sequence[float] = DEFAULT_LAMBDAS,
    seed: int = 0,
) -> dict[str, Any]:
    """Every policy on `truth`. `estimates` holds "mtrouter" and optionally "knn"/"linear";
    `train_means[model]` = {"score", "cost_usd"} on the training data (picks best-single and cheapest)."""
    models = list(truth.models)
    n = truth.score.shape[0]
    policies: list[PolicyResult] = []
    families: dict[str, list[PolicyResult]] = {}
    for family, est in estimates.items():
        families[family] = sweep(family, est, truth, lambdas)
        policies.extend(families[family])
    for j, name in enumerate(models):
        policies.append(score_choice(name, np.full(n, j), truth, family="single"))
    rng = np.random.default_rng(seed)
    random = score_choice("random", rng.integers(0, len(models), size=n), truth, family="reference")
    policies.append(random)
    best_single = max(models, key=lambda m: (train_means[m]["score"], -train_means[m]["cost_usd"]))
    cheapest = min(models, key=lambda m: (train_means[m]["cost_usd"], -train_means[m]["score"]))
    best = score_choice("best-single", np.full(n, models.index(best_single)), truth, family="reference")
    policies.append(best)
    policies.append(score_choice("cheapest", np.full(n, models.index(cheapest)), truth, family="reference"))
    # oracle: best true score, the cheapest among ties
    is_best = truth.score >= truth.score.max(axis=1, keepdims=True)
    oracle_choice = np.argmin(np.where(is_best, truth.cost, np.inf), axis=1)
    policies.append(score_choice("oracle", oracle_choice, truth, family="reference"))

    def ratio(points: Sequence[PolicyResult]) -> float | None:
        return cost_ratio_at_quality(points, best.quality, best.cost_usd)

    others = [f for f in families if f != "mtrouter"] if "mtrouter" in families else []

    report: dict[str, Any] = {
        "records": n,
        "models": models,
        "missing_costs_counted_as_zero": truth.missing_costs,
        "lambdas": list(lambdas),
        "best_single": {"model": best_single, "quality": best.quality, "cost_usd": best.cost_usd},
        "cheapest_model": cheapest,
        "random": {
            "seed": seed,
            "expected_quality": float(truth.score.mean()),
            "expected_cost_usd": float(truth.cost.mean(axis=1).sum()),
        },
        "cost_ratio_at_best_single_quality": ratio(families.get("mtrouter", [])),
        "baselines": {f: {"cost_ratio_at_best_single_quality": ratio(families[f])} for f in others},
        "frontier_comparison": {
            f: {
                **compare_frontiers(families["mtrouter"], families[f]),
                "bootstrap": margin_interval(truth, estimates["mtrouter"], estimates[f], lambdas, seed=seed),
            }
            for f in others
        },
        "policies": [asdict(p) for p in policies],
    }
    return report


# ------------------------------------------------------------------ over seeds


def headline(report: Mapping[str, Any]) -> dict[str, float | None]:
    """The acceptance figures of one `evaluate_policies` report."""
    out: dict[str, float | None] = {"mtrouter_ratio": report["cost_ratio_at_best_single_quality"]}
    for family, base in report["baselines"].items():
        out[f"{family}_ratio"] = base["cost_ratio_at_best_single_quality"]
    for family, cmp in report["frontier_comparison"].items():
        out[f"margin_vs_{family}"] = cmp["mean_margin"]
        bootstrap = cmp["bootstrap"]
        interval = bootstrap["ci95"] or (None, None)  # None when no point could be compared
        out[f"margin_vs_{family}_ci95_low"], out[f"margin_vs_{family}_ci95_high"] = interval
        out[f"margin_vs_{family}_share_ge_0"] = bootstrap["share_at_or_above"]
        out[f"min_margin_vs_{family}"] = cmp["min_margin"]
    return out


def spread(values: Sequence[float | None]) -> dict[str, Any]:
    """mean, min, max over the seeds where the figure exists (a ratio is None when no λ reaches
    best-single quality), how many those are, and every seed's value."""
    known = [v for v in values if v is not None]
    return {
        "mean": float(np.mean(known)) if known else None,
        "min": min(known) if known else None,
        "max": max(known) if known else None,
        "defined": f"{len(known)}/{len(values)}",
        "per_seed": list(values),
    }


def summarise_seeds(headlines: Sequence[Mapping[str, float | None]]) -> dict[str, dict[str, Any]]:
    return {key: spread([h.get(key) for h in headlines]) for key in headlines[0]}


def format_seeds(summary: Mapping[str, Mapping[str, Any]], seeds: Sequence[int]) -> str:
    """One line per figure: mean [min, max] (seeds where defined) and the per-seed values."""
    lines = [f"{'figure over seeds ' + str(list(seeds)):<34} {'mean':>8} {'min':>8} {'max':>8}  per seed"]
    lines.append("-" * 100)
    for key, s in summary.items():
        digits = 2 if key.endswith("share_ge_0") else 4 if "margin" in key else 3
        per_seed = ", ".join("–" if v is None else f"{v:.{digits}f}" for v in s["per_seed"])
        lines.append(
            f"{key:<34} {fmt_number(s['mean'], digits):>8} {fmt_number(s['min'], digits):>8} "
            f"{fmt_number(s['max'], digits):>8}  [{per_seed}] ({s['defined']} defined)"
        )
    lines.append(
        "(ratio: cost_ratio_at_best_single_quality, – = no λ reaches it; margin: mean frontier margin; "
        "ci95 and share_ge_0: its 95 % interval and the share of resamples >= 0, test records resampled)"
    )
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------ output


def fmt_number(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _interval_text(bootstrap: Mapping[str, Any]) -> str:
    if bootstrap["ci95"] is None:
        return ""
    low, high = bootstrap["ci95"]
    return (
        f" (95 % over {bootstrap['resamples']} resamples of the records: [{low:+.4f}, {high:+.4f}], "
        f">= 0 in {bootstrap['share_at_or_above']:.2f} of them)"
    )


def format_report(report: Mapping[str, Any], title: str) -> str:
    """A plain-text summary: the headline ratios, the frontier comparison, then every policy by cost
    (for the λ sweeps only the Pareto points, the JSON has all of them)."""
    best = report["best_single"]
    lines = [
        title,
        f"records: {report['records']}, models: {len(report['models'])}, "
        f"best-single (on training data): {best['model']} quality {best['quality']:.4f} "
        f"cost ${best['cost_usd']:.4f}",
        "cost_ratio_at_best_single_quality: mtrouter "
        + fmt_number(report["cost_ratio_at_best_single_quality"])
        + "".join(
            f", {f} {fmt_number(b['cost_ratio_at_best_single_quality'])}"
            for f, b in report["baselines"].items()
        ),
    ]
    for family, cmp in report["frontier_comparison"].items():
        lines.append(
            f"mtrouter frontier vs {family} at equal cost: at_or_above={cmp['at_or_above']}, "
            f"{cmp['compared']} points compared ({cmp['below_our_range']} cheaper than our cheapest), "
            f"at or above at {fmt_number(cmp['share_at_or_above'], 2)} of them, "
            f"min margin {fmt_number(cmp['min_margin'], 4)}, mean margin {fmt_number(cmp['mean_margin'], 4)}"
            + _interval_text(cmp["bootstrap"])
        )
    if "over_seeds" in report:
        block = report["over_seeds"]
        lines += [
            "",
            f"over {len(block['seeds'])} training seeds (the figures above are seed {block['seeds'][0]}'s):",
        ]
        lines.append(format_seeds(block["summary"], block["seeds"]).rstrip("\n"))
        fits = ", ".join(f"{run['fit_seconds']}" for run in block["runs"])
        kinds = ", ".join(run["estimator"] for run in block["runs"])
        lines.append(f"estimator per seed ({block['estimator_requested']} requested): [{kinds}]")
        lines.append(
            f"fit seconds per seed (cross-validation included; {block['cores']} cores, "
            f"{block['jobs']} seed(s) at a time): [{fits}]"
        )
    points = [PolicyResult(**p) for p in report["policies"]]
    swept = {p.family for p in points if p.lam is not None}
    fronts = {q.name for f in swept for q in pareto([p for p in points if p.family == f])}
    shown = [p for p in points if p.lam is None or p.name in fronts]
    lines.append("")
    lines.append(f"{'policy':<34} {'quality':>8} {'cost_usd':>10}  routed to")
    lines.append("-" * 100)
    for p in sorted(shown, key=lambda p: (p.cost_usd, -p.quality)):
        top = sorted(p.shares.items(), key=lambda kv: -kv[1])[:3]
        routed = ", ".join(f"{m} {s:.0%}" for m, s in top)
        lines.append(f"{p.name:<34} {p.quality:>8.4f} {p.cost_usd:>10.4f}  {routed}")
    lines.append("(λ sweeps: Pareto points only; all points are in the JSON)")
    return "\n".join(lines) + "\n"


def plot_report(report: Mapping[str, Any], path: Path, title: str) -> None:
    """The quality-cost plane: the λ sweeps as lines, single models and references as points."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = [PolicyResult(**p) for p in report["policies"]]
    fig, ax = plt.subplots(figsize=(8, 5.5))
    styles = {"mtrouter": ("C3", "o"), "knn": ("C0", "s"), "linear": ("C2", "^")}
    for family, (color, marker) in styles.items():
        sweep_points = sorted((p for p in points if p.family == family), key=lambda p: p.cost_usd)
        if sweep_points:
            ax.plot(
                [p.cost_usd for p in sweep_points],
                [p.quality for p in sweep_points],
                color=color,
                marker=marker,
                markersize=3,
                linewidth=1,
                label=f"{family} (λ sweep)",
            )
    for p in points:
        if p.family in ("single", "reference"):
            color = "black" if p.family == "reference" else "grey"
            ax.scatter([p.cost_usd], [p.quality], color=color, s=18, zorder=3)
            ax.annotate(
                p.name, (p.cost_usd, p.quality), fontsize=7, xytext=(3, 3), textcoords="offset points"
            )
    best = report["best_single"]
    ax.axhline(best["quality"], color="grey", linestyle=":", linewidth=0.8)
    ax.set_xscale("log")
    ax.set_xlabel("total cost (USD, log scale)")
    ax.set_ylabel("quality (mean score)")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
