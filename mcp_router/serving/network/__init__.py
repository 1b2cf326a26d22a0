"""The network face of `mcp-router serve --transport http`: who may talk to the server over HTTP.

Anyone who reaches the port spends the configured API keys, so a bind beyond loopback needs a bearer
token, and every request passes one guard (`guard`) before the MCP app: `/healthz` for load
balancers, a per-client token bucket (`ratelimit`), the DNS-rebinding Host/Origin check (`hosts`),
then the token. `options` turns the command line into settings (and refuses unsafe ones) without
importing the HTTP stack, so `mcp-router --help` stays fast; `app` builds the ASGI app and runs it.
"""
