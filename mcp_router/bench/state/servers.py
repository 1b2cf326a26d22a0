"""`mcp-router serve --transport http` children: started with a stopwatch, stopped cleanly or killed.

Start-up is timed from just before the process is spawned to the answer of its first `search`, made
by a real MCP client over HTTP, so it holds everything a replica costs before it serves: interpreter
and imports, migrations, the router restore (snapshot and events folded), and the first request.
The port opens only once the server's lifespan (which restores the routers) has run.

A clean stop is SIGTERM, which runs the lifespan's shutdown and saves the routers' snapshot; `kill`
is SIGKILL, which saves nothing. Both wait for the process, bounded.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import anyio

from mcp_router.bench.overhead.calls import timed_call
from mcp_router.bench.overhead.servers import free_port, mcp_client, serve_args, tail, wait_for_port
from mcp_router.bench.overhead.setting import Setup, tool_args
from mcp_router.bench.state.targets import Target
from mcp_router.bench.stubs import stop_process

START_TIMEOUT_S = 900.0  # a full replay of millions of events, on a slow machine
FIRST_CALL_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 120.0
FIRST_QUERY = "configure the claude desktop client"
TIMES = ("s", "cpu_s")  # what a start reports: wall seconds to the first answer, and server CPU seconds


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    url: str
    log: Path
    started: float  # time.perf_counter() just before the spawn


def spawn(setup: Setup, target: Target, log: Path) -> Server:
    """Start a server on `target` at a free loopback port; the clock starts now."""
    port = free_port()
    args = [*serve_args(setup, target.location), "--transport", "http", "--port", str(port)]
    env = {**setup.env(), **target.env}
    started = time.perf_counter()
    with open(log, "ab") as sink:
        process = subprocess.Popen(
            [sys.executable, *args], stdout=sink, stderr=subprocess.STDOUT, env={**os.environ, **env}
        )
    server = Server(process, f"http://127.0.0.1:{port}/mcp", log, started)
    try:
        wait_for_port(process, port, log, START_TIMEOUT_S)
    except BaseException:
        stop_process(process, 10)
        raise
    return server


async def first_call_s(server: Server) -> float:
    """Seconds from the spawn to the answer of the server's first `search`."""
    try:
        with anyio.fail_after(FIRST_CALL_TIMEOUT_S):
            async with mcp_client(server.url) as client:
                await timed_call(client, "search", tool_args("search", FIRST_QUERY, floor=True))
    except Exception as exc:
        raise RuntimeError(
            f"first call failed ({type(exc).__name__}: {exc}); log:\n{tail(server.log)}"
        ) from exc
    return time.perf_counter() - server.started


def stop(server: Server) -> bool:
    """SIGTERM (the shutdown saves the snapshot); True when it exited by itself in time. Uvicorn
    re-raises the signal once its shutdown is complete, so a clean exit may be "killed by SIGTERM"."""
    stop_process(server.process, STOP_TIMEOUT_S)
    return server.process.returncode in (0, -signal.SIGTERM)


def kill(server: Server) -> None:
    """SIGKILL: no shutdown, no snapshot, as a crashed or OOM-killed replica."""
    server.process.kill()
    server.process.wait(timeout=STOP_TIMEOUT_S)


async def timed_start(setup: Setup, target: Target, log: Path) -> tuple[dict[str, float | None], Server]:
    """Spawn and make the first call: ({"s": seconds to the first answer, "cpu_s": the server's CPU
    seconds by then}, the running server)."""
    server = spawn(setup, target, log)
    try:
        seconds = await first_call_s(server)
        cpu = cpu_s(server.process.pid)
    except BaseException:
        stop_process(server.process, 10)
        raise
    return {"s": round(seconds, 3), "cpu_s": None if cpu is None else round(cpu, 3)}, server


def cpu_s(pid: int) -> float | None:
    """User + system CPU seconds of a running process, all its threads (Linux `/proc`); None elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
