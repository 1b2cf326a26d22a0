"""The two searchable views of a collection's passages: BM25 (bm25s) and dense (MiniLM vectors).

Each view is immutable and carries its own documents, so an indexer can publish a new one while
calls still rank on the old, and the hybrid arm fuses by document id across views of different ages.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from providers.retrieve.documents import Document


@functools.cache
def import_bm25s() -> Any:
    """bm25s, imported on first use. It sets its own logger to DEBUG when imported, which put a
    "Building index" line on every host's log; its warnings and errors still come through."""
    import bm25s

    logging.getLogger("bm25s").setLevel(logging.WARNING)
    return bm25s


def build_bm25(texts: Sequence[str]) -> Any:
    bm25s = import_bm25s()
    index = bm25s.BM25()
    if texts:
        index.index(bm25s.tokenize(list(texts), stopwords="en", show_progress=False), show_progress=False)
    return index


def save_bm25(index: Any, folder: Path) -> None:
    index.save(str(folder))


def load_bm25(folder: Path) -> Any:
    return import_bm25s().BM25.load(str(folder), mmap=False)


@dataclass(frozen=True)
class LexicalIndex:
    documents: Sequence[Document]
    bm25: Any = field(repr=False)
    built_at: float

    @classmethod
    def build(cls, documents: Sequence[Document]) -> LexicalIndex:
        return cls(documents, build_bm25([d.text for d in documents]), time.time())

    def rank(self, query: str, depth: int) -> list[tuple[int, float]]:
        """(document index, BM25 score) best first; empty when the query has no indexable term."""
        bm25s = import_bm25s()
        n = len(self.documents)
        tokens = bm25s.tokenize([query], stopwords="en", show_progress=False)
        if n == 0 or depth <= 0 or not tokens.ids or not tokens.ids[0]:
            return []
        # n_threads=0 ranks in the calling thread; any other value builds a thread pool per query
        docs, scores = self.bm25.retrieve(tokens, k=min(depth, n), show_progress=False, n_threads=0)
        return [(int(d), float(s)) for d, s in zip(docs[0], scores[0], strict=True) if s > 0]


@dataclass(frozen=True)
class DenseIndex:
    documents: Sequence[Document]
    vectors: np.ndarray = field(repr=False)  # unit-norm float32, one row per document
    built_at: float

    def rank(self, query_vector: np.ndarray, depth: int) -> list[tuple[int, float]]:
        """(document index, cosine similarity) best first, by exact brute force."""
        if len(self.vectors) == 0 or depth <= 0:
            return []
        sims = self.vectors @ query_vector
        depth = min(depth, len(sims))
        top = np.argpartition(-sims, depth - 1)[:depth]
        top = top[np.argsort(-sims[top], kind="stable")]
        return [(int(i), float(sims[i])) for i in top]
