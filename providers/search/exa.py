"""Exa: `POST /search` with `x-api-key`; snippets from the requested page text, else the highlights.

The body's `costDollars` is the real price of a call, but `SearchHit` lists have nowhere to carry it.
"""

from __future__ import annotations

from typing import Any

from providers.http import require
from providers.search._hosted import HostedSearch, since
from providers.types import SearchHit, SearchRequest

MAX_RESULTS = 100


class ExaSearch(HostedSearch):
    tool = "search"
    type = "exa"
    key_env = "EXA_API_KEY"
    default_url = "https://api.exa.ai/search"

    async def call(self, request: SearchRequest) -> list[SearchHit]:
        key = self.key()
        payload: dict[str, Any] = {
            "query": request.query,
            "type": str(self.spec.options.get("search_type", "auto")),
            "numResults": max(1, min(request.k, MAX_RESULTS)),
            "contents": {"text": {"maxCharacters": int(self.spec.options.get("snippet_chars", 300))}},
        }
        if request.freshness:
            payload["startPublishedDate"] = since(request.freshness).strftime("%Y-%m-%dT%H:%M:%S.000Z")
        body = await self.send(
            "POST",
            self.endpoint,
            json=payload,
            headers={"x-api-key": key, "Accept": "application/json"},
            redact=(key,),
        )
        return self.parse(body, request.k)

    def parse(self, body: Any, k: int = MAX_RESULTS) -> list[SearchHit]:
        require(self.name, isinstance(body, dict), "body is not a JSON object")
        items = body.get("results")
        hits = self.hits(items, k, snippet="text")
        for i, hit in enumerate(hits):
            highlights = items[i].get("highlights")
            if not hit.snippet and isinstance(highlights, list):
                hits[i] = self.hit(hit.title, hit.url, " ".join(h for h in highlights if isinstance(h, str)))
        return hits
