"""Wikipedia full-text search through the MediaWiki action API; keyless.

MediaWiki reports API errors in the body of an HTTP 200 (`{"error": {"code", "info"}}`), so the
status check alone is not enough: `ratelimited` and `maxlag` become `RateLimited`, the rest
`BadRequest`.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from providers.base import Adapter
from providers.errors import BadRequest, RateLimited
from providers.http import request_json, require
from providers.text import strip_html, utf8_safe
from providers.types import SearchHit, SearchRequest


class WikipediaSearch(Adapter[SearchRequest, list[SearchHit]]):
    tool = "search"
    type = "wikipedia"

    @property
    def language(self) -> str:
        return str(self.spec.options.get("language", "en"))

    @property
    def endpoint(self) -> str:
        return self.spec.base_url or f"https://{self.language}.wikipedia.org/w/api.php"

    async def call(self, request: SearchRequest) -> list[SearchHit]:
        params = {
            "action": "query",
            "list": "search",
            "format": "json",
            "formatversion": "2",
            "srsearch": request.query,
            "srlimit": str(request.k),
            "srprop": "snippet",
        }
        body = await request_json(
            self.spec,
            self.http,
            "GET",
            self.endpoint,
            params=params,
            headers={"User-Agent": self.env.user_agent, "Accept": "application/json"},
        )
        return self.parse(body)

    def parse(self, body: Any) -> list[SearchHit]:
        require(self.name, isinstance(body, dict), "body is not a JSON object")
        error = body.get("error")
        if error is not None:
            code = str(error.get("code", "unknown")) if isinstance(error, dict) else str(error)
            info = str(error.get("info", "")) if isinstance(error, dict) else ""
            if code in ("ratelimited", "maxlag"):
                raise RateLimited(self.name, f"API error {code}")
            raise BadRequest(self.name, f"API error {code}: {info[:200]}")
        query = body.get("query")
        require(self.name, isinstance(query, dict), "no `query` object")
        items = query.get("search")
        require(self.name, isinstance(items, list), "no `query.search` list")
        hits = []
        for item in items:
            require(
                self.name,
                isinstance(item, dict) and isinstance(item.get("title"), str),
                "result without title",
            )
            title = item["title"]
            # errors="replace": a lone surrogate (JSON "\ud800") cannot be UTF-8 encoded into the URL
            path = quote(title.replace(" ", "_"), errors="replace")
            url = f"https://{self.language}.wikipedia.org/wiki/{path}"
            snippet = item.get("snippet", "")
            hits.append(
                SearchHit(
                    title=utf8_safe(title),
                    url=url,
                    snippet=strip_html(snippet if isinstance(snippet, str) else ""),
                    source="wikipedia",
                )
            )
        return hits
