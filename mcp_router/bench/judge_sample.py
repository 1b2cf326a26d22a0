"""The sample `bench judge` grades and the statistics it reports: SciFact with a bm25 index,
query–passage pairs (relevant against hard negatives) and top-5 lists per split, AUC and Spearman.

Shared by the LLM judges' run (`judge_bench`) and the local judge's fit and evaluation
(`local_judge_fit`, `local_judge_eval`), so all three grade the same sample the same way.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

LIST_K = 5
DEPTH = 10  # bm25 ranking depth: hard negatives and NDCG@10


# ---------------------------------------------------------------------------------------------- metrics


def rankdata(values: Sequence[float]) -> np.ndarray:
    """1-based ranks, ties sharing their average rank (scipy's `rankdata(method="average")`)."""
    v = np.asarray(values, dtype=float)
    order = np.argsort(v, kind="mergesort")
    ranks = np.empty(len(v))
    sorted_v = v[order]
    i = 0
    while i < len(v):
        j = i
        while j + 1 < len(v) and sorted_v[j + 1] == sorted_v[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def spearman(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Spearman's ρ (Pearson correlation of the average ranks); `None` with fewer than 3 points or
    when either side is constant (ρ undefined)."""
    if len(x) != len(y):
        raise ValueError("x and y differ in length")
    if len(x) < 3:
        return None
    rx, ry = rankdata(x), rankdata(y)
    rx, ry = rx - rx.mean(), ry - ry.mean()
    denom = math.sqrt(float(rx @ rx) * float(ry @ ry))
    if denom == 0:
        return None
    return float(rx @ ry) / denom


def auc(positives: Sequence[float], negatives: Sequence[float]) -> float | None:
    """P(score of a positive > score of a negative), ties counting ½ (the Mann–Whitney AUC); `None`
    when either side is empty."""
    if not len(positives) or not len(negatives):
        return None
    p = np.asarray(positives, dtype=float)[:, None]
    n = np.asarray(negatives, dtype=float)[None, :]
    return float(np.mean((p > n) + 0.5 * (p == n)))


def direction_shares(
    relevant: Sequence[int], nonrelevant: Sequence[int]
) -> tuple[float | None, float | None]:
    """(share of relevant pairs graded ≥ 3, share of non-relevant pairs graded ≤ 2); `None` for an
    empty side."""
    ge3 = float(np.mean(np.asarray(relevant) >= 3)) if len(relevant) else None
    le2 = float(np.mean(np.asarray(nonrelevant) <= 2)) if len(nonrelevant) else None
    return ge3, le2


def p95(values: Sequence[float]) -> float | None:
    return float(np.percentile(values, 95)) if len(values) else None


def mean(values: Sequence[float]) -> float | None:
    return float(np.mean(values)) if len(values) else None


# ---------------------------------------------------------------------------------------------- data


@dataclass(frozen=True)
class Pair:
    query: int  # index into SciFact's queries
    doc: int  # index into SciFact's documents
    relevant: bool


class Corpus:
    """SciFact with a bm25 index over title + " " + abstract (the retrieval benchmark's `bm25` arm)."""

    def __init__(self, data: Any) -> None:
        from providers.retrieve.documents import Document
        from providers.retrieve.indexes import LexicalIndex

        self.data = data
        self.doc_index = {d: i for i, d in enumerate(data.doc_ids)}
        docs = [
            Document(id=d, text=f"{t} {a}".strip(), metadata={})
            for d, t, a in zip(data.doc_ids, data.titles, data.abstracts, strict=True)
        ]
        self.lexical = LexicalIndex.build(docs)
        self._top: dict[int, list[int]] = {}

    @classmethod
    def load(cls) -> Corpus:
        from mcp_router.bench.paths import data_dir
        from mcp_router.bench.retrieval import load_scifact

        return cls(load_scifact(data_dir() / "scifact"))

    def top(self, query: int, k: int = DEPTH) -> list[int]:
        """bm25's top-k document indices for query `query`."""
        if query not in self._top:
            self._top[query] = [d for d, _ in self.lexical.rank(self.data.query_texts[query], DEPTH)]
        return self._top[query][:k]

    def relevant(self, query: int) -> list[int]:
        qrels = self.data.qrels[query]
        return sorted(self.doc_index[d] for d, g in qrels.items() if g > 0 and d in self.doc_index)

    def passage(self, doc: int) -> str:
        return f"{self.data.titles[doc]}\n{self.data.abstracts[doc]}".strip()

    def ndcg10(self, query: int) -> float:
        from mcp_router.bench.metrics import ndcg_at_k

        ranking = [self.data.doc_ids[d] for d in self.top(query, DEPTH)]
        return ndcg_at_k(ranking, self.data.qrels[query], DEPTH)


def in_split(corpus: Corpus, query: int, split: str) -> bool:
    """Whether query `query` belongs to `split`: `test`, `train`, or `all`."""
    return split == "all" or corpus.data.query_split[query] == split


def sample_pairs(corpus: Corpus, n: int, seed: int, split: str = "all") -> list[Pair]:
    """`n` pairs: ⌈n/2⌉ queries of `split` (seeded) each give a relevant document (qrels) and, for
    ⌊n/2⌋ of them, a hard negative: a bm25 top-10 document not in the qrels. Queries without both are
    skipped."""
    rng = np.random.default_rng([seed, 21])
    pairs: list[Pair] = []
    n_rel, n_non = (n + 1) // 2, n // 2
    for q in rng.permutation(len(corpus.data.query_texts)):
        q = int(q)
        if len(pairs) >= n:
            break
        if not in_split(corpus, q, split):
            continue
        relevant = corpus.relevant(q)
        negatives = [d for d in corpus.top(q) if d not in relevant]
        if not relevant or not negatives:
            continue
        rel_so_far = sum(p.relevant for p in pairs)
        if rel_so_far < n_rel:
            pairs.append(Pair(q, int(rng.choice(relevant)), True))
        if len(pairs) - sum(p.relevant for p in pairs) < n_non:
            pairs.append(Pair(q, int(rng.choice(negatives)), False))
    return pairs


def sample_list_queries(corpus: Corpus, m: int, seed: int, split: str = "all") -> list[int]:
    """`m` queries of `split` (seeded, without replacement) whose bm25 ranking is not empty."""
    rng = np.random.default_rng([seed, 22])
    out = []
    for q in rng.permutation(len(corpus.data.query_texts)):
        if len(out) >= m:
            break
        if in_split(corpus, int(q), split) and corpus.top(int(q), LIST_K):
            out.append(int(q))
    return out
