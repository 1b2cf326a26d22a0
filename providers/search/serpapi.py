"""SerpAPI: `GET /search.json` with the key as the `api_key` query parameter.

SerpAPI reports failures as `{"error": "..."}`, whatever the status, so the body is checked on 200 too:
"no results" is an empty answer, a key problem a `BadRequest`, exhausted searches `Unavailable`,
throughput limits `RateLimited`, anything else `Unavailable`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx

from providers.errors import BadRequest, ProviderError, RateLimited, Unavailable
from providers.http import parse_retry_after, require
from providers.search._hosted import HostedSearch, body_message
from providers.types import SearchHit, SearchRequest

_TBS = {"day": "qdr:d", "week": "qdr:w", "month": "qdr:m", "year": "qdr:y"}
MAX_RESULTS = 100
_NO_RESULTS = ("hasn't returned any results", "has not returned any results", "no results")
_QUOTA = ("run out of searches", "out of searches", "exhausted", "quota", "upgrade")
_THROUGHPUT = ("throughput", "rate limit", "too many")


class SerpApiSearch(HostedSearch):
    tool = "search"
    type = "serpapi"
    key_env = "SERPAPI_API_KEY"
    default_url = "https://serpapi.com/search.json"

    async def call(self, request: SearchRequest) -> list[SearchHit]:
        key = self.key()
        engine = str(self.spec.options.get("engine", "google"))
        params = {"engine": engine, "q": request.query, "num": str(max(1, min(request.k, MAX_RESULTS)))}
        if request.freshness and engine == "google":
            params["tbs"] = _TBS[request.freshness]
        for option in ("gl", "hl", "location"):
            if option in self.spec.options:
                params[option] = str(self.spec.options[option])
        params["api_key"] = key
        body = await self.send(
            "GET", self.endpoint, params=params, headers={"Accept": "application/json"}, redact=(key,)
        )
        return self.parse(body, request.k)

    def screen(self, response: httpx.Response, redact: Sequence[str]) -> None:
        if response.status_code == 429:
            detail = self.redact(body_message(response))
            text = "HTTP 429" + (f": {detail}" if detail else "")
            if any(word in detail.lower() for word in _QUOTA):  # out of searches: not a short cool-down
                raise Unavailable(self.name, f"{text} (searches exhausted)")
            raise RateLimited(self.name, text, parse_retry_after(response.headers.get("retry-after")))

    def classify(self, message: str, prefix: str = "") -> ProviderError:
        low = message.lower()
        text = prefix + (message or "error")
        if "api key" in low or "api_key" in low:
            return BadRequest(self.name, f"{text} (check {self.key_env})")
        if any(word in low for word in _QUOTA):
            return Unavailable(self.name, f"{text} (searches exhausted)")
        if any(word in low for word in _THROUGHPUT):
            return RateLimited(self.name, text)
        return Unavailable(self.name, text)

    def parse(self, body: Any, k: int = MAX_RESULTS) -> list[SearchHit]:
        require(self.name, isinstance(body, dict), "body is not a JSON object")
        error = body.get("error")
        if error is not None:
            message = self.redact(error) if isinstance(error, str) else ""
            if any(phrase in message.lower() for phrase in _NO_RESULTS):
                return []
            raise self.classify(message, "API error: ")
        if "organic_results" not in body:
            require(self.name, isinstance(body.get("search_metadata"), dict), "no `organic_results` list")
            return []
        return self.hits(body["organic_results"], k, url="link")
