"""Serper (Google results): `POST /search` with `X-API-KEY`.

Serper answers a missing or exhausted balance with 400/403 and a `message` about credits; that is a
quota problem (`Unavailable`), not a bad request or a bad key.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx

from providers.errors import Unavailable
from providers.http import require
from providers.search._hosted import HostedSearch, body_message
from providers.types import SearchHit, SearchRequest

_TBS = {"day": "qdr:d", "week": "qdr:w", "month": "qdr:m", "year": "qdr:y"}
MAX_RESULTS = 100


class SerperSearch(HostedSearch):
    tool = "search"
    type = "serper"
    key_env = "SERPER_API_KEY"
    default_url = "https://google.serper.dev/search"

    async def call(self, request: SearchRequest) -> list[SearchHit]:
        key = self.key()
        payload: dict[str, Any] = {"q": request.query, "num": max(1, min(request.k, MAX_RESULTS))}
        if request.freshness:
            payload["tbs"] = _TBS[request.freshness]
        for option in ("gl", "hl", "location"):
            if option in self.spec.options:
                payload[option] = str(self.spec.options[option])
        body = await self.send(
            "POST",
            self.endpoint,
            json=payload,
            headers={"X-API-KEY": key, "Accept": "application/json"},
            redact=(key,),
        )
        return self.parse(body, request.k)

    def screen(self, response: httpx.Response, redact: Sequence[str]) -> None:
        if response.status_code in (400, 402, 403):
            detail = self.redact(body_message(response))
            if "credit" in detail.lower():
                raise Unavailable(self.name, f"HTTP {response.status_code}: {detail} (credits exhausted)")

    def parse(self, body: Any, k: int = MAX_RESULTS) -> list[SearchHit]:
        require(self.name, isinstance(body, dict), "body is not a JSON object")
        if "organic" not in body:  # no organic results: Serper leaves the key out
            require(self.name, "searchParameters" in body, "no `organic` list")
            return []
        return self.hits(body["organic"], k, url="link")
