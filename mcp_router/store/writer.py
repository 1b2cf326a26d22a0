"""One writer thread for the router database, with group commit.

A tool call must be durable before its result goes back (a `kill -9` may not lose an acknowledged
call), but a commit per call, each through its own worker-thread hop and its own turn at the store
lock, made the database the bottleneck of concurrent calls. Here every write is a small function of
the open transaction; the thread takes whatever is queued, runs it all in one `BEGIN IMMEDIATE`
transaction (a savepoint per item, so one failing item does not undo the others), commits once, and
only then wakes the waiting callers. A lone call pays one commit; a burst of calls shares one.

With `synchronous = NORMAL` a WAL commit does not fsync; the checkpoint that copies the WAL back into
the database does. SQLite runs it inside whichever commit crosses 1,000 pages, which put a 5–8 ms
fsync into one call in a few hundred. The writer turns that off for its connection and checkpoints
from its own thread and connection every second instead (PASSIVE: it never blocks the writer); the
WAL restarts from its beginning at the next commit after a checkpoint that caught up. Under writes
with no pause at all a passive checkpoint never catches up, so past `wal_limit_pages` the writer
runs one blocking (TRUNCATE) checkpoint between two batches: the WAL stays bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import sqlite_utils

from mcp_router.store.sqlite import Store

log = logging.getLogger("mcp_router.store")
T = TypeVar("T")
Work = Callable[[sqlite_utils.Database], Any]
_STOP = object()
CHECKPOINT_EVERY_S = 1.0
WAL_LIMIT_PAGES = 16_384  # 64 MB of 4 KiB pages, about 2,000 calls written with no pause


class WriterClosed(RuntimeError):
    """A write was submitted after the writer stopped."""


class GroupWriter:
    def __init__(self, store: Store, max_batch: int = 256, wal_limit_pages: int = WAL_LIMIT_PAGES) -> None:
        self.store = store
        self.max_batch = max_batch
        self.wal_limit_pages = wal_limit_pages
        self._wal = Path(f"{store.path}-wal")
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._checkpointer: threading.Thread | None = None
        self._stopped = threading.Event()
        self._closed = False
        self.commits = 0  # transactions committed; with `items`, the batching achieved
        self.items = 0

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="store-writer", daemon=True)
            self._thread.start()
            if self.store.on_disk:
                self.store.query("PRAGMA wal_autocheckpoint = 0")
                self._checkpointer = threading.Thread(
                    target=self._checkpoint, name="store-checkpoint", daemon=True
                )
                self._checkpointer.start()

    async def submit(self, work: Callable[[sqlite_utils.Database], T]) -> T:
        """Run `work(db)` inside the next group transaction; returns once that transaction committed.
        Its exception (if any) is raised here, and its changes alone are rolled back."""
        if self._closed:
            raise WriterClosed("the store writer is closed")
        self.start()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._queue.put((work, future, loop))
        return await future

    def close(self) -> None:
        """Commit what is queued, then stop the thread."""
        if self._closed:
            return
        self._closed = True
        if self._thread is not None:
            self._queue.put(_STOP)
            self._thread.join()
        self._stopped.set()
        if self._checkpointer is not None:
            self._checkpointer.join()

    def _checkpoint(self) -> None:
        conn = sqlite3.connect(str(self.store.path), timeout=10.0, isolation_level=None)
        try:
            while not self._stopped.wait(CHECKPOINT_EVERY_S):
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.Error as exc:  # busy or locked: the next round tries again
                    log.debug("store: checkpoint skipped: %s", exc)
        finally:
            conn.close()

    def _run(self) -> None:
        stop = False
        while not stop:
            item = self._queue.get()
            if item is _STOP:
                break
            batch = [item]
            while len(batch) < self.max_batch:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:
                    stop = True
                    break
                batch.append(item)
            self._commit(batch)
            if self.store.on_disk and self._wal_pages() > self.wal_limit_pages:
                try:
                    self.store.query("PRAGMA wal_checkpoint(TRUNCATE)")
                except sqlite3.Error as exc:  # another process holds it: the next batch tries again
                    log.debug("store: WAL restart skipped: %s", exc)

    def _wal_pages(self) -> float:
        try:
            return self._wal.stat().st_size / 4096
        except OSError:
            return 0.0

    def _commit(self, batch: list[tuple[Work, asyncio.Future[Any], asyncio.AbstractEventLoop]]) -> None:
        outcomes: list[tuple[bool, Any]] = []
        try:
            with self.store.transaction() as db:
                for work, _, _ in batch:
                    db.execute("SAVEPOINT item")
                    try:
                        result = work(db)
                    except Exception as exc:
                        db.execute("ROLLBACK TO item")
                        db.execute("RELEASE item")
                        outcomes.append((False, exc))
                    else:
                        db.execute("RELEASE item")
                        outcomes.append((True, result))
        except Exception as exc:  # the transaction itself failed: nothing of this batch is stored
            log.exception("store: a group commit of %d writes failed", len(batch))
            outcomes = [(False, exc)] * len(batch)
        else:
            self.commits += 1
            self.items += len(batch)
        for (_, future, loop), (ok, value) in zip(batch, outcomes, strict=True):
            with contextlib.suppress(RuntimeError):  # the caller's loop closed: nobody waits any more
                loop.call_soon_threadsafe(_resolve, future, ok, value)


def _resolve(future: asyncio.Future[Any], ok: bool, value: Any) -> None:
    if future.done():  # the caller was cancelled; the write stands regardless
        return
    if ok:
        future.set_result(value)
    else:
        future.set_exception(value)
