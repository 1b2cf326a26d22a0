"""Qdrant REST: `POST /collections/{c}/points/query` (universal API, v1.10+) or, with `api = "search"`, the
legacy `POST /collections/{c}/points/search`. Auth is the `api-key` header.

The passage text is the payload field `options.text_field` (default "text"); the rest of the payload is
metadata. Errors come as `{"status": {"error": "..."}}`.
"""

from __future__ import annotations

from typing import Any

from providers.errors import BadRequest
from providers.http import require
from providers.retrieve._remote import RemoteRetriever, segment
from providers.types import Passage, RetrieveRequest


class QdrantRetriever(RemoteRetriever):
    type = "qdrant"
    default_url = "http://localhost:6333"

    @property
    def api(self) -> str:
        api = self.option("api", "query")
        if api not in ("query", "search"):
            raise BadRequest(self.name, 'option `api` must be "query" or "search"')
        return api

    async def call(self, request: RetrieveRequest) -> list[Passage]:
        api = self.api
        collection = self.target(request)
        vector = await self.query_vector(request.query)
        limit = max(1, request.k)
        if api == "search":
            payload: dict[str, Any] = {"vector": vector, "limit": limit, "with_payload": True}
        else:
            payload = {"query": vector, "limit": limit, "with_payload": True}
        key = self.key()
        body = await self.send(
            "POST",
            f"{self.base}/collections/{segment(collection)}/points/{api}",
            headers={"api-key": key} if key else {},
            json=payload,
        )
        return self.parse(body, request.k)

    def parse(self, body: Any, k: int = 10) -> list[Passage]:
        require(self.name, isinstance(body, dict), "body is not a JSON object")
        status = body.get("status")
        require(self.name, not isinstance(status, dict), "error status in a 2xx answer")
        result = body.get("result")
        if isinstance(result, dict):  # universal query API
            result = result.get("points")
        require(self.name, isinstance(result, list), "`result` holds no list of points")
        text_field = self.option("text_field", "text")
        passages = []
        for point in result[: max(0, k)]:
            require(self.name, isinstance(point, dict), "point is not an object")
            score = self.number(point.get("score"))
            passages.append(self.passage(point.get("id"), score, point.get("payload"), text_field))
        return passages
