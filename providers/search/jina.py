"""Jina search: `GET https://s.jina.ai/?q=...` with a Bearer key, JSON answers, pages not fetched.

`X-Respond-With: no-content` (option `fetch_content = true` turns it off) returns titles, URLs and
descriptions only, about three times faster. Jina documents no result-count parameter: hits are cut to `k`.
"""

from __future__ import annotations

from typing import Any

from providers.http import require
from providers.search._hosted import HostedSearch
from providers.types import SearchHit, SearchRequest


class JinaSearch(HostedSearch):
    tool = "search"
    type = "jina"
    key_env = "JINA_API_KEY"
    default_url = "https://s.jina.ai/"

    async def call(self, request: SearchRequest) -> list[SearchHit]:
        key = self.key()
        headers = {"Authorization": f"Bearer {key}", "Accept": "application/json"}
        if not self.spec.options.get("fetch_content", False):
            headers["X-Respond-With"] = "no-content"
        params = {"q": request.query}
        if "engine" in self.spec.options:
            params["engine"] = str(self.spec.options["engine"])
        body = await self.send("GET", self.endpoint, params=params, headers=headers, redact=(key,))
        return self.parse(body, request.k)

    def parse(self, body: Any, k: int = 100) -> list[SearchHit]:
        require(self.name, isinstance(body, dict), "body is not a JSON object")
        return self.hits(body.get("data"), k, snippet="description")
