"""Elasticsearch and OpenSearch: `POST /{index}/_search`, lexical (`multi_match`) or dense (kNN).

`options.mode` is "bm25" (default; `multi_match` over `options.fields`) or "knn" (Elasticsearch's top-level
`knn` with `query_vector`, OpenSearch's `query.knn`), the vector field being `options.vector_field`.
Hits are `hits.hits[]` with `_id`, `_score` and `_source`; the passage text is `_source[text_field]`.
Auth: `Authorization: ApiKey <key>` (Elasticsearch), Basic `options.username` + key as password (OpenSearch).
Overload (`es_rejected_execution_exception`, `circuit_breaking_exception`) comes as a 429: rate-limited.
"""

from __future__ import annotations

import base64
from typing import Any, ClassVar

from providers.errors import BadRequest
from providers.http import require
from providers.retrieve._remote import RemoteRetriever, segment
from providers.types import Passage, RetrieveRequest

DEFAULT_FIELDS = ["title^2", "text"]


class ElasticsearchRetriever(RemoteRetriever):
    type = "elasticsearch"
    default_url = "http://localhost:9200"
    target_option = "index"
    flavour: ClassVar[str] = "elasticsearch"

    @property
    def mode(self) -> str:
        mode = self.option("mode", "bm25")
        if mode not in ("bm25", "knn"):
            raise BadRequest(self.name, 'option `mode` must be "bm25" or "knn"')
        return mode

    def headers(self) -> dict[str, str]:
        key = self.key()
        return {"Authorization": f"ApiKey {key}"} if key else {}

    def knn(self, vector: list[float], k: int) -> dict[str, Any]:
        num_candidates = max(k, self.option("num_candidates", 100, int))
        field = self.option("vector_field", "embedding")
        return {"knn": {"field": field, "query_vector": vector, "k": k, "num_candidates": num_candidates}}

    async def call(self, request: RetrieveRequest) -> list[Passage]:
        mode = self.mode
        index = self.target(request)
        k = max(1, request.k)
        if mode == "knn":
            payload = self.knn(await self.query_vector(request.query), k)
        else:
            fields = self.option("fields", DEFAULT_FIELDS, list)
            if not fields or not all(isinstance(f, str) for f in fields):
                raise BadRequest(self.name, "option `fields` must be a non-empty list of strings")
            payload = {"query": {"multi_match": {"query": request.query, "fields": fields}}}
        payload["size"] = k
        payload["_source"] = {"excludes": [self.option("vector_field", "embedding")]}
        body = await self.send(
            "POST", f"{self.base}/{segment(index)}/_search", headers=self.headers(), json=payload
        )
        return self.parse(body, request.k)

    def parse(self, body: Any, k: int = 10) -> list[Passage]:
        require(self.name, isinstance(body, dict), "body is not a JSON object")
        require(self.name, "error" not in body, "error in a 2xx answer")
        hits = body.get("hits")
        require(self.name, isinstance(hits, dict), "`hits` is not an object")
        items = hits.get("hits")
        require(self.name, isinstance(items, list), "`hits.hits` is not a list")
        text_field = self.option("text_field", "text")
        drop = (self.option("vector_field", "embedding"),)
        passages = []
        for hit in items[: max(0, k)]:
            require(self.name, isinstance(hit, dict), "hit is not an object")
            raw = hit.get("_score")
            score = 0.0 if raw is None else self.number(raw)  # null when a sort replaced scoring
            passages.append(self.passage(hit.get("_id"), score, hit.get("_source"), text_field, drop))
        return passages


class OpenSearchRetriever(ElasticsearchRetriever):
    type = "opensearch"
    flavour = "opensearch"

    def _basic(self) -> tuple[str, str] | None:
        username = self.option("username", None, (str, type(None)))
        password = self.key() or self.option("password", None, (str, type(None)))
        if not username or password is None:
            return None
        return username, password

    def secrets(self) -> tuple[str, ...]:
        basic = self._basic()
        if basic is None:
            return ()
        token = base64.b64encode(f"{basic[0]}:{basic[1]}".encode()).decode()
        return tuple(s for s in (basic[1], token) if s)

    def headers(self) -> dict[str, str]:
        basic = self._basic()
        if basic is None:
            return {}
        token = base64.b64encode(f"{basic[0]}:{basic[1]}".encode()).decode()
        return {"Authorization": f"Basic {token}"}

    def knn(self, vector: list[float], k: int) -> dict[str, Any]:
        field = self.option("vector_field", "embedding")
        return {"query": {"knn": {field: {"vector": vector, "k": k}}}}
