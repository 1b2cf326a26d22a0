"""The one router process under load: `mcp-router serve --transport http` on the benchmark's database.

A separate process, as a deployment runs it, so its RSS is its own and `kill -9` hits nothing else.
Its stdout and stderr go to a log file in the scratch folder, which `logs.py` scans for unhandled
exceptions. Every way out stops it by its own pid: SIGTERM (bounded, then SIGKILL), or SIGKILL on
purpose for the crash-safety run.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from mcp_router.bench.load.setting import LoadSetup
from mcp_router.bench.overhead.servers import free_port, wait_for_port
from mcp_router.bench.stubs import stop_process

START_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 60.0


@dataclass
class RouterProcess:
    process: subprocess.Popen[bytes]
    url: str  # the MCP endpoint
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def kill(self) -> None:
        """SIGKILL, as a crash or the OOM killer: no shutdown, nothing flushed, no snapshot saved."""
        self.process.kill()
        self.process.wait(timeout=STOP_TIMEOUT_S)

    def stop(self) -> int | None:
        """SIGTERM and wait (SIGKILL if it hangs); its exit code, or None if it had already exited."""
        if self.process.poll() is not None:
            return None
        stop_process(self.process, STOP_TIMEOUT_S)
        return self.process.returncode


@contextlib.contextmanager
def router_process(setup: LoadSetup, log: Path) -> Iterator[RouterProcess]:
    """The router on a free loopback port, serving once its port accepts; stopped when the block ends
    (a block that killed it already leaves nothing to stop)."""
    port = free_port()
    argv = ["serve", "--config", str(setup.config), "--db", str(setup.db), "--transport", "http"]
    with open(log, "ab") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "mcp_router", *argv, "--port", str(port)],
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
            env={**os.environ, **setup.env()},
        )
    server = RouterProcess(process, f"http://127.0.0.1:{port}/mcp", log)
    try:
        wait_for_port(process, port, log, START_TIMEOUT_S)
        yield server
    finally:
        server.stop()


def rss_mb(pid: int) -> float | None:
    """The resident set of a running process, in MB (Linux `/proc`); None once it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None
