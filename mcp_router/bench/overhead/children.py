"""The parts that run in a process of their own (load generator, RSS probe): both ends of the pipe.

`run_child` starts `python -m mcp_router.bench.overhead.NAME ARGS` and reads its JSON; `child_main` is
that child's side: parse, log to stderr, run, print one JSON document on stdout. A child keeps its
load off the measured process (the load generator) or measures a process nothing else has touched
(the RSS probe).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import anyio

from mcp_router.bench.overhead.servers import tail
from mcp_router.bench.overhead.setting import Setup

PACKAGE = "mcp_router.bench.overhead"


def run_child(setup: Setup, name: str, *args: str, timeout_s: float = 7200) -> Any:
    """`python -m mcp_router.bench.overhead.NAME ARGS` in its own process: JSON from its stdout, its
    stderr kept in the scratch folder and shown if it fails."""
    log = setup.workdir / f"{name}.log"
    with open(log, "ab") as sink:
        done = subprocess.run(
            [sys.executable, "-m", f"{PACKAGE}.{name}", *args],
            stdout=subprocess.PIPE,
            stderr=sink,
            env={**os.environ, **setup.env()},
            timeout=timeout_s,
            check=False,
        )
    if done.returncode != 0:
        raise RuntimeError(f"`{name}` failed (exit {done.returncode}); its log:\n{tail(log)}")
    return json.loads(done.stdout)


def child_main(
    parser: argparse.ArgumentParser,
    run: Callable[[argparse.Namespace], Awaitable[Any]],
    argv: Sequence[str] | None = None,
) -> None:
    """A child's entry: its arguments, its log records on stderr (kept by `run_child`), then `run`'s
    result as JSON on stdout, the only thing written there."""
    args = parser.parse_args(argv)
    logging.basicConfig(
        stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    for noisy in ("httpx", "httpcore", "httpx2"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    print(json.dumps(anyio.run(run, args)))
