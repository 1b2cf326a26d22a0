"""The MCP server as a guarded ASGI app, and running it with uvicorn.

`serve_http` replaces `MCPServer.run("streamable-http", host=, port=)` and keeps what it does: the
SDK's own `streamable_http_app()` (the `/mcp` path, its lifespan running the session manager and so
the router runtime once for all sessions), served by `uvicorn.Server.serve()` under `anyio.run`. It
differs in four deliberate ways:

- the app is wrapped in `NetworkGuard`, and the SDK gets explicit `TransportSecuritySettings`
  (by default it switches DNS-rebinding protection off for any non-loopback bind);
- uvicorn's own proxy-header rewriting is off: by default it trusts `X-Forwarded-For` from 127.0.0.1,
  which would let any local client pick its rate-limit bucket; `--trust-proxy` is the only switch;
- uvicorn installs no logging config of its own (its access log would go to stdout): its records go
  to the root logger, which the CLI sends to stderr at `--log-level`;
- no `server: uvicorn` header.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from mcp_router.serving.network.guard import NetworkGuard, token_digest
from mcp_router.serving.network.options import NetworkOptions
from mcp_router.serving.network.ratelimit import RateLimiter

if TYPE_CHECKING:
    from mcp.server.mcpserver import MCPServer

logger = logging.getLogger(__name__)


def build_app(server: MCPServer, options: NetworkOptions) -> NetworkGuard:
    """The SDK's streamable-HTTP app behind the guard. Call once per server: the SDK's session
    manager (created here) can run only once."""
    app = server.streamable_http_app(
        transport_security=options.policy.sdk_settings(),
        host=options.host,
        stateless_http=options.stateless,
    )
    return NetworkGuard(
        app,
        policy=options.policy,
        digest=token_digest(options.token.reveal()) if options.token else None,
        limiter=RateLimiter(options.rate_limit) if options.rate_limit else None,
        trust_proxy=options.trust_proxy,
    )


def serve_http(server: MCPServer, options: NetworkOptions, log_level: str = "INFO") -> None:
    """Serve until interrupted (blocks), as `server.run("streamable-http", ...)` does."""
    import anyio
    import uvicorn

    config = uvicorn.Config(
        build_app(server, options),
        host=options.host,
        port=options.port,
        log_level=log_level.lower(),
        log_config=None,
        proxy_headers=False,
        server_header=False,
    )
    logger.info(options.describe())
    anyio.run(uvicorn.Server(config).serve)
