"""SQLite persistence through sqlite-utils: the only module that writes SQL.

One file, WAL mode, so several server processes (hosts sometimes start more than one) can share it.
Every tool call is written in one transaction together with its attempts and the per-arm counters
it changes, so the file is never half-updated and a restart reads back exactly what was served.
"""

from __future__ import annotations

import json
import math
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlite_utils

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class AttemptRecord:
    provider: str
    status: str  # ok | rate_limited | unavailable | bad_response | bad_request | timeout
    latency_s: float
    error: str | None = None


@dataclass(frozen=True)
class CallRecord:
    call_id: str
    tool: str
    router: str
    ts: float
    request: dict[str, Any]
    attempts: list[AttemptRecord]
    decision: dict[str, Any] = field(default_factory=dict)

    @property
    def served_by(self) -> str | None:
        last = self.attempts[-1] if self.attempts else None
        return last.provider if last and last.status == "ok" else None

    @property
    def latency_s(self) -> float:
        return sum(a.latency_s for a in self.attempts)


class UnknownCall(LookupError):
    pass


class DuplicateFeedback(ValueError):
    pass


def _migration_1(db: sqlite_utils.Database) -> None:
    db["calls"].create(
        {
            "call_id": str,
            "tool": str,
            "router": str,
            "ts": float,
            "status": str,
            "provider": str,
            "latency_s": float,
            "attempts": int,
            "request": str,
            "decision": str,
            "error": str,
        },
        pk="call_id",
    )
    db["calls"].create_index(["tool", "ts"])
    db["attempts"].create(
        {
            "id": int,
            "call_id": str,
            "n": int,
            "tool": str,
            "provider": str,
            "ts": float,
            "status": str,
            "latency_s": float,
            "error": str,
        },
        pk="id",
        foreign_keys=[("call_id", "calls", "call_id")],
    )
    db["attempts"].create_index(["tool", "provider", "id"])
    db["arm_state"].create(
        {
            "tool": str,
            "provider": str,
            "calls": int,
            "ok": int,
            "failures": int,
            "latency_sum_s": float,
            "quality_sum": float,
            "quality_n": int,
            "last_status": str,
            "last_error": str,
            "updated_at": float,
        },
        pk=("tool", "provider"),
        not_null={"calls", "ok", "failures", "latency_sum_s", "quality_sum", "quality_n"},
        defaults={
            "calls": 0,
            "ok": 0,
            "failures": 0,
            "latency_sum_s": 0.0,
            "quality_sum": 0.0,
            "quality_n": 0,
        },
    )
    db["feedback"].create(
        {"id": int, "call_id": str, "source": str, "score": float, "comment": str, "ts": float},
        pk="id",
        foreign_keys=[("call_id", "calls", "call_id")],
    )
    db["feedback"].create_index(["call_id", "source"], unique=True)


MIGRATIONS: dict[int, Callable[[sqlite_utils.Database], None]] = {1: _migration_1}


class Store:
    """Thread-safe access to the router database (tools and resources may run in worker threads)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if str(path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(str(path), check_same_thread=False, timeout=10.0, isolation_level=None)
        self.db = sqlite_utils.Database(conn)
        self._lock = threading.RLock()
        self.db.execute("PRAGMA busy_timeout = 10000")
        self.db.execute("PRAGMA foreign_keys = ON")
        if str(path) != ":memory:":
            self.db.enable_wal()
            self.db.execute("PRAGMA synchronous = NORMAL")
        self._migrate()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite_utils.Database]:
        """BEGIN IMMEDIATE takes the write lock up front, so two processes never interleave a write."""
        with self._lock:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                yield self.db
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            self.db.execute("COMMIT")

    def schema_version(self) -> int:
        with self._lock:
            if not self.db["meta"].exists():
                return 0
            rows = list(self.db.query("SELECT value FROM meta WHERE key = 'schema_version'"))
            return int(rows[0]["value"]) if rows else 0

    def _migrate(self) -> None:
        with self._transaction() as db:
            if not db["meta"].exists():
                db["meta"].create({"key": str, "value": str}, pk="key")
            current = self.schema_version()
            if current > SCHEMA_VERSION:
                raise RuntimeError(
                    f"database {self.path} has schema {current}, newer than this mcp-router "
                    f"({SCHEMA_VERSION}); upgrade mcp-router"
                )
            for version in range(current + 1, SCHEMA_VERSION + 1):
                MIGRATIONS[version](db)
                db["meta"].upsert({"key": "schema_version", "value": str(version)}, pk="key")

    def close(self) -> None:
        with self._lock:
            self.db.conn.close()

    # -- writes ---------------------------------------------------------------------------------

    def record_call(self, record: CallRecord) -> None:
        served = record.served_by
        last_error = next((a.error for a in reversed(record.attempts) if a.error), None)
        with self._transaction() as db:
            db["calls"].insert(
                {
                    "call_id": record.call_id,
                    "tool": record.tool,
                    "router": record.router,
                    "ts": record.ts,
                    "status": "ok" if served else "failed",
                    "provider": served,
                    "latency_s": record.latency_s,
                    "attempts": len(record.attempts),
                    "request": json.dumps(record.request),
                    "decision": json.dumps(record.decision),
                    "error": None if served else last_error,
                }
            )
            for n, attempt in enumerate(record.attempts, start=1):
                db["attempts"].insert(
                    {
                        "call_id": record.call_id,
                        "n": n,
                        "tool": record.tool,
                        "provider": attempt.provider,
                        "ts": record.ts,
                        "status": attempt.status,
                        "latency_s": attempt.latency_s,
                        "error": attempt.error,
                    }
                )
                ok = int(attempt.status == "ok")
                db.execute(
                    """
                    INSERT INTO arm_state (tool, provider, calls, ok, failures, latency_sum_s,
                                           last_status, last_error, updated_at)
                    VALUES (?, ?, 1, ?, ?, ?, ?, ?, ?)
                    ON CONFLICT (tool, provider) DO UPDATE SET
                        calls = calls + 1, ok = ok + excluded.ok, failures = failures + excluded.failures,
                        latency_sum_s = latency_sum_s + excluded.latency_sum_s,
                        last_status = excluded.last_status,
                        last_error = COALESCE(excluded.last_error, last_error),
                        updated_at = excluded.updated_at
                    """,
                    (
                        record.tool,
                        attempt.provider,
                        ok,
                        1 - ok,
                        attempt.latency_s,
                        attempt.status,
                        attempt.error,
                        record.ts,
                    ),
                )

    def add_feedback(
        self, call_id: str, score: float, source: str, comment: str | None = None
    ) -> dict[str, Any]:
        """Record a quality score for a served call and fold it into its arm's quality mean."""
        with self._transaction() as db:
            rows = list(db.query("SELECT tool, provider, status FROM calls WHERE call_id = ?", [call_id]))
            if not rows:
                raise UnknownCall(call_id)
            call = rows[0]
            if call["status"] != "ok":
                raise UnknownCall(call_id)
            if list(db.query("SELECT 1 FROM feedback WHERE call_id = ? AND source = ?", [call_id, source])):
                raise DuplicateFeedback(call_id)
            db["feedback"].insert(
                {"call_id": call_id, "source": source, "score": score, "comment": comment, "ts": time.time()}
            )
            db.execute(
                "UPDATE arm_state SET quality_sum = quality_sum + ?, quality_n = quality_n + 1, "
                "updated_at = ? "
                "WHERE tool = ? AND provider = ?",
                (score, time.time(), call["tool"], call["provider"]),
            )
            return {"tool": call["tool"], "provider": call["provider"]}

    # -- reads ----------------------------------------------------------------------------------

    def _query(self, sql: str, params: list[Any] | tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.db.query(sql, params))

    def arm_states(self, tool: str) -> dict[str, dict[str, Any]]:
        rows = self._query("SELECT * FROM arm_state WHERE tool = ? ORDER BY provider", [tool])
        return {row["provider"]: row for row in rows}

    def tool_call_count(self, tool: str) -> int:
        return int(self._query("SELECT COUNT(*) AS n FROM calls WHERE tool = ?", [tool])[0]["n"])

    def recent_latencies(self, tool: str, provider: str, limit: int = 200) -> list[float]:
        rows = self._query(
            "SELECT latency_s FROM attempts WHERE tool = ? AND provider = ? ORDER BY id DESC LIMIT ?",
            [tool, provider, limit],
        )
        return [row["latency_s"] for row in rows]

    def recent_calls(self, limit: int = 20) -> list[dict[str, Any]]:
        calls = self._query("SELECT * FROM calls ORDER BY ts DESC, rowid DESC LIMIT ?", [limit])
        for call in calls:
            call["request"] = json.loads(call["request"] or "{}")
            call["decision"] = json.loads(call["decision"] or "{}")
            call["attempts"] = self._query(
                "SELECT n, provider, status, latency_s, error FROM attempts WHERE call_id = ? ORDER BY n",
                [call["call_id"]],
            )
        return calls

    def count(self, table: str) -> int:
        return int(self._query(f"SELECT COUNT(*) AS n FROM [{table}]")[0]["n"])


def p95(values: list[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(0.95 * len(ordered)) - 1)]
