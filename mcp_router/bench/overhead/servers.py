"""Reaching the router and its floor: MCP clients, server children over stdio and HTTP, their logs.

The router runs as `python -m mcp_router serve` and the floor as `python -m mcp_router.bench.floor_server`,
with the same arguments shape and environment, so each transport costs both sides the same. A child's
log stays in the scratch folder and its end is shown when something fails, since the SDK reports a dead
child only as "Connection closed".
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client

from mcp_router.bench.floor_server import FloorConfig
from mcp_router.bench.overhead.setting import MODELS, Setup
from mcp_router.bench.stubs import stop_process

CALL_TIMEOUT_S = 60.0


def mcp_client(target: Any) -> Client:
    """An MCP client (not yet open) of an in-process server, an MCP URL or a stdio transport."""
    return Client(target, cache=None, read_timeout_seconds=CALL_TIMEOUT_S)


def floor_config(setup: Setup) -> FloorConfig:
    return FloorConfig(stub_url=setup.stub.base_url, docs=setup.docs, model=MODELS[1].name)


def serve_args(setup: Setup, db: Path, *extra: str) -> list[str]:
    return ["-m", "mcp_router", "serve", "--config", str(setup.config), "--db", str(db), *extra]


def floor_args(setup: Setup, *extra: str) -> list[str]:
    return [
        "-m",
        "mcp_router.bench.floor_server",
        "--stub",
        setup.stub.base_url,
        "--docs",
        str(setup.docs),
        *extra,
    ]


def stdio_client_for(args: list[str], env: dict[str, str], log: Any) -> Client:
    """A client of `python ARGS` over stdio; the child's stderr goes to `log`."""
    params = StdioServerParameters(command=sys.executable, args=args, env=env)
    return mcp_client(stdio_client(params, errlog=log))


@contextlib.contextmanager
def http_server(args: list[str], env: dict[str, str], log: Path) -> Iterator[str]:
    """A server child on a free loopback port; yields its MCP URL and stops it (by its pid) after."""
    port = free_port()
    with open(log, "ab") as sink:
        process = subprocess.Popen(
            [sys.executable, *args, "--transport", "http", "--port", str(port)],
            stdout=sink,
            stderr=subprocess.STDOUT,
            env={**os.environ, **env},
        )
        try:
            wait_for_port(process, port, log)
            yield f"http://127.0.0.1:{port}/mcp"
        finally:
            stop_process(process, 20)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(process: subprocess.Popen, port: int, log: Path, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"server did not start; its log:\n{tail(log)}") from None
            time.sleep(0.05)


@contextlib.asynccontextmanager
async def explained(what: str, log: Path) -> AsyncIterator[None]:
    """Failures of a server child surface as a bare "Connection closed" (in an exception group): add
    the end of the servers' log, which says why."""
    try:
        yield
    except Exception as exc:
        raise RuntimeError(
            f"{what} failed ({type(exc).__name__}: {exc}); the log ends:\n{tail(log)}"
        ) from exc


def tail(path: Path, chars: int = 3000) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return "(no log)"


@contextlib.contextmanager
def logs_to(path: Path) -> Iterator[None]:
    """Send this process's log records to a file while an in-process server (or LiteLLM) runs: the
    same records, at the same levels, as a server child writes to its stderr, without flooding the
    progress lines. Loggers with handlers of their own (LiteLLM's) are redirected too."""
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    loggers = [logging.getLogger()] + [
        logger
        for logger in logging.root.manager.loggerDict.values()
        if isinstance(logger, logging.Logger) and logger.handlers
    ]
    saved = [logger.handlers[:] for logger in loggers]
    for logger in loggers:
        logger.handlers = [handler]
    try:
        yield
    finally:
        for logger, handlers in zip(loggers, saved, strict=True):
            logger.handlers = handlers
        handler.close()
