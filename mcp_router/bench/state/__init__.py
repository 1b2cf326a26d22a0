"""`mcp-router bench state`: what the router's persistent state costs at start-up, and how fast it
travels between processes, on SQLite and on PostgreSQL.

1. Start-up against database size (`startup.py`): for each size a database is generated through the
   store (`history.py`: search and retrieve calls over several arms with fallbacks, quality signals,
   feedback, llm_complete sessions), then the time from `mcp-router serve --transport http` process
   start to the first served call is measured on an empty database, on the first start (a full
   replay of every event), on a restart after a clean shutdown (the snapshot), and on a restart after
   `kill -9` with a backlog of events written after the last snapshot.
2. Event propagation (`propagation.py`): two server processes on one database; a feedback through one
   is timed until the other's router shows it.

Servers are real subprocesses (`servers.py`) against the loopback provider stub of `bench overhead`,
on a SQLite file or on a throwaway PostgreSQL (`bench/postgres.py`), configured by `setting.py`.
The issue's bar (1M calls: at most 2 s over the empty database) is read, never aimed at (`bars.py`).
Progress goes to stderr, the table to stdout (`report.py`), every figure to `--json`.
"""

from __future__ import annotations

import argparse
import sys


def main(args: argparse.Namespace) -> int:
    """`mcp-router bench state [--quick] [--sizes N,...] [--backend B] [--json F]`."""
    import anyio

    from mcp_router.bench.output import publish, quiet_clients
    from mcp_router.bench.state.params import params_of
    from mcp_router.bench.state.progress import progress
    from mcp_router.bench.state.report import render
    from mcp_router.bench.state.run import run_all

    try:
        params = params_of(args)
    except argparse.ArgumentTypeError as exc:
        print(f"mcp-router bench state: {exc}", file=sys.stderr)
        return 2
    quiet_clients()
    report = anyio.run(run_all, params)
    publish(render(report), report, getattr(args, "json", None), progress)
    return 0
