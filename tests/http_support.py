"""`mcp-router serve --transport http` as a real subprocess on a free loopback port, for tests that
need several server processes."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.providers_support import free_port

START_TIMEOUT_S = 90


@dataclass
class HttpServer:
    url: str  # the MCP endpoint
    process: subprocess.Popen[bytes]
    log: Path


@contextmanager
def serve_http(
    config: Path, db: str | Path, log: Path, env: dict[str, str] | None = None, extra: tuple[str, ...] = ()
) -> Iterator[HttpServer]:
    """Start the server, wait until its port accepts connections, yield it; terminate it after (a test
    may have killed it already)."""
    port = free_port()
    argv = ["serve", "--config", str(config), "--db", str(db), "--transport", "http", "--port", str(port)]
    argv += list(extra)
    with open(log, "w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "mcp_router", *argv],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
        )
        try:
            deadline = time.monotonic() + START_TIMEOUT_S
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                    break
                except OSError:
                    assert process.poll() is None, log.read_text()
                    assert time.monotonic() < deadline, "HTTP server did not start"
                    time.sleep(0.1)
            yield HttpServer(f"http://127.0.0.1:{port}/mcp", process, log)
        finally:
            if process.poll() is None:
                process.terminate()
            process.wait(timeout=30)
