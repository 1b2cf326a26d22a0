"""SciFact as the local judge sees it, for fitting it (train queries) and measuring it (test queries).

The judge code under test is the server's own (`feedback.local_judge`); only its sentence encoder is
swapped for a lookup of the passages' precomputed MiniLM vectors (the dense arm's cached corpus
vectors: the same model over the same text, title then abstract), so thousands of lists are scored
in seconds. Texts missing from the lookup (the queries) go to the server's encoder. `bench judge`
checks that the lookup and the served encoder give the same scores on a sample of lists.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from mcp_router.bench.retrieval import ARMS, K, Ranker, SciFact, arm_rankers, corpus_vectors
from mcp_router.feedback.local_judge import default_embed, result_text

SPLITS = ("test", "train", "all")


@dataclass
class JudgeData:
    """SciFact, its four arms' rankings (computed on demand, cached), and the lookup encoder."""

    data: SciFact
    vectors: np.ndarray  # the corpus's MiniLM vectors, row d = document d
    rankers: dict[str, Ranker]
    misses: int = 0  # texts the lookup did not hold (embedded with the server's encoder)
    _lookup: dict[str, int] = field(default_factory=dict)  # passage text -> document
    _index: dict[str, int] = field(default_factory=dict)  # document id -> document
    _rankings: dict[tuple[int, str], list[int]] = field(default_factory=dict)

    @classmethod
    def load(cls, data: SciFact, progress: bool = True) -> JudgeData:
        """With the corpus vectors of the retrieval benchmark's cache (computed on a miss)."""
        return cls.build(data, corpus_vectors(data, progress))

    @classmethod
    def build(cls, data: SciFact, vectors: np.ndarray) -> JudgeData:
        jd = cls(data, vectors, arm_rankers(data, vectors))
        jd._lookup = {result_text("retrieve", jd.passage(d)): d for d in range(len(data.doc_ids))}
        jd._index = {d: i for i, d in enumerate(data.doc_ids)}
        return jd

    def passage(self, doc: int) -> str:
        """A document as a `retrieve` result shows it (and as `bench judge` shows it to every judge)."""
        return f"{self.data.titles[doc]}\n{self.data.abstracts[doc]}".strip()

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """The lookup encoder: precomputed vectors for passages, the server's encoder for the rest."""
        out = np.zeros((len(texts), self.vectors.shape[1]), dtype=np.float32)
        missing = [i for i, t in enumerate(texts) if t not in self._lookup]
        for i, text in enumerate(texts):
            if text in self._lookup:
                out[i] = self.vectors[self._lookup[text]]
        if missing:
            self.misses += len(missing)
            out[missing] = default_embed([texts[i] for i in missing])
        return out

    def queries(self, split: str) -> list[int]:
        """The indices of the queries of `split` (`test`, `train` or `all`)."""
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}")
        return [q for q, s in enumerate(self.data.query_split) if split == "all" or s == split]

    def ranking(self, query: int, arm: str) -> list[int]:
        """`arm`'s top-`K` document indices for query `query`."""
        key = (query, arm)
        if key not in self._rankings:
            self._rankings[key] = [d for d, _ in self.rankers[arm](self.data.query_texts[query])]
        return self._rankings[key]

    def relevant(self, query: int) -> set[int]:
        """The documents the qrels mark relevant to query `query`."""
        return {self._index[d] for d, g in self.data.qrels[query].items() if g > 0 and d in self._index}

    def ndcg10(self, query: int, ranking: Sequence[int]) -> float:
        from mcp_router.bench.metrics import ndcg_at_k

        return ndcg_at_k([self.data.doc_ids[d] for d in ranking], self.data.qrels[query], K)


__all__ = ["ARMS", "SPLITS", "JudgeData"]
