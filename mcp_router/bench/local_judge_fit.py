"""`mcp-router bench judge --fit-local`: fit the local judge's numbers on SciFact's *train* split only.

1. Pairs: for every train query, the union of the four arms' top-10 lists plus its qrels-relevant
   documents, labelled by the qrels. Drawing negatives from every arm (the dense arm's included) is
   what keeps the judge from favouring the arm that ranks by the judge's own cosine.
2. The per-result model: a logistic regression (Newton's method, a small L2 penalty on standardised
   features) for each candidate feature set.
3. The list: reward = min(1, scale · statistic^power). For each power of `POWERS`, the scale makes
   the mean reward over every train query's four top-5 lists equal their mean NDCG@10; the power
   kept is the one whose per-arm mean rewards come nearest each arm's mean NDCG@10 (least squares
   over the four arms). Why: LQM compares arms by their mean reward, and a judge that regresses
   every list towards the mean (a weak arm's misses still score something, a strong arm's hits
   score less than 1) makes a weak, fast arm look nearly as good as a strong one. A power above 1
   spreads the rewards apart. The arms only label the train lists in this fit; the judge never
   sees which arm produced a list.
4. The feature set and statistic are chosen by 5-fold cross-validation grouped by query, on train
   queries: the mean of the held-out AUC (relevant vs non-relevant candidates) and the held-out
   Spearman of the rewards of every arm's top-5 against its NDCG@10; a richer candidate must win by
   `MARGIN`. The held-out per-arm bias is reported beside them. The choice is then refitted on
   every train query.

The result is written as `feedback/local_judge.json` (or `--fit-out`), with how it was fitted and
the train numbers. Test queries are never read.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mcp_router.bench.judge_sample import auc, spearman
from mcp_router.bench.local_judge_data import ARMS, JudgeData
from mcp_router.bench.paths import content_hash
from mcp_router.bench.report import ProgressBar
from mcp_router.feedback.local_judge import (
    FEATURES,
    PARAMS_FILE,
    STATISTICS,
    LocalJudge,
    LocalJudgeParams,
    features,
    list_statistic,
)

VERSION = "local-v2"  # v2: the list power (v1: power 1)
FEATURE_SETS: tuple[tuple[str, ...], ...] = (  # simplest first
    ("cosine",),
    ("cosine", "overlap"),
    ("cosine", "overlap", "bigram"),
    ("cosine", "overlap", "cosine^2", "overlap^2", "cosine*overlap"),
)
FOLDS = 5
MARGIN = 0.003  # a later (richer) candidate must beat the best so far by this much
L2 = 1.0  # on standardised features, against ~20,000 pairs: barely more than a tie-breaker
LIST_K = 5
SEED = 13
POWERS = tuple(float(x) for x in np.arange(0.5, 4.01, 0.25))  # beyond 4 the reward is a 0/1 threshold


# ---------------------------------------------------------------------------------------------- model


def fit_logistic(
    x: np.ndarray, y: np.ndarray, l2: float = L2, iterations: int = 100
) -> tuple[np.ndarray, float]:
    """(weights, bias) of an L2-penalised logistic regression of `y` (0/1) on `x`, by Newton's method
    on standardised columns (the penalty skips the bias); returned on the original scale."""
    mu = x.mean(axis=0)
    sd = x.std(axis=0)
    sd[sd == 0] = 1.0
    a = np.column_stack([(x - mu) / sd, np.ones(len(x))])
    penalty = np.full(a.shape[1], l2)
    penalty[-1] = 0.0
    beta = np.zeros(a.shape[1])
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-(a @ beta)))
        gradient = a.T @ (p - y) + penalty * beta
        hessian = a.T @ (a * (p * (1 - p))[:, None]) + np.diag(penalty) + 1e-9 * np.eye(a.shape[1])
        step = np.linalg.solve(hessian, gradient)
        beta -= step
        if np.max(np.abs(step)) < 1e-10:
            break
    weights = beta[:-1] / sd
    return weights, float(beta[-1] - weights @ mu)


def predict(x: np.ndarray, weights: np.ndarray, bias: float) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-(x @ weights + bias)))


# ---------------------------------------------------------------------------------------------- data


class Candidates:
    """Per train query: its candidate documents (every arm's top-10, then the relevant ones not
    retrieved), their feature rows and labels; and per arm, where its top-5 sits among them."""

    def __init__(self, jd: JudgeData, queries: Sequence[int], progress: bool = True) -> None:
        self.queries = list(queries)
        self.x: dict[int, np.ndarray] = {}
        self.y: dict[int, np.ndarray] = {}
        self.top: dict[tuple[int, str], list[int]] = {}  # (query, arm) -> rows of its top-5
        self.ndcg: dict[tuple[int, str], float] = {}  # (query, arm) -> NDCG@10 of its top-10
        self.bm25_depth: dict[int, int] = {}  # rows 0..n-1 of a query are bm25's top-10, in order
        bar = ProgressBar(len(self.queries), label="local judge: train candidates") if progress else None
        for q in self.queries:
            docs: list[int] = []
            for arm in ARMS:
                ranking = jd.ranking(q, arm)
                docs += [d for d in ranking if d not in docs]
                self.ndcg[(q, arm)] = jd.ndcg10(q, ranking)
            self.bm25_depth[q] = len(jd.ranking(q, "bm25"))
            relevant = jd.relevant(q)
            docs += sorted(relevant - set(docs))
            row = {d: i for i, d in enumerate(docs)}
            for arm in ARMS:
                self.top[(q, arm)] = [row[d] for d in jd.ranking(q, arm)[:LIST_K]]
            self.x[q] = features(jd.embed, "retrieve", jd.data.query_texts[q], [jd.passage(d) for d in docs])
            self.y[q] = np.array([d in relevant for d in docs], dtype=float)
            if bar:
                bar.update(1)
        if bar:
            bar.close()

    def stacked(self, queries: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        return np.concatenate([self.x[q] for q in queries]), np.concatenate([self.y[q] for q in queries])


def list_stats(
    cands: Candidates,
    queries: Sequence[int],
    p: dict[int, np.ndarray],
    statistic: str,
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(list statistic, NDCG@10, arm) of every (query, arm) top-5 list."""
    stat, gold, which = [], [], []
    for q in queries:
        for arm in ARMS:
            stat.append(list_statistic(statistic, p[q][cands.top[(q, arm)]]))
            gold.append(cands.ndcg[(q, arm)])
            which.append(arm)
    return np.array(stat), np.array(gold), which


def mean_matching_scale(stat: np.ndarray, gold: np.ndarray) -> float:
    """The scale s with mean(min(1, s · stat)) = mean(gold), by bisection (the mean rises with s)."""
    lo, hi = 0.0, 1.0
    while np.minimum(1.0, hi * stat).mean() < gold.mean() and hi < 1e6:
        hi *= 2
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if np.minimum(1.0, mid * stat).mean() < gold.mean() else (lo, mid)
    return (lo + hi) / 2


def arm_means(reward: np.ndarray, gold: np.ndarray, which: Sequence[str]) -> dict[str, tuple[float, float]]:
    """Per arm: (its lists' mean reward, their mean NDCG@10)."""
    arms = np.asarray(which)
    return {a: (float(reward[arms == a].mean()), float(gold[arms == a].mean())) for a in dict.fromkeys(which)}


def arm_bias(reward: np.ndarray, gold: np.ndarray, which: Sequence[str]) -> dict[str, float]:
    """Per arm: its lists' mean reward minus their mean NDCG@10."""
    return {a: judged - true for a, (judged, true) in arm_means(reward, gold, which).items()}


def fit_list_map(stat: np.ndarray, gold: np.ndarray, which: Sequence[str]) -> tuple[float, float]:
    """(scale, power) of reward = min(1, scale · stat^power): for each of `POWERS` the mean-matching
    scale, and the power whose per-arm mean rewards are nearest the arms' mean NDCG@10."""
    best: tuple[float, float, float] | None = None
    for power in POWERS:
        scale = mean_matching_scale(stat**power, gold)
        bias = arm_bias(np.minimum(1.0, scale * stat**power), gold, which)
        loss = sum(b * b for b in bias.values())
        if best is None or loss < best[0]:
            best = (loss, scale, power)
    assert best is not None
    return best[1], best[2]


def cross_validate(
    cands: Candidates, columns: list[int], statistic: str, seed: int = SEED
) -> dict[str, float]:
    """Held-out metrics over `FOLDS` folds of the train queries: AUC of relevant vs non-relevant
    candidates (every arm's top-10) and vs bm25's top-10 only (`bench judge`'s hard negatives);
    Spearman of the rewards of bm25's top-5 lists, and of every arm's, against NDCG@10; the spread
    of the per-arm bias (largest minus smallest)."""
    order = np.random.default_rng(seed).permutation(len(cands.queries))
    folds = [[cands.queries[i] for i in order[f::FOLDS]] for f in range(FOLDS)]
    out: dict[str, list[float]] = {
        "auc": [],
        "auc_bm25_negatives": [],
        "spearman_bm25": [],
        "spearman_all": [],
        "bias_spread": [],
    }
    for f, held in enumerate(folds):
        fit_on = [q for g, fold in enumerate(folds) if g != f for q in fold]
        x, y = cands.stacked(fit_on)
        w, b = fit_logistic(x[:, columns], y)
        p = {q: predict(cands.x[q][:, columns], w, b) for q in cands.queries}
        scale, power = fit_list_map(*list_stats(cands, fit_on, p, statistic))
        positives = np.concatenate([p[q][cands.y[q] == 1] for q in held])
        negatives = np.concatenate([p[q][cands.y[q] == 0] for q in held])
        bm25_negatives = np.concatenate(
            [p[q][: cands.bm25_depth[q]][cands.y[q][: cands.bm25_depth[q]] == 0] for q in held]
        )
        out["auc"].append(auc(positives, negatives))
        out["auc_bm25_negatives"].append(auc(positives, bm25_negatives))
        stat, gold, which = list_stats(cands, held, p, statistic)
        reward = np.minimum(1.0, scale * stat**power)
        bm25 = np.asarray(which) == "bm25"
        out["spearman_bm25"].append(spearman(reward[bm25], gold[bm25]))
        out["spearman_all"].append(spearman(reward, gold))
        bias = arm_bias(reward, gold, which).values()
        out["bias_spread"].append(max(bias) - min(bias))
    return {k: round(float(np.mean(v)), 4) for k, v in out.items()}


def fit_local_judge(jd: JudgeData, progress: bool = True) -> tuple[LocalJudgeParams, dict[str, Any]]:
    """The parameters fitted on the train queries, and a report of the fit (train numbers only)."""
    started = time.perf_counter()
    train = jd.queries("train")
    cands = Candidates(jd, train, progress)
    cv: dict[str, dict[str, float]] = {}
    best: tuple[tuple[str, ...], str] | None = None
    best_value = -1.0
    for fs in FEATURE_SETS:
        for statistic in STATISTICS:
            m = cross_validate(cands, [FEATURES.index(f) for f in fs], statistic)
            cv[f"{'+'.join(fs)} / {statistic}"] = m
            value = (m["auc"] + m["spearman_all"]) / 2
            if best is None or value > best_value + MARGIN:
                best, best_value = (fs, statistic), value
    assert best is not None
    chosen, statistic = best
    columns = [FEATURES.index(f) for f in chosen]
    x, y = cands.stacked(train)
    weights, bias = fit_logistic(x[:, columns], y)
    p = {q: predict(cands.x[q][:, columns], weights, bias) for q in train}
    stat, gold, which = list_stats(cands, train, p, statistic)
    scale, power = fit_list_map(stat, gold, which)
    reward = np.minimum(1.0, scale * stat**power)
    bias_by_arm = {
        arm: {"judge_mean": round(judged, 4), "ndcg10_mean": round(true, 4), "bias": round(judged - true, 4)}
        for arm, (judged, true) in arm_means(reward, gold, which).items()
    }
    files = jd.data.files
    fit = {
        "command": "mcp-router bench judge --fit-local",
        "data": "SciFact train split: queries.train.jsonl + qrels/train.tsv, corpus.jsonl (test never read)",
        "data_hash": content_hash([files[0], files[3], files[4]]),
        "train_queries": len(train),
        "pairs": len(y),
        "relevant_pairs": int(y.sum()),
        "candidates": "per query: the union of the bm25, bm25-title, dense and hybrid top-10, plus "
        "its qrels-relevant documents; label = qrels relevant",
        "model": f"logistic regression, Newton's method, L2 = {L2:g} on standardised features",
        "selection": f"{FOLDS}-fold cross-validation over train queries (seed {SEED}): the best mean of "
        f"held-out auc and spearman_all; a later candidate must win by {MARGIN}",
        "cv": cv,
        "list_calibration": "reward = min(1, scale * statistic^power); per power in "
        f"{POWERS[0]:g}..{POWERS[-1]:g} (step {POWERS[1] - POWERS[0]:g}) the scale making the mean reward "
        "over every train query's four top-5 lists equal their mean NDCG@10; the power whose per-arm "
        "mean rewards are nearest the arms' mean NDCG@10 (least squares)",
        "train_bias_by_arm": bias_by_arm,
        "train_spearman_all_arms": round(float(spearman(reward, gold) or 0.0), 4),
        "train_share_capped_at_1": round(float(np.mean(scale * stat**power >= 1.0)), 4),
        "wall_s": round(time.perf_counter() - started, 1),
    }
    params = LocalJudgeParams(
        version=VERSION,
        features=chosen,
        weights=tuple(round(float(w), 6) for w in weights),
        bias=round(bias, 6),
        list_k=LIST_K,
        list_statistic=statistic,
        list_scale=round(float(scale), 6),
        list_power=power,
        fit=fit,
    )
    return params, fit


def format_fit(params: LocalJudgeParams, path: Path) -> str:
    fit = params.fit
    lines = [
        f"local judge {params.version}: fitted on {fit['train_queries']} SciFact train queries, "
        f"{fit['pairs']} pairs ({fit['relevant_pairs']} relevant); wrote {path}",
        "cross-validation on train (held-out): features / list statistic: AUC, AUC vs bm25 negatives, "
        "Spearman bm25 top-5, Spearman all arms, per-arm bias spread",
    ]
    for name, m in fit["cv"].items():
        lines.append(
            f"  {name:<62} {m['auc']:.4f}  {m['auc_bm25_negatives']:.4f}  {m['spearman_bm25']:.4f}  "
            f"{m['spearman_all']:.4f}  {m['bias_spread']:.4f}"
        )
    terms = " ".join(f"{w:+.3f}·{f}" for f, w in zip(params.features, params.weights, strict=True))
    lines.append(f"p = σ({params.bias:+.3f} {terms})")
    lines.append(
        f"reward = min(1, {params.list_scale:.4f} · ({params.list_statistic} of p, top {params.list_k})"
        f"^{params.list_power:g})"
    )
    lines.append("train lists (in-sample): arm, mean judge reward, mean NDCG@10, bias")
    for arm, b in fit["train_bias_by_arm"].items():
        lines.append(f"  {arm:<11} {b['judge_mean']:.4f}  {b['ndcg10_mean']:.4f}  {b['bias']:+.4f}")
    return "\n".join(lines)


def main(data: Any, out: Path | None = None, progress: bool = True) -> int:
    """Fit on `data`'s train queries and write the parameters to `out` (default: the package file)."""
    jd = JudgeData.load(data, progress)
    params, _ = fit_local_judge(jd, progress)
    path = out or PARAMS_FILE
    path.write_text(json.dumps(params.to_dict(), indent=2) + "\n", encoding="utf-8")
    LocalJudge(LocalJudgeParams.load(path))  # what was written loads back
    print(format_fit(params, path))
    return 0
