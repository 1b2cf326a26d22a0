"""Retrievers over local collections: BM25 (bm25s), dense (MiniLM + numpy), hybrid (reciprocal-rank fusion).

All three are CPU-bound, so they run in a worker thread and the event loop keeps serving.
"""

from __future__ import annotations

import anyio
import numpy as np

from providers.base import Adapter
from providers.errors import BadRequest
from providers.retrieve import embedder
from providers.retrieve.collections import Collection, import_bm25s
from providers.types import Passage, RetrieveRequest

RRF_K = 60


def bm25_ranking(collection: Collection, query: str, depth: int) -> list[tuple[int, float]]:
    """(document index, BM25 score) best first; empty when the query has no indexable term."""
    bm25s = import_bm25s()
    n = len(collection.documents)
    tokens = bm25s.tokenize([query], stopwords="en", show_progress=False)
    if n == 0 or not tokens.ids or not tokens.ids[0]:
        return []
    index = collection.bm25()
    # n_threads=0 ranks in the calling thread; any other value builds a thread pool per query
    docs, scores = index.retrieve(tokens, k=min(depth, n), show_progress=False, n_threads=0)
    return [(int(d), float(s)) for d, s in zip(docs[0], scores[0], strict=True) if s > 0]


def dense_ranking(collection: Collection, query: str, depth: int) -> list[tuple[int, float]]:
    """(document index, cosine similarity) best first, by exact brute force."""
    from providers.retrieve.embedder import embed

    vectors = collection.vectors()
    if len(vectors) == 0:
        return []
    sims = vectors @ embed([query])[0]
    depth = min(depth, len(sims))
    top = np.argpartition(-sims, depth - 1)[:depth]
    top = top[np.argsort(-sims[top], kind="stable")]
    return [(int(i), float(sims[i])) for i in top]


def rrf(rankings: list[list[tuple[int, float]]], depth: int, k: int = RRF_K) -> list[tuple[int, float]]:
    """Reciprocal-rank fusion: score(d) = Σ 1 / (k + rank(d)), ranks starting at 1."""
    fused: dict[int, float] = {}
    for ranking in rankings:
        for rank, (doc, _) in enumerate(ranking, start=1):
            fused[doc] = fused.get(doc, 0.0) + 1.0 / (k + rank)
    return sorted(fused.items(), key=lambda item: (-item[1], item[0]))[:depth]


class _LocalRetriever(Adapter[RetrieveRequest, list[Passage]]):
    tool = "retrieve"

    def rank(self, collection: Collection, query: str, k: int) -> list[tuple[int, float]]:
        raise NotImplementedError

    def ranks_inline(self, collection: Collection) -> bool:
        """Whether ranking is quick enough for the event loop (a built BM25 index answers in far less
        than a thread hop costs); model passes and index builds go to a worker thread."""
        return False

    async def call(self, request: RetrieveRequest) -> list[Passage]:
        collection = self.env.collections.get(request.collection)
        if collection is None:
            raise BadRequest(self.name, f"unknown collection {request.collection!r}")
        if self.ranks_inline(collection):
            ranking = self.rank(collection, request.query, request.k)
        else:
            ranking = await anyio.to_thread.run_sync(self.rank, collection, request.query, request.k)
        documents = collection.documents
        return [
            Passage(
                id=documents[i].id,
                text=documents[i].text,
                score=round(score, 6),
                metadata=documents[i].metadata,
            )
            for i, score in ranking
        ]


class BM25Retriever(_LocalRetriever):
    type = "bm25"

    def ranks_inline(self, collection: Collection) -> bool:
        return collection.bm25_ready

    def ready(self, request: RetrieveRequest) -> bool:
        collection = self.env.collections.get(request.collection)
        return collection is None or collection.bm25_ready

    def prepare(self) -> None:
        for collection in self.env.collections:
            collection.bm25()

    def rank(self, collection: Collection, query: str, k: int) -> list[tuple[int, float]]:
        return bm25_ranking(collection, query, k)


class _EmbeddingRetriever(_LocalRetriever):
    """Needs MiniLM and each collection's vectors: until both are there it is not `ready`, and the
    server's start-up `prepare` loads them in the background."""

    def ready(self, request: RetrieveRequest) -> bool:
        collection = self.env.collections.get(request.collection)
        return embedder.loaded() and (collection is None or collection.vectors_ready)

    def prepare(self) -> None:
        embedder.load_model()
        for collection in self.env.collections:
            collection.vectors()


class DenseRetriever(_EmbeddingRetriever):
    type = "dense"

    def rank(self, collection: Collection, query: str, k: int) -> list[tuple[int, float]]:
        return dense_ranking(collection, query, k)


class HybridRetriever(_EmbeddingRetriever):
    type = "hybrid"

    def rank(self, collection: Collection, query: str, k: int) -> list[tuple[int, float]]:
        depth = max(4 * k, 20)
        return rrf([bm25_ranking(collection, query, depth), dense_ranking(collection, query, depth)], k)
