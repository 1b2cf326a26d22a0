"""Kagi Search API, v0 (`GET /api/v0/search`, documented) or v1 (`POST /api/v1/search`, 2026).

`options.api_version` picks the API ("v0" by default). The auth scheme is configurable because the
sources disagree: `options.auth_scheme` is "Bot" (v0 docs, the v1 help page) or "Bearer" (SearXNG's v1
engine); it defaults to "Bot" for v0 and "Bearer" for v1. v0 returns `data[]` where `t == 0` items are
results and `t == 1` related searches; v1 returns `data.search[]`. Errors come as `{"error": [{"msg"}]}`.
"""

from __future__ import annotations

from typing import Any

from providers.errors import BadRequest, Unavailable
from providers.http import require
from providers.search._hosted import HostedSearch, message_of, since
from providers.types import SearchHit, SearchRequest

URLS = {"v0": "https://kagi.com/api/v0/search", "v1": "https://kagi.com/api/v1/search"}
SCHEMES = ("Bot", "Bearer")


class KagiSearch(HostedSearch):
    tool = "search"
    type = "kagi"
    key_env = "KAGI_API_KEY"

    @property
    def version(self) -> str:
        version = str(self.spec.options.get("api_version", "v0"))
        if version not in URLS:
            raise BadRequest(self.name, f"options.api_version must be one of {', '.join(URLS)}")
        return version

    @property
    def scheme(self) -> str:
        scheme = str(self.spec.options.get("auth_scheme", "Bot" if self.version == "v0" else "Bearer"))
        if scheme not in SCHEMES:
            raise BadRequest(self.name, f"options.auth_scheme must be one of {', '.join(SCHEMES)}")
        return scheme

    @property
    def endpoint(self) -> str:
        return self.spec.base_url or URLS[self.version]

    async def call(self, request: SearchRequest) -> list[SearchHit]:
        key = self.key()
        headers = {"Authorization": f"{self.scheme} {key}", "Accept": "application/json"}
        if self.version == "v0":
            params = {"q": request.query, "limit": str(max(1, request.k))}
            body = await self.send("GET", self.endpoint, params=params, headers=headers, redact=(key,))
        else:
            payload: dict[str, Any] = {"query": request.query, "workflow": "search"}
            if request.freshness:
                payload["filters"] = {"after": since(request.freshness).date().isoformat()}
            body = await self.send("POST", self.endpoint, json=payload, headers=headers, redact=(key,))
        return self.parse(body, request.k)

    def parse(self, body: Any, k: int = 100) -> list[SearchHit]:
        require(self.name, isinstance(body, dict), "body is not a JSON object")
        error = body.get("error")
        if error:
            message = self.redact(message_of({"error": error}))
            low = message.lower()
            if any(word in low for word in ("unauthorized", "api key", "token", "forbidden")):
                raise BadRequest(self.name, f"API error: {message} (check {self.key_env})")
            if any(word in low for word in ("balance", "credit", "insufficient", "payment")):
                raise Unavailable(self.name, f"API error: {message} (balance exhausted)")
            raise Unavailable(self.name, f"API error: {message or 'unknown'}")
        data = body.get("data")
        if isinstance(data, dict):  # v1
            return self.hits(data.get("search", []), k)
        require(self.name, isinstance(data, list), "no `data` list")
        # t == 1 items are related searches; anything that is not an object fails in `hits`
        return self.hits([item for item in data if not isinstance(item, dict) or item.get("t", 0) == 0], k)
