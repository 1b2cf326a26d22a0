"""Tavily: `POST /search` with a Bearer key; 432 and 433 are Tavily's plan and pay-as-you-go limits."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx

from providers.errors import Unavailable
from providers.http import require
from providers.search._hosted import HostedSearch, body_message
from providers.types import SearchHit, SearchRequest

MAX_RESULTS = 20


class TavilySearch(HostedSearch):
    tool = "search"
    type = "tavily"
    key_env = "TAVILY_API_KEY"
    default_url = "https://api.tavily.com/search"

    async def call(self, request: SearchRequest) -> list[SearchHit]:
        key = self.key()
        payload: dict[str, Any] = {
            "query": request.query,
            "max_results": max(1, min(request.k, MAX_RESULTS)),
            "search_depth": str(self.spec.options.get("search_depth", "basic")),
            "topic": str(self.spec.options.get("topic", "general")),
        }
        if request.freshness:
            payload["time_range"] = request.freshness
        body = await self.send(
            "POST",
            self.endpoint,
            json=payload,
            headers={"Authorization": f"Bearer {key}", "Accept": "application/json"},
            redact=(key,),
        )
        return self.parse(body, request.k)

    def screen(self, response: httpx.Response, redact: Sequence[str]) -> None:
        if response.status_code in (432, 433):
            detail = self.redact(body_message(response))
            limit = "plan" if response.status_code == 432 else "pay-as-you-go"
            message = f"HTTP {response.status_code}: " + (f"{detail} " if detail else "")
            raise Unavailable(self.name, f"{message}({limit} limit reached)")

    def parse(self, body: Any, k: int = MAX_RESULTS) -> list[SearchHit]:
        require(self.name, isinstance(body, dict), "body is not a JSON object")
        return self.hits(body.get("results"), k, snippet="content")
