"""DuckDuckGo (and friends) through the `ddgs` metasearch library; keyless, a scraper, no SLA.

`ddgs` is synchronous, so it runs in a worker thread; its exceptions map onto the project's errors.
"""

from __future__ import annotations

import math
from typing import Any

import anyio

from providers.base import Adapter
from providers.errors import BadResponse, RateLimited, Unavailable
from providers.text import strip_html, utf8_safe
from providers.types import SearchHit, SearchRequest

_TIMELIMIT = {"day": "d", "week": "w", "month": "m", "year": "y"}


def _describe(exc: Exception) -> str:
    """ddgs folds every engine's failure into one long message; keep what a user can act on."""
    text = str(exc)
    if "no results found" in text.lower():
        return ""
    if "DNS" in text or "error sending request" in text or "connect" in text.lower():
        return "cannot reach any search engine (network error; is this machine offline?)"
    return f"search failed: {text[:160] or type(exc).__name__}"


class DuckDuckGoSearch(Adapter[SearchRequest, list[SearchHit]]):
    tool = "search"
    type = "ddgs"

    async def call(self, request: SearchRequest) -> list[SearchHit]:
        rows = await anyio.to_thread.run_sync(self._search, request, abandon_on_cancel=True)
        return self.parse(rows)

    def _search(self, request: SearchRequest) -> Any:
        try:
            from ddgs import DDGS
            from ddgs.exceptions import DDGSException, RatelimitException, TimeoutException
        except ImportError:
            raise Unavailable(self.name, "the `ddgs` package is not installed") from None
        options = self.spec.options
        try:
            # ddgs takes whole seconds and waits 0 s at timeout=0, so round a sub-second timeout up, not down
            client = DDGS(proxy=options.get("proxy"), timeout=max(1, math.ceil(self.spec.timeout_s)))
            return client.text(
                request.query,
                region=str(options.get("region", "us-en")),
                safesearch=str(options.get("safesearch", "moderate")),
                timelimit=_TIMELIMIT.get(request.freshness or ""),
                max_results=request.k,
                backend=str(options.get("backend", "auto")),
            )
        except RatelimitException:
            raise RateLimited(self.name, "rate limited by the search backend") from None
        except TimeoutException:
            raise Unavailable(self.name, f"timed out after {self.spec.timeout_s:g} s") from None
        except DDGSException as exc:
            message = _describe(exc)
            if not message:  # ddgs signals "nothing matched" with an exception; that is an empty answer
                return []
            raise Unavailable(self.name, message) from None

    def parse(self, rows: Any) -> list[SearchHit]:
        if not isinstance(rows, list):
            raise BadResponse(self.name, "ddgs returned no result list")
        hits = []
        for row in rows:
            if not isinstance(row, dict) or not isinstance(row.get("href"), str):
                raise BadResponse(self.name, "ddgs result without a link")
            hits.append(
                SearchHit(
                    title=strip_html(str(row.get("title", ""))),
                    url=utf8_safe(row["href"]),
                    snippet=strip_html(str(row.get("body", ""))),
                    source="ddgs",
                )
            )
        return hits
