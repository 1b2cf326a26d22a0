"""`mcp-router bench load`: one server process under a long, concurrent, partly failing load, and what
its database holds afterwards; with `--kill`, what survives a `kill -9` half-way.

One `mcp-router serve --transport http` process on a fresh SQLite database serves `search` and
`llm_complete` from a mixed pool on the fault server (`bench/faults.py`, its own process): per tool a
healthy arm and one behind a `mix` prefix, so about a tenth of the calls meet a fault (503, 429,
reset, 500, malformed JSON, 502, HTML) on their first attempt (`setting.py`). A load generator in its
own process (`loadgen.py`) sends N calls at concurrency C over streamable HTTP: mostly `search`, some
budgeted `llm_complete` session turns, some `feedback` on earlier calls (`mix.py`), and appends each
acknowledged call_id to a file as it arrives. Then, from the database file and the logs (`checks.py`,
`logs.py`): no acknowledged call lost, none doubled, no unhandled exception, how often a fallback
rescued a failed first attempt, the counters equal to the rows; and the server's RSS growth.

`--kill` kills the server with SIGKILL once half the calls are acknowledged; the generator stops when
the server is gone, a new server process opens the same database and serves `router://stats/search`,
and the same checks run on what the crash left. Progress goes to stderr, the table to stdout
(`report.py`), every figure to `--json`.

This module imports nothing of the package when it is imported, so the load generator child loads
only what it uses.
"""

from __future__ import annotations

import argparse
import sys


def main(args: argparse.Namespace) -> int:
    """`mcp-router bench load [--quick] [--calls N] [--concurrency C] [--kill] [--json F]`; exit 1 if a
    bar fails, so a script (or CI) can rely on the exit code."""
    from mcp_router.bench.load.params import params_of
    from mcp_router.bench.load.progress import progress
    from mcp_router.bench.load.report import render
    from mcp_router.bench.load.run import run_all
    from mcp_router.bench.output import publish, quiet_clients

    try:
        params = params_of(args)
    except argparse.ArgumentTypeError as exc:
        print(f"mcp-router bench load: {exc}", file=sys.stderr)
        return 2
    quiet_clients()
    report = run_all(params)
    publish(render(report), report, getattr(args, "json", None), progress)
    return 0 if all(b["pass"] is not False for b in report["bars"]) else 1
