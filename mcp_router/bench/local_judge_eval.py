"""`bench judge --judges local`: the local judge (`feedback.local_judge`) against SciFact gold, on the
same pairs and lists as the LLM judges, plus what only a cheap judge can afford to measure:

- (a) AUC of p (each pair's relevance chance, judged alone) on relevant vs hard-negative pairs;
- (b) Spearman of the judge's reward on the bm25 top-5 against the NDCG@10 of the bm25 top-10;
- per-arm bias: on the same queries, every arm's top-5 judged, the mean reward per arm against
  that arm's mean NDCG@10 (the dense arm ranks by the judge's own MiniLM cosine, so a judge could
  favour it); Spearman per arm and over every arm's lists; and the NDCG@10 a per-query choice of
  the judge's best-scored arm would get, beside the best fixed arm and the per-query oracle;
- cost: wall time per judged list with the encoder as the server runs it (torch-free unless torch
  is loaded), and the largest score difference between it and the benchmark's vector lookup.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from mcp_router.bench.judge_sample import Corpus, Pair, auc, mean, p95, spearman
from mcp_router.bench.local_judge_data import ARMS, JudgeData
from mcp_router.bench.report import ProgressBar
from mcp_router.feedback.judge import JudgeInput
from mcp_router.feedback.local_judge import LocalJudge, LocalJudgeParams, packaged_params

LIST_K = 5
TIMED_LISTS = 40


def _r(x: float | None, digits: int = 4) -> float | None:
    return None if x is None else round(float(x), digits)


def _list_input(jd: JudgeData, query: int, docs: list[int]) -> JudgeInput:
    return JudgeInput("retrieve", jd.data.query_texts[query], tuple(jd.passage(d) for d in docs))


def per_arm(judge: LocalJudge, jd: JudgeData, queries: list[int]) -> dict[str, Any]:
    """Every arm's top-5 judged on every query: per-arm means and bias, Spearman, judge-chosen arms."""
    scores = np.zeros((len(queries), len(ARMS)))
    gold = np.zeros_like(scores)
    for i, q in enumerate(queries):
        for a, arm in enumerate(ARMS):
            ranking = jd.ranking(q, arm)
            scores[i, a] = judge.score(_list_input(jd, q, ranking[:LIST_K])) if ranking else 0.0
            gold[i, a] = jd.ndcg10(q, ranking)
    arms = {}
    for a, arm in enumerate(ARMS):
        arms[arm] = {
            "judge_mean": _r(scores[:, a].mean()),
            "ndcg10_mean": _r(gold[:, a].mean()),
            "bias": _r(scores[:, a].mean() - gold[:, a].mean()),
            "spearman_rho": _r(spearman(scores[:, a], gold[:, a])),
        }
    picked = scores.argmax(axis=1)  # ties: the first arm in ARMS order
    return {
        "arms": arms,
        "bias_spread": _r(max(e["bias"] for e in arms.values()) - min(e["bias"] for e in arms.values())),
        "arm_order_by_judge": [ARMS[a] for a in np.argsort(-scores.mean(axis=0), kind="stable")],
        "arm_order_by_ndcg10": [ARMS[a] for a in np.argsort(-gold.mean(axis=0), kind="stable")],
        "spearman_all_lists": _r(spearman(scores.ravel(), gold.ravel())),
        "judge_choice_ndcg10": _r(gold[np.arange(len(queries)), picked].mean()),
        "best_fixed_arm_ndcg10": _r(gold.mean(axis=0).max()),
        "best_fixed_arm": ARMS[int(gold.mean(axis=0).argmax())],
        "oracle_ndcg10": _r(gold.max(axis=1).mean()),
        "queries": len(queries),
    }


def served_cost(params: LocalJudgeParams, jd: JudgeData, queries: list[int], lookup: LocalJudge) -> dict:
    """Wall seconds per judged top-5 list with the server's encoder, as the server runs it (load timed
    apart, by a first call), and the largest gap between its scores and the vector lookup's."""
    served = LocalJudge(params)
    started = time.perf_counter()
    served.score(JudgeInput("retrieve", "warm-up", ("warm-up passage",)))
    load_s = time.perf_counter() - started
    latencies, gaps = [], []
    for q in queries[:TIMED_LISTS]:
        item = _list_input(jd, q, jd.ranking(q, "bm25")[:LIST_K])
        started = time.perf_counter()
        score = served.score(item)
        latencies.append(time.perf_counter() - started)
        gaps.append(abs(score - lookup.score(item)))
    from providers.retrieve import embedder

    return {
        "encoder": "sentence-transformers (torch)" if embedder.loaded() else "numpy (torch-free)",
        "load_s": round(load_s, 3),
        "timed_lists": len(latencies),
        "latency_mean_s": _r(mean(latencies)),
        "latency_p95_s": _r(p95(latencies)),
        "max_score_gap_served_vs_lookup": _r(max(gaps) if gaps else None, 6),
    }


def local_agreement(
    corpus: Corpus,
    pairs: list[Pair],
    queries: list[int],
    progress: bool = True,
    params: LocalJudgeParams | None = None,
    jd: JudgeData | None = None,
) -> dict[str, Any]:
    """The local judge's report entry (blocking; a few seconds beyond loading the arms' indexes)."""
    params = params or packaged_params()
    jd = jd or JudgeData.load(corpus.data, progress)
    judge = LocalJudge(params, embed=jd.embed)
    bar = ProgressBar(len(pairs) + len(queries), label="judge local") if progress else None
    rel, non = [], []
    for pair in pairs:
        p = judge.relevance("retrieve", corpus.data.query_texts[pair.query], (jd.passage(pair.doc),))[0]
        (rel if pair.relevant else non).append(float(p))
        if bar:
            bar.update(1, "pairs")
    rewards, ndcgs = [], []
    for q in queries:
        rewards.append(judge.score(_list_input(jd, q, corpus.top(q, LIST_K))))
        ndcgs.append(corpus.ndcg10(q))
        if bar:
            bar.update(1, "top-5 lists")
    if bar:
        bar.close()
    cost = served_cost(params, jd, queries, judge)
    return {
        "kind": "local",
        "version": params.version,
        "features": list(params.features),
        "pairs": len(pairs),
        "relevant_pairs": len(rel),
        "nonrelevant_pairs": len(non),
        "auc": _r(auc(rel, non)),
        "relevant_p_mean": _r(mean(rel)),
        "nonrelevant_p_mean": _r(mean(non)),
        "spearman_rho": _r(spearman(rewards, ndcgs)),
        "queries": len(queries),
        "list_reward_mean": _r(mean(rewards)),
        "list_ndcg10_mean": _r(mean(ndcgs)),
        "per_arm": per_arm(judge, jd, queries),
        **cost,
        "cost_per_call_usd": 0.0,
        "fit": {k: params.fit.get(k) for k in ("command", "data", "data_hash", "train_queries", "cv")},
    }


def _f(x: float | None, spec: str = ".3f") -> str:
    """A number for the summary, or n/a (Spearman is undefined on constant values)."""
    return "n/a" if x is None else format(x, spec)


def format_local(name: str, e: dict[str, Any]) -> list[str]:
    """The local judge's lines of the `bench judge` summary."""
    arms = e["per_arm"]
    ms = {k: None if e[k] is None else 1000 * e[k] for k in ("latency_mean_s", "latency_p95_s")}
    lines = [
        f"{name} judge ({e['version']}, features {'+'.join(e['features'])}; fitted on SciFact train only):",
        f"  (a) AUC {_f(e['auc'])} on {e['relevant_pairs']} relevant vs {e['nonrelevant_pairs']} "
        f"hard-negative pairs (mean p {_f(e['relevant_p_mean'])} vs {_f(e['nonrelevant_p_mean'])})",
        f"  (b) Spearman rho {_f(e['spearman_rho'])} over {e['queries']} bm25 top-5 lists vs NDCG@10",
        f"  per-arm bias, every arm's top-5 on the same {arms['queries']} queries "
        f"(bias = mean judge reward - mean NDCG@10):",
        f"    {'arm':<11} {'judge':>6} {'NDCG@10':>7} {'bias':>7} {'rho':>6}",
    ]
    for arm, a in arms["arms"].items():
        lines.append(
            f"    {arm:<11} {a['judge_mean']:6.3f} {a['ndcg10_mean']:7.3f} {a['bias']:+7.3f} "
            f"{_f(a['spearman_rho']):>6}"
        )
    lines += [
        f"    bias spread {_f(arms['bias_spread'])}; arms by judge {arms['arm_order_by_judge']}, "
        f"by NDCG@10 {arms['arm_order_by_ndcg10']}; rho over all lists {_f(arms['spearman_all_lists'])}",
        f"    per query, the judge's best-scored arm gets NDCG@10 {_f(arms['judge_choice_ndcg10'])} "
        f"(best fixed arm {arms['best_fixed_arm']} {_f(arms['best_fixed_arm_ndcg10'])}, "
        f"oracle {_f(arms['oracle_ndcg10'])})",
        f"  cost: {_f(ms['latency_mean_s'], '.0f')} ms mean, {_f(ms['latency_p95_s'], '.0f')} ms p95 "
        f"per judged top-5 list, {e['encoder']} MiniLM as the server runs it ({e['timed_lists']} lists; "
        f"encoder load {e['load_s']:.2f} s once), $0; served vs lookup scores differ by at most "
        f"{_f(e['max_score_gap_served_vs_lookup'], '.1e')}",
    ]
    return lines
