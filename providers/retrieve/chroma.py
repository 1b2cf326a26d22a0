"""Chroma v2 REST: `POST /api/v2/tenants/{t}/databases/{d}/collections/{id}/query` with our own embeddings.

The server does not embed (`query_texts` is rejected), so the query vector comes from the project embedder.
The collection id is `options.collection_id`, or resolved once per name by `GET .../collections/{name}`.
Distances become scores: `1 - distance` for the cosine and inner-product spaces, `-distance` for l2.
"""

from __future__ import annotations

from typing import Any

from providers.errors import BadRequest
from providers.http import require
from providers.retrieve._remote import RemoteRetriever, segment
from providers.types import Passage, RetrieveRequest

INCLUDE = ["documents", "distances", "metadatas"]


class ChromaRetriever(RemoteRetriever):
    type = "chroma"
    default_url = "http://localhost:8000"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._ids: dict[str, str] = {}

    @property
    def database_url(self) -> str:
        tenant = self.option("tenant", "default_tenant")
        database = self.option("database", "default_database")
        return f"{self.base}/api/v2/tenants/{segment(tenant)}/databases/{segment(database)}"

    def headers(self) -> dict[str, str]:
        key = self.key()
        return {"X-Chroma-Token": key} if key else {}

    async def collection_id(self, request: RetrieveRequest) -> str:
        pinned = self.option("collection_id", None, (str, type(None)))
        if pinned:
            return pinned
        name = self.target(request)
        if name not in self._ids:
            body = await self.send(
                "GET", f"{self.database_url}/collections/{segment(name)}", headers=self.headers()
            )
            require(self.name, isinstance(body, dict), "collection body is not a JSON object")
            id_ = body.get("id")
            require(self.name, isinstance(id_, str) and bool(id_), "collection has no `id`")
            self._ids[name] = id_
        return self._ids[name]

    async def call(self, request: RetrieveRequest) -> list[Passage]:
        collection_id = await self.collection_id(request)
        vector = await self.query_vector(request.query)
        try:
            body = await self.send(
                "POST",
                f"{self.database_url}/collections/{segment(collection_id)}/query",
                headers=self.headers(),
                json={"query_embeddings": [vector], "n_results": max(1, request.k), "include": INCLUDE},
            )
        except BadRequest:
            # the collection may have been deleted and recreated under a new id: resolve it again next time
            self._ids = {name: id_ for name, id_ in self._ids.items() if id_ != collection_id}
            raise
        return self.parse(body, request.k)

    def parse(self, body: Any, k: int = 10) -> list[Passage]:
        require(self.name, isinstance(body, dict), "body is not a JSON object")
        ids = self._first(body, "ids", required=True)
        distances = self._first(body, "distances", required=True)
        documents = self._first(body, "documents")
        metadatas = self._first(body, "metadatas")
        n = len(ids)
        require(self.name, len(distances) == n, "`distances` and `ids` differ in length")
        require(self.name, documents is None or len(documents) == n, "`documents` and `ids` differ in length")
        require(self.name, metadatas is None or len(metadatas) == n, "`metadatas` and `ids` differ in length")
        space = self.option("space", "cosine")
        passages = []
        for i in range(min(n, max(0, k))):
            distance = self.number(distances[i], "distance")
            text = documents[i] if documents is not None else None
            require(self.name, text is None or isinstance(text, str), "document is not a string")
            metadata = metadatas[i] if metadatas is not None else None
            require(self.name, metadata is None or isinstance(metadata, dict), "metadata is not an object")
            score = -distance if space == "l2" else 1.0 - distance
            passages.append(
                Passage(
                    id=self.ident(ids[i]),
                    text=text or "",
                    score=round(score, 6),
                    metadata=dict(metadata or {}),
                )
            )
        return passages

    def _first(self, body: dict[str, Any], field: str, required: bool = False) -> list[Any] | None:
        """The first query's inner list of a column (`[[...]]`); None when the column was not included."""
        value = body.get(field)
        if value is None and not required:
            return None
        require(self.name, isinstance(value, list), f"`{field}` is not a list")
        if not value:
            return []
        inner = value[0]
        if inner is None and not required:
            return None
        require(self.name, isinstance(inner, list), f"`{field}[0]` is not a list")
        return inner
