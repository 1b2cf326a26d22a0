"""What the hosted web-search adapters share: key handling, one HTTP round trip, hits from result lists.

`send` is `providers.http.request_json` plus one hook, `screen`, that sees a response before the common
status mapping, for the codes a provider gives its own meaning (Tavily's 432/433 quota statuses, a
SerpAPI 429 that means "out of searches", SearXNG's 403 for a disabled JSON format).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import httpx

from providers.base import Adapter
from providers.errors import BadRequest
from providers.http import request_json, require
from providers.text import strip_html, utf8_safe
from providers.types import SearchHit, SearchRequest

FRESHNESS_DAYS = {"day": 1, "week": 7, "month": 31, "year": 365}


def since(freshness: str, now: datetime | None = None) -> datetime:
    """The start of a `freshness` window, for APIs that filter on a date rather than a named range."""
    return (now or datetime.now(UTC)) - timedelta(days=FRESHNESS_DAYS[freshness])


def body_message(response: httpx.Response) -> str:
    """The provider's own error text from a JSON body, wherever it puts it; "" when there is none.

    Shapes seen: `{"error": "..."}` (SerpAPI, Exa), `{"error": {"message"|"detail"}}` (Brave),
    `{"detail": {"error": "..."}}` (Tavily), `{"message": "..."}` (Serper, Jina),
    `{"error": [{"msg"}]}` (Kagi).
    """
    try:
        body = response.json()
    except (ValueError, RecursionError):
        return ""
    return message_of(body)


def message_of(body: Any) -> str:
    if not isinstance(body, dict):
        return ""
    for key in ("error", "detail", "message", "readableMessage"):
        value = body.get(key)
        if isinstance(value, list) and value:
            value = value[0]
        if isinstance(value, dict):
            texts = [value.get(k) for k in ("message", "msg", "detail", "error", "code")]
            value = next((text for text in texts if isinstance(text, str) and text), None)
        if isinstance(value, str) and value:
            return value
    return ""


class HostedSearch(Adapter[SearchRequest, list[SearchHit]]):
    """A web-search API over HTTP: subclasses set `type`, `key_env`, `default_url`, write `call`, `parse`."""

    tool = "search"
    key_env: ClassVar[str] = ""
    default_url: ClassVar[str] = ""

    @property
    def endpoint(self) -> str:
        return self.spec.base_url or self.default_url

    def key(self) -> str:
        """The API key, or a `BadRequest` naming the variable to set (never the value)."""
        if not self.spec.api_key:
            raise BadRequest(self.name, f"no API key: set {self.key_env}")
        return self.spec.api_key.reveal()

    def redact(self, text: str) -> str:
        secret = self.spec.api_key.reveal() if self.spec.api_key else ""
        text = text.replace(secret, "***") if secret else text
        return utf8_safe(text)[:200]

    def screen(self, response: httpx.Response, redact: Sequence[str]) -> None:
        """Raise for provider-specific statuses before the common mapping; the default does nothing."""

    async def send(self, method: str, url: str, *, redact: Sequence[str] = (), **kwargs: Any) -> Any:
        """One request → decoded JSON, or a `ProviderError`; the strings in `redact` appear in no message."""
        return await request_json(
            self.spec,
            self.http,
            method,
            url,
            redact=redact,
            screen=lambda response: self.screen(response, redact),
            **kwargs,
        )

    def hits(
        self, items: Any, k: int, *, title: str = "title", url: str = "url", snippet: str = "snippet"
    ) -> list[SearchHit]:
        """Result objects → `SearchHit`s (the first `k`, the only ones parsed); each must be an object
        with a text URL."""
        require(self.name, isinstance(items, list), "result list is not a list")
        found = []
        for item in items[: max(k, 0)]:
            ok = isinstance(item, dict) and isinstance(item.get(url), str)
            require(self.name, ok, "result without a URL")
            found.append(self.hit(item.get(title), item[url], item.get(snippet)))
        return found

    def hit(self, title: Any, url: str, snippet: Any) -> SearchHit:
        return SearchHit(
            title=strip_html(title) if isinstance(title, str) else "",
            url=utf8_safe(url),
            snippet=strip_html(snippet) if isinstance(snippet, str) else "",
            source=self.type,
        )
