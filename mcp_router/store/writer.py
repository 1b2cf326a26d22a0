"""The router database's single writer, with group commit.

A tool call must be durable before its result goes back (a `kill -9` may not lose an acknowledged
call), but a commit per call, each through its own worker-thread hop and its own turn at the store
lock, made the database the bottleneck of concurrent calls. Here every write is a small function of
the open transaction. Writes submitted in one turn of the event loop form a batch that runs in one
`BEGIN IMMEDIATE` transaction (a savepoint per item when there are several, so one failing item does
not undo the others) and commits once; only then do the callers resume.

Where a batch commits: a WAL commit with `synchronous = NORMAL` does not fsync and takes about a
hundred microseconds, less than handing it to a thread and waiting for that thread to get the GIL
back. So the batch is tried on the event loop, but only without waiting: if the store lock is held
(a resource read in a worker thread) or another process holds SQLite's write lock, or earlier batches
are still queued, it goes to the writer thread instead, which waits for the lock (in order, so rows
keep the order the routers saw them in). The loop never blocks on a lock.

The WAL checkpoint, which does fsync, never runs inside a call: SQLite's automatic one is off, a
checkpointer thread with its own connection runs a PASSIVE checkpoint every second (it never blocks
the writer), and past `wal_limit_pages` (writes that never pause, so a passive checkpoint never
catches up) the writer thread runs one TRUNCATE checkpoint, and batches queue behind it instead of
committing on the loop meanwhile: the WAL stays within the limit plus the batches already queued.
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

from mcp_router.store.records import StoreBusy
from mcp_router.store.schema import Connection
from mcp_router.store.sqlite import BUSY_TIMEOUT_MS
from mcp_router.store.store import Store

log = logging.getLogger("mcp_router.store")
T = TypeVar("T")
Work = Callable[[Connection], Any]
Item = tuple[Work, "asyncio.Future[Any]"]
_STOP = object()
_TRUNCATE = object()
CHECKPOINT_EVERY_S = 1.0
WAL_LIMIT_PAGES = 16_384  # 64 MB of 4 KiB pages, about 2,000 calls written with no pause


class WriterClosed(RuntimeError):
    """A write was submitted after the writer stopped."""


class _ItemFailed(Exception):
    """The one write of a batch of one raised `error`: its transaction is rolled back."""

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


class GroupWriter:
    def __init__(self, store: Store, wal_limit_pages: int = WAL_LIMIT_PAGES) -> None:
        self.store = store
        self.wal_limit_pages = wal_limit_pages
        self._wal = Path(f"{store.path}-wal") if store.path else None
        self._pending: list[Item] = []  # submitted in this turn of the loop, not yet committed
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._queued = 0  # batches handed to the thread and not yet resolved (owned by the loop)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._checkpointer: threading.Thread | None = None
        self._stopped = threading.Event()
        self._closed = False
        self._truncating = False
        # the checkpointer thread's PASSIVE checkpoints and the writer's TRUNCATE take turns: run at
        # the same moment, the TRUNCATE came back busy and the WAL went on growing past its limit
        self._checkpointing = threading.Lock()
        self.commits = 0  # transactions committed; with `items`, the batching achieved
        self.items = 0
        self.on_loop = 0  # of the commits, those made on the event loop

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="store-writer", daemon=True)
            self._thread.start()
            if self.store.on_disk:
                self.store.backend.writer_pragma("wal_autocheckpoint = 0")
                self._checkpointer = threading.Thread(
                    target=self._checkpoint, name="store-checkpoint", daemon=True
                )
                self._checkpointer.start()

    async def submit(self, work: Callable[[Connection], T]) -> T:
        """Run `work(db)` inside the next group transaction; returns once that transaction committed.
        Its exception (if any) is raised here, and its changes alone are rolled back."""
        if self._closed:
            raise WriterClosed("the store writer is closed")
        self.start()
        loop = asyncio.get_running_loop()
        self._loop = loop
        future: asyncio.Future[T] = loop.create_future()
        if not self._pending:
            loop.call_soon(self._flush)  # after the other callbacks of this turn: they join the batch
        self._pending.append((work, future))
        return await future

    def close(self) -> None:
        """Commit what is queued, then stop the threads."""
        if self._closed:
            return
        self._closed = True
        if self._thread is not None:
            self._queue.put(_STOP)
            self._thread.join()
        if self._pending:  # submitted, but the loop never turned again: commit them here, last
            batch, self._pending = self._pending, []
            with self.store.lock:
                outcomes = self._commit(batch)
            self._resolve(batch, outcomes)
        self._stopped.set()
        if self._checkpointer is not None:
            self._checkpointer.join()

    # -- on the event loop -----------------------------------------------------------------------

    def _flush(self) -> None:
        batch, self._pending = self._pending, []
        if not batch:
            return
        if (
            self._queued == 0
            and not self._truncating  # batches wait behind a queued truncation: the WAL stops growing
            and self.store.backend.commits_on_loop
            and self.store.lock.acquire(blocking=False)
        ):
            try:
                outcomes = self._commit(batch, wait=False)
            finally:
                self.store.lock.release()
            if outcomes is not None:
                self.on_loop += 1
                self._resolve(batch, outcomes)
                self._bound_wal()
                return
        self._queued += 1
        self._queue.put(batch)

    def _resolve(self, batch: list[Item], outcomes: list[tuple[bool, Any]]) -> None:
        for (_, future), (ok, value) in zip(batch, outcomes, strict=True):
            if future.done():  # the caller was cancelled; the write stands regardless
                continue
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value)

    def _resolved_by_thread(self, batch: list[Item], outcomes: list[tuple[bool, Any]]) -> None:
        self._queued -= 1
        self._resolve(batch, outcomes)

    # -- one batch, on whichever thread ----------------------------------------------------------

    def _commit(self, batch: list[Item], wait: bool = True) -> list[tuple[bool, Any]] | None:
        """Run the batch in one transaction. Without `wait`, None when another connection holds the
        write lock (nothing has been written then)."""
        try:
            with self.store.transaction(wait=wait) as db:
                outcomes = self._run_items(db, batch)
        except StoreBusy:
            return None
        except _ItemFailed as failed:  # a batch of one whose write failed: rolled back, as a savepoint would
            return [(False, failed.error)]
        except Exception as exc:  # the transaction itself failed: nothing of this batch is stored
            log.exception("store: a group commit of %d writes failed", len(batch))
            return [(False, exc)] * len(batch)
        self.commits += 1
        self.items += len(batch)
        return outcomes

    @staticmethod
    def _run_items(db: Connection, batch: list[Item]) -> list[tuple[bool, Any]]:
        """Each write in a savepoint, so a failing one is undone alone. A batch of one (every call
        that did not overlap another) needs none: its failure rolls the transaction back, the same
        outcome. That matters: a savepoint's sub-journal spilled an llm_complete record's pages to a
        new temp file on every call (strace), about 0.1 ms on the loop."""
        if len(batch) == 1:
            work, _ = batch[0]
            try:
                return [(True, work(db))]
            except Exception as exc:
                raise _ItemFailed(exc) from exc
        outcomes: list[tuple[bool, Any]] = []
        for work, _ in batch:
            db.execute("SAVEPOINT item")
            try:
                result = work(db)
            except Exception as exc:
                db.execute("ROLLBACK TO SAVEPOINT item")
                db.execute("RELEASE SAVEPOINT item")
                outcomes.append((False, exc))
            else:
                db.execute("RELEASE SAVEPOINT item")
                outcomes.append((True, result))
        return outcomes

    # -- the writer thread -----------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            batch = self._queue.get()
            if batch is _STOP:
                break
            if batch is _TRUNCATE:
                self._truncate()
                continue
            with self.store.lock:
                outcomes = self._commit(batch)
            loop = self._loop
            if loop is not None:
                with contextlib.suppress(RuntimeError):  # the loop closed: nobody waits any more
                    loop.call_soon_threadsafe(self._resolved_by_thread, batch, outcomes)
            self._bound_wal()

    def _bound_wal(self) -> None:
        """After a commit, on either thread: past the limit, the writer thread truncates the WAL next
        (it may wait on readers, and it fsyncs, so never on the loop)."""
        if not self._truncating and self._wal_pages() > self.wal_limit_pages:
            self._truncating = True
            self._queue.put(_TRUNCATE)

    def _truncate(self) -> None:
        try:
            with self._checkpointing:  # under the store lock too: no commit races it
                result = self.store.backend.writer_pragma("wal_checkpoint(TRUNCATE)")
            if result and result[0]["busy"]:  # another process checkpoints or reads: a later batch retries
                log.debug("store: WAL truncation busy: %s", result[0])
        except sqlite3.Error as exc:  # another process holds it: a later batch tries again
            log.debug("store: WAL truncation skipped: %s", exc)
        self._truncating = False

    def _wal_pages(self) -> float:
        if not self.store.on_disk:
            return 0.0
        try:
            return self._wal.stat().st_size / 4096
        except OSError:
            return 0.0

    def _checkpoint(self) -> None:
        conn = sqlite3.connect(str(self.store.path), timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
        try:
            while not self._stopped.wait(CHECKPOINT_EVERY_S):
                try:
                    with self._checkpointing:
                        conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.Error as exc:  # busy or locked: the next round tries again
                    log.debug("store: checkpoint skipped: %s", exc)
        finally:
            conn.close()
