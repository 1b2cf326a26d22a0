"""The SQLite backend: one file in WAL mode, the zero-set-up default.

Several processes may share the file (a desktop host sometimes starts more than one server); WAL lets
them read while one writes, and `BEGIN IMMEDIATE` takes the write lock up front so two writes never
interleave. One connection per store, used under `lock` by whichever thread holds it.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from mcp_router.store.records import StoreBusy

BUSY_TIMEOUT_MS = 10_000  # how long a write waits for another process's write lock


class SqliteConnection:
    """The connection as the store's SQL sees it: `?` placeholders, rows as dicts."""

    dialect = "sqlite"

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        return self.conn.execute(sql, params).rowcount

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self.conn.executemany(sql, rows)

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        cursor = self.conn.execute(sql, params)
        columns = [d[0] for d in cursor.description or ()]
        return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]

    def tables(self) -> set[str]:
        return {r["name"] for r in self.query("SELECT name FROM sqlite_master WHERE type = 'table'")}


class SqliteBackend:
    dialect = "sqlite"
    commits_on_loop = True  # a WAL commit without fsync takes less than a thread hop

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.on_disk = str(path) != ":memory:"
        self.display = str(self.path)
        if self.on_disk:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(
            str(path), check_same_thread=False, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None
        )
        self.conn = SqliteConnection(conn)
        self.lock = threading.RLock()  # held by whoever uses the writing connection
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA foreign_keys = ON")
        self._reader = self.conn  # a file gets a connection of its own for reads, below
        self._read_lock = self.lock
        self._busy_ms = BUSY_TIMEOUT_MS  # the writing connection's busy_timeout, set only on a change
        self._wal = False
        if self.on_disk:
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()
            self._wal = bool(mode) and str(mode[0]).lower() == "wal"
            conn.execute("PRAGMA synchronous = NORMAL")
            # WAL readers never wait for a writer: with their own connection, a slow resource read
            # does not hold up the commits of tool calls, nor they the read
            reader = sqlite3.connect(
                str(path), check_same_thread=False, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None
            )
            reader.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            self._reader = SqliteConnection(reader)
            self._read_lock = threading.RLock()

    @contextmanager
    def transaction(self, wait: bool = True) -> Iterator[SqliteConnection]:
        """Without `wait`, `StoreBusy` (and nothing written) when another connection holds the lock."""
        with self.lock:
            self._begin(wait)
            try:
                yield self.conn
                self.conn.execute("COMMIT")
            except BaseException:
                with suppress(sqlite3.Error):  # a failed COMMIT may already have ended it
                    self.conn.execute("ROLLBACK")
                raise

    def _begin(self, wait: bool) -> None:
        """BEGIN IMMEDIATE, waiting for another connection's write lock or (without `wait`) not.

        Why the busy timeout stays 0 after a non-waiting BEGIN: every call's commit takes this path,
        and switching the timeout off and back on cost two statements (25-60 µs) per call. Once the
        write lock is held, nothing in a WAL transaction waits on a lock (a COMMIT appends to the
        WAL; auto-checkpoints are off), so only the next waiting use switches it back. In rollback
        journal mode a COMMIT does wait for readers, so there it is restored at once."""
        if wait:
            self._busy_timeout(BUSY_TIMEOUT_MS)
            self.conn.execute("BEGIN IMMEDIATE")
            return
        self._busy_timeout(0)
        try:
            self.conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise StoreBusy(str(exc)) from None
        finally:
            if not self._wal:
                self._busy_timeout(BUSY_TIMEOUT_MS)

    def _busy_timeout(self, ms: int) -> None:
        if self._busy_ms != ms:
            self.conn.execute(f"PRAGMA busy_timeout = {ms}")
            self._busy_ms = ms

    @contextmanager
    def read(self) -> Iterator[SqliteConnection]:
        with self._read_lock:
            yield self._reader

    def writer_pragma(self, pragma: str) -> list[dict[str, Any]]:
        """A pragma on the writing connection (e.g. `wal_autocheckpoint`, which is per connection), and
        the rows it returns (a checkpoint's `busy` flag, say)."""
        with self.lock:
            self._busy_timeout(BUSY_TIMEOUT_MS)  # a TRUNCATE checkpoint waits for readers
            return self.conn.query(f"PRAGMA {pragma}")

    def close(self) -> None:
        with self.lock, self._read_lock:
            self.conn.conn.close()
            if self._reader is not self.conn:
                self._reader.conn.close()
