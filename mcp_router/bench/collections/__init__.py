"""`mcp-router bench collections`: how a folder collection's on-disk index behaves from the first
start of a server to an edited file, measured through a real MCP client over stdio.

On the 5,183 SciFact abstracts, written out one `.txt` file each into a work folder (`corpus.py`):

1. First start, empty index folder (`first_start.py`): spawn to `initialize`, to the first served
   `retrieve`, and to the BM25 and dense views being published (read from `router://collections`),
   while a `retrieve` is sent every second: which arm served each call while the index was built,
   how slow any got, whether every one was answered.
2. Second start on the warm index (`second_start.py`): servers with only `dense`, only `hybrid`, and
   all three arms, each timed to its first served call; the bar is 2 s (`bars.py`).
3. Editing one file (`edit.py`): `mcp-router index` after one edit must embed one file; a running
   server must pick another edit up at its next rescan, embedding that one file.

Servers are real `mcp-router serve` children (`server.py`) configured by `setting.py`; progress goes
to stderr, the table to stdout (`report.py`), every figure to `--json`. The exit code is 1 when a
check of behaviour fails; the timing bar is only read.
"""

from __future__ import annotations

import argparse
import sys


def main(args: argparse.Namespace) -> int:
    """`mcp-router bench collections [--quick] [--documents N] [--workdir DIR] [--json F]`."""
    import anyio

    from mcp_router.bench.collections.corpus import scifact_root
    from mcp_router.bench.collections.params import params_of
    from mcp_router.bench.collections.progress import progress
    from mcp_router.bench.collections.report import render
    from mcp_router.bench.collections.run import run_all
    from mcp_router.bench.output import publish, quiet_clients

    try:
        params = params_of(args)
        scifact_root()
    except (argparse.ArgumentTypeError, FileNotFoundError) as exc:
        print(f"mcp-router bench collections: {exc}", file=sys.stderr)
        return 2
    quiet_clients()
    report = anyio.run(run_all, params)
    publish(render(report), report, getattr(args, "json", None), progress)
    return 0 if all(report["checks"].values()) else 1
