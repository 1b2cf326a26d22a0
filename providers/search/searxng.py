"""A self-hosted SearXNG instance: `GET {base_url}/search?format=json`; keyless, `base_url` required.

SearXNG hides engine failures: a 200 with no `results` and a non-empty `unresponsive_engines` means the
upstream engines failed (`Unavailable`), not that nothing exists. A 403 usually means the instance does not
serve JSON (`search.formats` lacks `json`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx

from providers.errors import BadRequest, Unavailable
from providers.http import require
from providers.search._hosted import HostedSearch
from providers.text import utf8_safe
from providers.types import SearchHit, SearchRequest

MAX_RESULTS = 100


class SearxngSearch(HostedSearch):
    tool = "search"
    type = "searxng"
    key_env = "SEARXNG_URL"

    @property
    def endpoint(self) -> str:
        base = (self.spec.base_url or "").rstrip("/")
        if not base:
            raise BadRequest(self.name, "no base_url: set SEARXNG_URL or `base_url` to the instance URL")
        return base if base.endswith("/search") else f"{base}/search"

    async def call(self, request: SearchRequest) -> list[SearchHit]:
        params = {"q": request.query, "format": "json"}
        if request.freshness:
            params["time_range"] = request.freshness
        for option in ("categories", "engines", "language", "safesearch"):
            if option in self.spec.options:
                params[option] = str(self.spec.options[option])
        body = await self.send(
            "GET",
            self.endpoint,
            params=params,
            headers={"User-Agent": self.env.user_agent, "Accept": "application/json"},
        )
        return self.parse(body, request.k)

    def screen(self, response: httpx.Response, redact: Sequence[str]) -> None:
        if response.status_code == 403:
            raise BadRequest(
                self.name,
                "HTTP 403: the instance refuses format=json (add `json` to search.formats in settings.yml) "
                "or access is restricted",
            )

    def parse(self, body: Any, k: int = MAX_RESULTS) -> list[SearchHit]:
        require(self.name, isinstance(body, dict), "body is not a JSON object")
        results = body.get("results")
        require(self.name, isinstance(results, list), "no `results` list")
        if not results:
            failed = body.get("unresponsive_engines")
            if isinstance(failed, list) and failed:
                raise Unavailable(self.name, f"no results; upstream engines failed: {_describe(failed)}")
            return []
        return self.hits(results, k, snippet="content")


def _describe(failed: list[Any]) -> str:
    parts = []
    for entry in failed[:5]:
        if isinstance(entry, list) and entry:
            parts.append(" ".join(str(x) for x in entry[:2]))
        else:
            parts.append(str(entry))
    return utf8_safe(", ".join(parts))[:200]
