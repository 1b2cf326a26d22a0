"""The parent's side of one load: start the load generator child, watch its acknowledgements, sample
the server's RSS, kill the server on cue, and read the child's summary.

The parent only watches: it counts the lines of the acknowledgement file as they are appended (so
the kill lands when about half the calls are acknowledged, within one poll), and reads
`/proc/PID/status` of the server every few seconds. The load generator is stopped by its pid if it
outlives the run's timeout, and the run fails then, saying so.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mcp_router.bench.load.params import Params
from mcp_router.bench.load.progress import progress
from mcp_router.bench.load.server import RouterProcess, rss_mb
from mcp_router.bench.load.setting import LoadSetup
from mcp_router.bench.overhead.servers import tail
from mcp_router.bench.stubs import stop_process

POLL_S = 0.05
PROGRESS_EVERY_S = 10.0


class AckCounter:
    """Lines appended to the acknowledgement file so far, read incrementally."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.count = 0

    def poll(self) -> int:
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read()
        except FileNotFoundError:
            return self.count
        end = data.rfind(b"\n") + 1  # a line half-written is counted once it is whole
        self.count += data.count(b"\n", 0, end)
        self.offset += end
        return self.count


@dataclass
class Drive:
    summary: dict[str, Any]  # the load generator's JSON
    rss_samples: list[tuple[float, float]] = field(default_factory=list)  # (seconds in, MB)
    killed_at_acks: int | None = None  # acknowledgements counted when the server was killed


def drive(
    setup: LoadSetup,
    server: RouterProcess,
    params: Params,
    calls: int,
    acks: Path,
    name: str,
    kill_at: int | None = None,
) -> Drive:
    """`calls` calls through the load generator against `server`; kill it at `kill_at` acknowledgements."""
    argv = [
        *("--url", server.url, "--calls", str(calls), "--concurrency", str(params.concurrency)),
        *("--sessions", str(params.sessions), "--acks", str(acks), "--seed", str(params.seed)),
        *("--call-timeout", str(params.call_timeout_s)),
        *(("--stop-when-down",) if kill_at is not None else ()),
    ]
    log = setup.log(name)
    with open(log, "ab") as sink:
        child = subprocess.Popen(
            [sys.executable, "-m", "mcp_router.bench.load.loadgen", *argv],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=sink,
            env={**os.environ, **setup.env()},
        )
    result = Drive(summary={})
    counter = AckCounter(acks)
    started = time.monotonic()
    next_rss = next_progress = started
    try:
        while child.poll() is None:
            now = time.monotonic()
            if now - started > params.run_timeout_s:
                raise RuntimeError(f"the load generator ran past {params.run_timeout_s:.0f} s")
            done = counter.poll()
            if kill_at is not None and result.killed_at_acks is None and done >= kill_at:
                server.kill()
                result.killed_at_acks = done
                progress(f"kill -9 the server (pid {server.pid}) at {done} acknowledged calls")
            if now >= next_rss and result.killed_at_acks is None:
                if (mb := rss_mb(server.pid)) is not None:
                    result.rss_samples.append((round(now - started, 1), mb))
                next_rss = now + params.rss_every_s
            if now >= next_progress:
                rate = done / (now - started) if now > started else 0.0
                progress(f"{name}: {done}/{calls} acknowledged ({rate:.0f}/s)")
                next_progress = now + PROGRESS_EVERY_S
            time.sleep(POLL_S)
        out = child.stdout.read() if child.stdout else b""
    finally:
        if child.poll() is None:
            stop_process(child, 10)
        if child.stdout:
            child.stdout.close()
    if child.returncode != 0:
        raise RuntimeError(f"the load generator failed (exit {child.returncode}); its log:\n{tail(log)}")
    result.summary = json.loads(out)
    progress(f"{name}: {counter.poll()} acknowledged in {time.monotonic() - started:.1f} s")
    return result
