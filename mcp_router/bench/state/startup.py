"""Start-up against database size: process start to the first served call, in four cases.

For each size a database is generated through the store (`history.py`), then:

(a) empty database: the baseline (a fresh database each time);
(b) first start on the generated database: no snapshot yet, every event is folded;
(c) restart after a clean shutdown: the snapshot the previous shutdown saved, nothing to fold. The
    server started (and killed) for (d) is one more sample of it: it starts under the same conditions;
(d) restart after `kill -9`, with `kill_backlog` events written after the last snapshot while that
    server ran (as other replicas, or the killed one itself, would have written them).

Other work may share the cores, so every start of (b), (c) and (d) is paired with an (a) start taken
just before it, and "over empty" is the difference within each pair. Each start also reports the
server process's CPU time to its first answer, which a busy machine inflates far less than wall time.

Before each start the database is read for what the restore will have to fold (the newest event
against the oldest snapshot), so the report shows what each case really replayed.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from mcp_router.bench.overhead.servers import tail
from mcp_router.bench.overhead.setting import Setup
from mcp_router.bench.state.history import BATCH, History, Written
from mcp_router.bench.state.params import Params
from mcp_router.bench.state.progress import progress
from mcp_router.bench.state.servers import TIMES, kill, stop, timed_start
from mcp_router.bench.state.targets import Target

EVENTS_PER_CALL_BOUND = 4  # a call makes 2-3 events on average (decision, attempts, a quality signal)
Measure = Callable[[], Awaitable[dict[str, Any]]]


def backlog(target: Target) -> dict[str, int | None]:
    """The newest event, the oldest router snapshot, and how many events a restart will fold."""
    store = target.open()
    try:
        last = store.last_seq()
        row = store.query("SELECT MIN(seq) AS seq FROM router_snapshots")[0]
    finally:
        store.close()
    snapshot = None if row["seq"] is None else int(row["seq"])
    return {"last_seq": last, "snapshot_seq": snapshot, "events_to_fold": last - (snapshot or 0)}


async def clean_start(setup: Setup, target: Target, log: Path) -> dict[str, Any]:
    """One start to the first answer, then a clean stop (which saves the snapshot)."""
    before = backlog(target)
    start, server = await timed_start(setup, target, log)
    if not stop(server):
        raise RuntimeError(
            f"the server did not shut down cleanly (exit {server.process.returncode}):\n{tail(log)}"
        )
    return {**start, **before}


class Baseline:
    """(a): starts on a fresh empty database, one right before every measured start."""

    def __init__(self, setup: Setup, new_target: Callable[[str], Target]) -> None:
        self.setup = setup
        self.new_target = new_target
        self.made = 0
        self.starts: list[dict[str, Any]] = []

    async def start(self) -> dict[str, Any]:
        self.made += 1
        target = self.new_target(f"empty_{self.made}")
        return await clean_start(self.setup, target, self.setup.workdir / "empty.log")

    async def paired(self, measure: Measure) -> dict[str, Any]:
        """An empty-database start, then `measure`'s start, returned with both differences."""
        empty = await self.start()
        self.starts.append(empty)
        start = await measure()
        return {
            **start,
            **{f"empty_{k}": empty[k] for k in TIMES},
            **{f"over_empty_{k}": difference(start[k], empty[k]) for k in TIMES},
        }

    def summary(self) -> dict[str, Any]:
        return summary(self.starts)


async def bench_size(
    setup: Setup, target: Target, calls: int, params: Params, baseline: Baseline
) -> dict[str, Any]:
    """Generate `calls` calls on `target`, then time (b), (c) and (d) on it, each paired with (a)."""
    history = History(seed=calls)
    written = generate(history, target, calls)
    row: dict[str, Any] = {"calls": calls, "generated": written.to_json(), "db_bytes": target.size_bytes()}
    log = setup.workdir / f"{target.backend}-{calls}.log"

    def clean() -> Awaitable[dict[str, Any]]:
        return clean_start(setup, target, log)

    row["first_start"] = await baseline.paired(clean)
    progress(f"{target.backend} {calls:,}: first start (full replay) {row['first_start']['s']} s")
    restarts = [await baseline.paired(clean) for _ in range(params.restart_reps)]
    after_kill, backlogs = [], []
    for _ in range(params.kill_reps):
        running = Running(setup, target, log)
        restarts.append(await baseline.paired(running.start))
        backlogs.append(running.kill_after(history, params.kill_backlog).to_json())
        after_kill.append(await baseline.paired(clean))
    row["restart_snapshot"] = summary(restarts)
    row["restart_after_kill"] = {**summary(after_kill), "backlog_written": backlogs}
    progress(
        f"{target.backend} {calls:,}: restart with snapshot {row['restart_snapshot']['median_s']} s, "
        f"after kill -9 {row['restart_after_kill']['median_s']} s "
        f"({after_kill[-1]['events_to_fold']:,} events to fold)"
    )
    return row


class Running:
    """A server started (and timed) on the snapshot, that goes on running until `kill_after` has
    written a backlog of events behind that snapshot and killed it with SIGKILL."""

    def __init__(self, setup: Setup, target: Target, log: Path) -> None:
        self.setup, self.target, self.log = setup, target, log
        self.server: Any = None

    async def start(self) -> dict[str, Any]:
        before = backlog(self.target)
        start, self.server = await timed_start(self.setup, self.target, self.log)
        return {**start, **before}

    def kill_after(self, history: History, events: int) -> Written:
        try:
            return write_backlog(history, self.target, events)
        finally:
            kill(self.server)


def generate(history: History, target: Target, calls: int) -> Written:
    """The history, written through the store; a progress line about every tenth."""
    every = max(calls // 10, BATCH)

    def report(done: int) -> None:
        if done % every < BATCH and done < calls:
            progress(f"{target.backend}: generated {done:,} / {calls:,} calls")

    store = target.open()
    try:
        return history.write(store, calls, time.time(), report)
    finally:
        store.close()


def write_backlog(history: History, target: Target, events: int) -> Written:
    """About `events` router events (a call's worth over at most), while a server runs on `target`:
    the batches shrink as the count nears, so the running server's event-count snapshot, due at
    `SNAPSHOT_EVERY_EVENTS`, is not triggered by an overshoot."""
    written = Written()
    store = target.open()
    try:
        while written.events < events:
            calls = min(BATCH, max(1, (events - written.events) // EVENTS_PER_CALL_BOUND))
            written.add(history.write(store, calls, time.time()))
    finally:
        store.close()
    return written


def difference(value: float | None, baseline: float | None) -> float | None:
    return None if value is None or baseline is None else round(value - baseline, 3)


def summary(starts: list[dict[str, Any]]) -> dict[str, Any]:
    """Repeated starts of one case: each one, and the medians of every time and difference."""
    keys = [k for k in (*TIMES, *(f"over_empty_{t}" for t in TIMES)) if starts and k in starts[0]]
    medians = {}
    for key in keys:
        values = [s[key] for s in starts if s[key] is not None]
        medians[f"median_{key}"] = round(statistics.median(values), 3) if values else None
    return {**medians, "starts": starts}
