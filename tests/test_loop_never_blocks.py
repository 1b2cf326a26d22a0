"""The event loop never waits on SQLite: while another process holds the database's write lock,
resources still answer at once and the loop keeps turning, so calls that are not writing right then
(waiting on a provider, say) are not held up; writes wait in the writer thread, not on the loop."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import anyio
import pytest
from mcp import Client

from mcp_router.config import load_config
from mcp_router.serving.server import create_server

pytestmark = [pytest.mark.anyio, pytest.mark.slow]
HOLD_S = 3.0
LOOP_STALL_BOUND_S = 0.25  # the longest the loop may go without a turn while the lock is held


async def test_a_write_lock_held_by_another_process_does_not_stall_the_loop(
    config_file: Path, tmp_path: Path
) -> None:
    db = tmp_path / "router.db"
    async with Client(create_server(load_config(config_file), db), cache=None) as client:
        first = await client.call_tool("search", {"query": "bandits", "k": 1})
        assert not first.is_error
        holder = subprocess.Popen(  # another server process in the middle of a long write
            [
                sys.executable,
                "-c",
                "import sqlite3, sys, time\n"
                f"c = sqlite3.connect({str(db)!r}, isolation_level=None)\n"
                "c.execute('BEGIN IMMEDIATE'); print('locked', flush=True)\n"
                f"time.sleep({HOLD_S}); c.execute('COMMIT')\n",
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        locked_at = time.monotonic()
        gaps: list[float] = []

        async def ticker() -> None:
            last = time.monotonic()
            while True:
                await anyio.sleep(0.01)
                now = time.monotonic()
                gaps.append(now - last)
                last = now

        written: list = []

        async def write() -> None:  # its commit waits in the writer thread, holding the writer's lock
            written.append(await client.call_tool("search", {"query": "routing", "k": 1}))

        async with anyio.create_task_group() as tg:
            tg.start_soon(ticker)
            tg.start_soon(write)
            await anyio.sleep(0.5)
            read_started = time.monotonic()
            stats = json.loads((await client.read_resource("router://stats")).contents[0].text)
            calls = json.loads((await client.read_resource("router://calls/recent")).contents[0].text)
            read_s = time.monotonic() - read_started
            while not written:
                await anyio.sleep(0.05)
            waited_s = time.monotonic() - locked_at
            tg.cancel_scope.cancel()
        holder.wait(timeout=10)
    assert stats["tools"]["search"]["calls"] == 1 and len(calls["calls"]) == 1
    assert read_s < 1.0, f"resource reads waited {read_s:.2f} s behind a waiting write"
    assert max(gaps) < LOOP_STALL_BOUND_S, f"the loop stalled {max(gaps):.2f} s"
    assert not written[0].is_error and waited_s >= HOLD_S * 0.8  # it committed once the lock was free
