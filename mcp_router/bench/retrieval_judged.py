"""The local judge's reward for every (query, arm) of the retrieval benchmark: what the routers learn
from under `bench retrieval --judge local`, in place of the simulated judge's gold + noise.

Each arm's top results for each query are graded by the server's own judge code
(`feedback.local_judge.LocalJudge` with the packaged parameters), exactly as a served call's result
list would be. Only the encoder is swapped for vectors computed up front: the passages' come from
the benchmark's cached corpus vectors (`JudgeData`, the same model over the same text), the queries'
from one batch of the server's encoder. A list's grade depends only on (query, arm), so the matrix
is computed once and cached beside the arm table, keyed by the data, the arms and the judge's
parameters: a refit judge is graded afresh.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from mcp_router.bench.local_judge_data import JudgeData
from mcp_router.bench.paths import cache_dir, content_hash
from mcp_router.bench.report import ProgressBar
from mcp_router.bench.retrieval import ARMS, SciFact
from mcp_router.feedback.judge import JudgeInput
from mcp_router.feedback.local_judge import MAX_CHARS, LocalJudge, default_embed, packaged_params

REWARDS_VERSION = "local-judge-rewards-v1"


def _query_text(query: str) -> str:
    return query.strip()[:MAX_CHARS]  # how `local_judge.features` hands a query to the encoder


def grade_arms(data: SciFact, jd: JudgeData, judge: LocalJudge, progress: bool = True) -> np.ndarray:
    """(n_queries, n_arms): the judge's reward of each arm's top `list_k` for each query."""
    k = judge.params.list_k
    rewards = np.zeros((len(data.query_texts), len(ARMS)))
    bar = ProgressBar(len(data.query_texts), label="local judge grading arms") if progress else None
    for q, query in enumerate(data.query_texts):
        for a, arm in enumerate(ARMS):
            docs = jd.ranking(q, arm)[:k]
            rewards[q, a] = judge.score(JudgeInput("retrieve", query, tuple(jd.passage(d) for d in docs)))
        if bar and (q % 50 == 49 or q == len(data.query_texts) - 1):
            bar.update(50 if q % 50 == 49 else len(data.query_texts) % 50)
    if bar:
        bar.close()
    return rewards


def local_judge_rewards(data: SciFact, progress: bool = True) -> tuple[np.ndarray, Path, bool]:
    """The cached reward matrix (graded on a miss): (rewards, cache file, whether it was a hit)."""
    params = packaged_params()
    part = () if data.sample == "full" else (data.sample,)
    key = content_hash(
        data.files, REWARDS_VERSION, json.dumps(params.to_dict(), sort_keys=True), ",".join(ARMS), *part
    )
    path = cache_dir() / f"scifact-local-judge-{key}.npy"
    if path.is_file():
        return np.load(path), path, True
    jd = JudgeData.load(data, progress)
    queries = list(dict.fromkeys(_query_text(q) for q in data.query_texts))
    query_vectors = dict(zip(queries, np.asarray(default_embed(queries), dtype=np.float32), strict=True))

    def embed(texts: Sequence[str]) -> np.ndarray:
        rest = [t for t in texts if t not in query_vectors]
        looked_up = dict(zip(rest, jd.embed(rest), strict=True)) if rest else {}
        return np.stack([query_vectors[t] if t in query_vectors else looked_up[t] for t in texts])

    rewards = grade_arms(data, jd, LocalJudge(params, embed=embed), progress)
    tmp = path.with_suffix(".tmp.npy")
    np.save(tmp, rewards)
    tmp.replace(path)
    return rewards, path, False
