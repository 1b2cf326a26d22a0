"""Brave Search API: `GET /res/v1/web/search` with `X-Subscription-Token`.

Snippets carry `<strong>` decorations unless `text_decorations=false`; they are stripped either way.
Brave omits the `web` section when nothing matched, so a `"type": "search"` answer without it is empty.
"""

from __future__ import annotations

from typing import Any

from providers.http import require
from providers.search._hosted import HostedSearch
from providers.types import SearchHit, SearchRequest

_FRESHNESS = {"day": "pd", "week": "pw", "month": "pm", "year": "py"}
MAX_COUNT = 20


class BraveSearch(HostedSearch):
    tool = "search"
    type = "brave"
    key_env = "BRAVE_API_KEY"
    default_url = "https://api.search.brave.com/res/v1/web/search"

    async def call(self, request: SearchRequest) -> list[SearchHit]:
        key = self.key()
        params = {"q": request.query, "count": str(max(1, min(request.k, MAX_COUNT)))}
        if request.freshness:
            params["freshness"] = _FRESHNESS[request.freshness]
        for option in ("country", "search_lang", "safesearch"):
            if option in self.spec.options:
                params[option] = str(self.spec.options[option])
        body = await self.send(
            "GET",
            self.endpoint,
            params=params,
            headers={"X-Subscription-Token": key, "Accept": "application/json"},
            redact=(key,),
        )
        return self.parse(body, request.k)

    def parse(self, body: Any, k: int = MAX_COUNT) -> list[SearchHit]:
        require(self.name, isinstance(body, dict), "body is not a JSON object")
        web = body.get("web")
        if web is None:
            require(self.name, body.get("type") == "search", "no `web` section in a non-search answer")
            return []
        require(self.name, isinstance(web, dict), "`web` is not an object")
        return self.hits(web.get("results", []), k, snippet="description")
