"""Retrievers over folder collections: BM25 (bm25s), dense (MiniLM + numpy), hybrid (reciprocal-rank fusion).

They rank on the indexes the library's indexer thread publishes and never build one: until its view
exists an arm is not `ready`, so the router passes it over, and a call that reaches it anyway fails
at once, saying how far indexing is. Ranking on a built BM25 index is
quick enough for the event loop; a dense query embeds in a worker thread that a timed-out call
abandons instead of waiting for.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import ClassVar, TypeVar

import anyio
import numpy as np

from providers.base import Adapter
from providers.errors import BadRequest, Unavailable
from providers.retrieve import embedder
from providers.retrieve.collections import Collection, View
from providers.retrieve.documents import Document
from providers.retrieve.indexes import DenseIndex, LexicalIndex
from providers.types import Passage, RetrieveRequest

RRF_K = 60
DENSE_TYPES = frozenset({"dense", "hybrid"})  # the arm types that need a collection's vectors
Key = TypeVar("Key", bound=Hashable)


def rrf(
    rankings: Sequence[Sequence[tuple[Key, float]]], depth: int, k: int = RRF_K
) -> list[tuple[Key, float]]:
    """Reciprocal-rank fusion: score(d) = Σ 1 / (k + rank(d)), ranks starting at 1."""
    fused: dict[Key, float] = {}
    for ranking in rankings:
        for rank, (doc, _) in enumerate(ranking, start=1):
            fused[doc] = fused.get(doc, 0.0) + 1.0 / (k + rank)
    return sorted(fused.items(), key=lambda item: (-item[1], item[0]))[:depth]  # type: ignore[operator]


def query_vector(query: str) -> np.ndarray:
    return embedder.embed_queries([query])[0]


def lexical_hits(view: LexicalIndex, query: str, depth: int) -> list[tuple[Document, float]]:
    return [(view.documents[i], score) for i, score in view.rank(query, depth)]


def dense_hits(view: DenseIndex, query: str, depth: int) -> list[tuple[Document, float]]:
    return [(view.documents[i], score) for i, score in view.rank(query_vector(query), depth)]


class _LocalRetriever(Adapter[RetrieveRequest, list[Passage]]):
    tool = "retrieve"
    views: ClassVar[tuple[View, ...]]
    inline: ClassVar[bool] = False  # ranks on the event loop (no model pass)

    def collection(self, request: RetrieveRequest) -> Collection:
        collection = self.env.collections.get(request.collection)
        if collection is None:
            raise BadRequest(self.name, f"unknown collection {request.collection!r}")
        return collection

    def ready(self, request: RetrieveRequest) -> bool:
        collection = self.env.collections.get(request.collection)
        if collection is None or all(collection.view(v) is not None for v in self.views):
            return True
        self.env.collections.start()  # a library used without a server indexes on first demand
        return False

    def rank(self, collection: Collection, query: str, k: int) -> list[tuple[Document, float]]:
        raise NotImplementedError

    async def call(self, request: RetrieveRequest) -> list[Passage]:
        collection = self.collection(request)
        self._require_ready(collection, request)
        if self.inline:
            hits = self.rank(collection, request.query, request.k)
        else:
            hits = await anyio.to_thread.run_sync(
                self.rank, collection, request.query, request.k, abandon_on_cancel=True
            )
        return [
            Passage(id=doc.id, text=doc.text, score=round(score, 6), metadata=doc.metadata)
            for doc, score in hits
        ]

    def _require_ready(self, collection: Collection, request: RetrieveRequest) -> None:
        if not self.ready(request):
            raise Unavailable(
                self.name,
                f"collection {collection.name!r} is still being indexed "
                f"({collection.describe_progress()}); another arm or a retry shortly will serve it",
            )


class BM25Retriever(_LocalRetriever):
    type = "bm25"
    views = ("lexical",)
    inline = True  # a built index answers in far less time than a thread hop costs

    def rank(self, collection: Collection, query: str, k: int) -> list[tuple[Document, float]]:
        assert collection.lexical is not None
        return lexical_hits(collection.lexical, query, k)


class _EmbeddingRetriever(_LocalRetriever):
    def prepare(self) -> None:
        """Load the query encoder (well under a second, no torch) before the first call needs it."""
        embedder.load_query_encoder()


class DenseRetriever(_EmbeddingRetriever):
    type = "dense"
    views = ("dense",)

    def rank(self, collection: Collection, query: str, k: int) -> list[tuple[Document, float]]:
        assert collection.dense is not None
        return dense_hits(collection.dense, query, k)


class HybridRetriever(_EmbeddingRetriever):
    type = "hybrid"
    views = ("lexical", "dense")

    def rank(self, collection: Collection, query: str, k: int) -> list[tuple[Document, float]]:
        """Fused by document id: the two views may be of different ages while the indexer works."""
        lexical, dense = collection.lexical, collection.dense
        assert lexical is not None and dense is not None
        depth = max(4 * k, 20)
        by_id: dict[str, Document] = {}
        rankings = []
        for hits in (lexical_hits(lexical, query, depth), dense_hits(dense, query, depth)):
            rankings.append([(doc.id, score) for doc, score in hits])
            by_id.update((doc.id, doc) for doc, _ in hits)
        return [(by_id[doc_id], score) for doc_id, score in rrf(rankings, k)]
