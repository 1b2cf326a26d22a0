"""The ASGI guard in front of the MCP app: every HTTP request passes it, in this order.

1. `GET /healthz` answers 200 `{"status":"ok"}` at once: no token (load balancers hold none), any
   `Host` (they often probe by IP), no rate limit (a probe starved by the traffic it shares an address
   with would take a healthy server out of rotation). It says nothing else: no version, no config.
2. The client's token bucket (429 + `Retry-After`), before anything else so that refused requests,
   token guesses included, are bounded too.
3. DNS rebinding: a foreign `Host` gets 421 Misdirected Request, a foreign browser `Origin` 403.
4. The bearer token, when one is set (401 + `WWW-Authenticate: Bearer`). Only its SHA-256 is kept,
   and the comparison is of two equal-length digests with `hmac.compare_digest`, so neither timing
   nor length tells a guesser anything. The header is removed before the MCP app sees the request,
   so nothing downstream (tool context, SDK logs) can echo it.

Refusals never echo a request's credentials; the log names the reason and the client address.
"""

from __future__ import annotations

import hashlib
import hmac
import logging

from starlette.datastructures import Headers
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from mcp_router.serving.network.hosts import HostPolicy
from mcp_router.serving.network.ratelimit import RateLimiter, retry_after_s

logger = logging.getLogger(__name__)

HEALTH_PATH = "/healthz"
REALM = 'Bearer realm="mcp-router"'
_LOGGED_VALUE_CHARS = 100


def token_digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


class NetworkGuard:
    """Wraps the MCP ASGI app; lifespan events pass straight through, so the app's lifespan (the
    session manager and the router runtime) runs exactly as without the guard."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        policy: HostPolicy,
        digest: bytes | None = None,
        limiter: RateLimiter | None = None,
        trust_proxy: bool = False,
    ) -> None:
        self.app = app
        self.policy = policy
        self._digest = digest
        self.limiter = limiter
        self.trust_proxy = trust_proxy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, receive, send)
            return
        if scope["type"] != "http":  # websockets: the MCP app serves none, and none may pass unchecked
            await send({"type": "websocket.close", "code": 1008})
            return
        headers = Headers(scope=scope)
        refusal = self._refusal(scope, headers)
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        if "authorization" in headers:
            scope = {**scope, "headers": [(k, v) for k, v in scope["headers"] if k != b"authorization"]}
        await self.app(scope, receive, send)

    def _refusal(self, scope: Scope, headers: Headers) -> Response | None:
        """The response that ends the request here, or None to pass it to the MCP app."""
        if scope["path"] == HEALTH_PATH:
            if scope["method"] in ("GET", "HEAD"):
                return JSONResponse({"status": "ok"})
            return _error(405, "method not allowed", {"Allow": "GET, HEAD"})
        client = self.client_key(scope, headers)
        if self.limiter is not None:
            wait_s = self.limiter.wait(client)
            if wait_s > 0:
                logger.debug("rate limited %s for %.2f s", client, wait_s)
                return _error(429, "too many requests", {"Retry-After": str(retry_after_s(wait_s))})
        host = headers.get("host")
        if not self.policy.allows_host(host):
            logger.warning(
                "refused a request from %s for Host %r: not an allowed host (add it with --allowed-host)",
                client,
                (host or "")[:_LOGGED_VALUE_CHARS],
            )
            return _error(421, "misdirected request")
        origin = headers.get("origin")
        if not self.policy.allows_origin(origin):
            logger.warning(
                "refused a request from %s with Origin %r: not an allowed origin (add it with "
                "--allowed-origin)",
                client,
                (origin or "")[:_LOGGED_VALUE_CHARS],
            )
            return _error(403, "origin not allowed")
        if self._digest is not None:
            presented = self._bearer(headers)
            if presented is None or not hmac.compare_digest(token_digest(presented), self._digest):
                why = "no" if presented is None else "a wrong"
                logger.debug("refused a request from %s: %s bearer token", client, why)
                challenge = REALM if presented is None else f'{REALM}, error="invalid_token"'
                return _error(401, "unauthorized", {"WWW-Authenticate": challenge})
        return None

    @staticmethod
    def _bearer(headers: Headers) -> str | None:
        scheme, _, credentials = headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not credentials.strip():
            return None
        return credentials.strip()

    def client_key(self, scope: Scope, headers: Headers) -> str:
        """Whose bucket a request draws on: the peer address, or with `--trust-proxy` the address the
        proxy saw (the last `X-Forwarded-For` entry: the one the proxy appended, while earlier ones are
        whatever the client claimed). One token is shared by all clients, so it names no one."""
        if self.trust_proxy:
            forwarded = ",".join(headers.getlist("x-forwarded-for"))
            nearest = forwarded.rsplit(",", 1)[-1].strip()
            if nearest:
                return nearest[:_LOGGED_VALUE_CHARS]
        peer = scope.get("client")
        return peer[0] if peer else "unknown"
