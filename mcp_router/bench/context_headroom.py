"""What a per-query arm choice can gain from the routers' query features, fitted with hindsight.

LQM's quality head is a linear model of the features `x` per arm. Here the same kind of model is fitted
offline on the *train* queries' gold quality (every arm's NDCG for every query, which no online router
ever sees: it observes one arm per call, through a noisy judge), with the ridge penalty picked by
5-fold cross-validation on train, and its per-query choice is scored on the *test* queries. It bounds
what context can add for a linear router on these features: when this choice is no better than the
best fixed arm, the gap between LQM and the per-query oracle is not a learning problem but missing
information, and only better features can close it.

Two choices are scored, each beside the fixed arm it must beat: the arm with the highest predicted
quality (against the best arm by mean quality on train), and the arm with the highest predicted
quality per service cycle at unloaded latency (LQM's objective, V = q / (1 + τ̃); against the best arm
by that objective on train).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

PENALTIES = (0.01, 0.1, 1.0, 10.0, 100.0)
FOLDS = 5


def ridge(features: np.ndarray, targets: np.ndarray, penalty: float) -> np.ndarray:
    """Weights (d, n_targets) of ridge regression; the first feature column is the bias and is not
    penalised (the routers' features carry their bias as column 0)."""
    gram = features.T @ features
    ridge_diag = np.full(features.shape[1], penalty)
    ridge_diag[0] = 0.0
    return np.linalg.solve(gram + np.diag(ridge_diag) + 1e-9 * np.eye(len(gram)), features.T @ targets)


def cv_penalty(features: np.ndarray, targets: np.ndarray, seed: int = 0) -> tuple[float, dict[float, float]]:
    """The penalty of `PENALTIES` with the lowest mean squared error over `FOLDS` folds of the rows."""
    fold = np.random.default_rng(seed).permutation(len(features)) % FOLDS
    errors = {}
    for penalty in PENALTIES:
        squared = 0.0
        for k in range(FOLDS):
            held = fold == k
            weights = ridge(features[~held], targets[~held], penalty)
            squared += float(((features[held] @ weights - targets[held]) ** 2).sum())
        errors[penalty] = squared / targets.size
    return min(errors, key=lambda p: (errors[p], -p)), errors


def _choice(gold: np.ndarray, picks: np.ndarray, arms: Sequence[str], latency: np.ndarray) -> dict[str, Any]:
    counts = np.bincount(picks, minlength=len(arms))
    return {
        "ndcg10": round(float(gold[np.arange(len(picks)), picks].mean()), 4),
        "unloaded_latency_s": round(float(latency[picks].mean()), 4),
        "share": {arm: round(float(c / len(picks)), 3) for arm, c in zip(arms, counts, strict=True)},
    }


def context_headroom(
    X: np.ndarray,
    gold: np.ndarray,
    split: Sequence[str],
    arms: Sequence[str],
    arm_latency: Mapping[str, float],
    l_ref_s: float,
) -> dict[str, Any]:
    """The hindsight ceiling of a linear per-query choice from `X`, fitted on train, scored on test."""
    train = np.array([s == "train" for s in split])
    test = np.array([s == "test" for s in split])
    if train.sum() < 2 * FOLDS or test.sum() == 0:
        return {"skipped": f"needs train and test queries (got {int(train.sum())} and {int(test.sum())})"}
    latency = np.array([arm_latency[a] for a in arms])
    cycle = 1.0 + np.minimum(latency / l_ref_s, 1.0)
    penalty, errors = cv_penalty(X[train], gold[train])
    predicted = X[test] @ ridge(X[train], gold[train], penalty)
    truth = gold[test]
    fixed = int(gold[train].mean(axis=0).argmax())
    fixed_per_cycle = int((gold[train].mean(axis=0) / cycle).argmax())
    return {
        "what": "per-arm ridge of gold NDCG@10 on the features, fitted on train, scored on test",
        "penalty": penalty,
        "cv_mse": {str(p): round(e, 5) for p, e in errors.items()},
        "test_queries": int(test.sum()),
        "best_fixed_arm": {"arm": arms[fixed], **_choice(truth, np.full(len(truth), fixed), arms, latency)},
        "best_fixed_arm_per_cycle": {
            "arm": arms[fixed_per_cycle],
            **_choice(truth, np.full(len(truth), fixed_per_cycle), arms, latency),
        },
        "by_predicted_quality": _choice(truth, predicted.argmax(axis=1), arms, latency),
        "by_predicted_quality_per_cycle": _choice(truth, (predicted / cycle).argmax(axis=1), arms, latency),
        "oracle": _choice(truth, truth.argmax(axis=1), arms, latency),
    }


def format_headroom(h: dict[str, Any], features: str = "router features") -> list[str]:
    if "skipped" in h:
        return [f"context headroom of the {features}: skipped ({h['skipped']})"]
    lines = [
        f"context headroom of the {features} ({h['what']}; ridge penalty {h['penalty']} by 5-fold CV on "
        f"train; {h['test_queries']} test queries):"
    ]
    rows = [
        (f"best fixed arm ({h['best_fixed_arm']['arm']})", h["best_fixed_arm"]),
        ("choice by predicted quality", h["by_predicted_quality"]),
        (f"best fixed arm per cycle ({h['best_fixed_arm_per_cycle']['arm']})", h["best_fixed_arm_per_cycle"]),
        ("choice by predicted quality per cycle", h["by_predicted_quality_per_cycle"]),
        ("per-query oracle", h["oracle"]),
    ]
    for label, row in rows:
        share = ", ".join(f"{a} {s:.0%}" for a, s in row["share"].items() if s > 0)
        lines.append(
            f"  {label:<40} NDCG@10 {row['ndcg10']:.4f}  unloaded latency {row['unloaded_latency_s']:.3f}s  "
            f"({share})"
        )
    return lines
