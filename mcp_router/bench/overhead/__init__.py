"""`mcp-router bench overhead`: what the router adds to a tool call, measured against bare floors.

Everything runs in one invocation, side by side, against instant loopback providers served by a
separate process (`stubs.py`: an OpenAI-compatible chat endpoint and a SearXNG endpoint that answer
in tens of microseconds), so what is left is the caller's cost:

1. micro, no MCP (`micro.py`, `mtrouter.py`): one LQM-ContextRoute decision over 8 warmed arms, the
   server's query features, and MTRouter's model decision on its priors and with a checkpoint
   (history embedding cached or not);
2. the full path (`paths.py`) of a routed `search`, `retrieve` (bm25) and `llm_complete` in process,
   over stdio and over streamable HTTP, each against a bare-SDK floor (`floor_server.py`) making the
   same provider call on the same transport; batches of router and floor calls alternate so machine
   noise hits both, and "added" is router minus floor;
3. LiteLLM's `Router.acompletion` against a raw httpx call to the same stub, if `litellm` is installed
   (`litellm_row.py`);
4. throughput over streamable HTTP at concurrency 1, 16 and 64, driven by a load generator in its own
   process, router against floor (`throughput.py`);
5. the RSS of a process serving routed calls in process, after a few and after many calls (`rss.py`);
6. start-up: process start to the first served `search` / `retrieve` over stdio, router and floor
   (`startup.py`).

The bars of the issue are evaluated at the end and reported pass/fail (`bars.py`). They are only read,
never aimed at: nothing here tunes the server. `--quick` shrinks every count (`params.py`, a CI smoke
run) but keeps every row kind. Progress goes to stderr, the table to stdout (`report.py`), every figure
to `--json`.

The load generator and the RSS probe run as child processes (`children.py`):
`python -m mcp_router.bench.overhead.throughput ...` and `python -m mcp_router.bench.overhead.rss ...`.

This module imports nothing of the package when it is imported, so those children load only what
they use (and `python -m` finds their module not yet imported).
"""

from __future__ import annotations

import argparse


def main(args: argparse.Namespace) -> int:
    """`mcp-router bench overhead [--quick] [--json F]`."""
    import anyio

    from mcp_router.bench.output import publish, quiet_clients
    from mcp_router.bench.overhead.params import FULL, QUICK
    from mcp_router.bench.overhead.progress import progress
    from mcp_router.bench.overhead.report import render
    from mcp_router.bench.overhead.run import run_all

    params = QUICK if getattr(args, "quick", False) else FULL
    quiet_clients()
    report = anyio.run(run_all, params)
    publish(render(report), report, getattr(args, "json", None), progress)
    return 0
