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
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import sqlite_utils

SCHEMA_VERSION = 2
BUSY_TIMEOUT_MS = 10_000  # how long a write waits for another process's write lock


@dataclass(frozen=True)
class AttemptRecord:
    provider: str
    status: str  # ok | rate_limited | unavailable | bad_response | bad_request | timeout
    latency_s: float
    error: str | None = None
    ts_done: float = 0.0  # the router clock when the attempt completed: replays feed it back exactly
    retry_after: float | None = None


@dataclass(frozen=True)
class QualityObs:
    """One quality reward for one served call, with the query features the router learned it under."""

    tool: str
    provider: str
    call_id: str
    ts: float
    x: np.ndarray | None
    reward: float
    source: str  # explicit | judge | failure | implicit
    cost_usd: float = 0.0  # what obtaining the signal cost (the judge's tokens)


@dataclass(frozen=True)
class StepRecord:
    """One `llm_complete` decision of MTRouter: which model, why, with what chance, at what cost.

    Written with its call, in the same transaction, so a step never exists without the call (and
    the attempts) it describes. `history` is the message list the model saw, so `train --from-db`
    can re-embed it under any embedder."""

    session_id: str
    turn: int  # the number of assistant messages before this call
    chosen_model: str
    propensity: float
    policy: str  # greedy | explore | fallback | only
    stage: str  # prior | checkpoint
    checkpoint_id: str | None
    lam: float
    q_values: dict[str, float]
    excluded: dict[str, str]
    history: list[dict[str, str]]
    task: str | None
    obs_rules: list[str]  # error rules fired by the messages that opened this turn
    budget_usd: float | None
    spent_before_usd: float
    est_cost_usd: float
    max_tokens: int
    served_model: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None


@dataclass(frozen=True)
class CallRecord:
    call_id: str
    tool: str
    router: str
    ts: float
    request: dict[str, Any]
    attempts: list[AttemptRecord]
    decision: dict[str, Any] = field(default_factory=dict)
    x: np.ndarray | None = None  # query features, kept so later quality signals can train the router
    feat_version: str | None = None
    sampled: bool = False  # the router asked for this call's quality to be judged
    failure_obs: list[QualityObs] = field(default_factory=list)  # r = 0 for sampled failed attempts
    session_id: str | None = None
    cost_usd: float = 0.0
    step: StepRecord | None = None  # llm_complete's model decision

    @property
    def served_by(self) -> str | None:
        last = self.attempts[-1] if self.attempts else None
        return last.provider if last and last.status == "ok" else None

    @property
    def latency_s(self) -> float:
        return sum(a.latency_s for a in self.attempts)


class StoreBusy(sqlite3.OperationalError):
    """Another connection holds the write lock, and the caller chose not to wait for it."""


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
            "x": bytes,
            "feat_version": str,
            "sampled": int,
            "session_id": str,
            "cost_usd": float,
        },
        pk="call_id",
    )
    db["calls"].create_index(["tool", "ts"])
    db["calls"].create_index(["session_id", "ts"])
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
            "ts_done": float,
            "retry_after": float,
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
    db["quality_obs"].create(
        {
            "id": int,
            "tool": str,
            "provider": str,
            "call_id": str,
            "ts": float,
            "x": bytes,
            "feat_version": str,
            "reward": float,
            "source": str,
            "cost_usd": float,
            "superseded_ts": float,  # when explicit feedback replaced this judge/implicit signal
        },
        pk="id",
        foreign_keys=[("call_id", "calls", "call_id")],
    )
    db["quality_obs"].create_index(["tool", "ts"])


def _migration_2(db: sqlite_utils.Database) -> None:
    """MTRouter: llm_complete steps, trained checkpoints and the history-embedding cache."""
    db["llm_steps"].create(
        {
            "step_id": int,
            "call_id": str,
            "session_id": str,
            "turn": int,
            "ts": float,
            "chosen_model": str,
            "served_model": str,
            "propensity": float,
            "policy": str,
            "stage": str,
            "checkpoint_id": str,
            "lambda": float,
            "q_values": str,
            "excluded": str,
            "history": str,
            "task": str,
            "obs_rules": str,
            "budget_usd": float,
            "spent_before_usd": float,
            "est_cost_usd": float,
            "max_tokens": int,
            "prompt_tokens": int,
            "completion_tokens": int,
            "cost_usd": float,
            "latency_s": float,
            "status": str,
        },
        pk="step_id",
        foreign_keys=[("call_id", "calls", "call_id")],
        not_null={"call_id", "session_id", "turn", "ts", "chosen_model", "propensity", "policy", "stage"},
    )
    db["llm_steps"].create_index(["session_id", "turn"])
    db["llm_steps"].create_index(["call_id"], unique=True)
    db["llm_checkpoints"].create(
        {
            "checkpoint_id": str,
            "path": str,
            "parent_id": str,
            "created_at": float,
            "pool": str,
            "encoder_id": str,
            "meta": str,
            "validation": str,
            "status": str,  # candidate | promoted | rejected | retired
        },
        pk="checkpoint_id",
    )
    db["embedding_cache"].create(
        {"embedder_id": str, "text_hash": str, "dim": int, "vec": bytes}, pk=("embedder_id", "text_hash")
    )


MIGRATIONS: dict[int, Callable[[sqlite_utils.Database], None]] = {1: _migration_1, 2: _migration_2}


class Store:
    """Thread-safe access to the router database (tools and resources may run in worker threads)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.on_disk = str(path) != ":memory:"
        if self.on_disk:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(
            str(path), check_same_thread=False, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None
        )
        self.db = sqlite_utils.Database(conn)
        self._lock = threading.RLock()
        self.db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        self.db.execute("PRAGMA foreign_keys = ON")
        if self.on_disk:
            self.db.enable_wal()
            self.db.execute("PRAGMA synchronous = NORMAL")
        self._migrate()

    @property
    def lock(self) -> threading.RLock:
        """Held by whoever uses the connection; the group writer takes it without waiting on the loop."""
        return self._lock

    @contextmanager
    def transaction(self, wait: bool = True) -> Iterator[sqlite_utils.Database]:
        """BEGIN IMMEDIATE takes the write lock up front, so two processes never interleave a write.
        Without `wait`, `StoreBusy` (and nothing written) when another connection holds that lock."""
        with self._lock:
            self._begin(wait)
            try:
                yield self.db
                self.db.execute("COMMIT")
            except BaseException:
                with suppress(sqlite3.Error):  # a failed COMMIT may already have ended it
                    self.db.execute("ROLLBACK")
                raise

    def _begin(self, wait: bool) -> None:
        if wait:
            self.db.execute("BEGIN IMMEDIATE")
            return
        self.db.execute("PRAGMA busy_timeout = 0")
        try:
            self.db.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise StoreBusy(str(exc)) from None
        finally:
            self.db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")

    def schema_version(self) -> int:
        with self._lock:
            if not self.db["meta"].exists():
                return 0
            rows = list(self.db.query("SELECT value FROM meta WHERE key = 'schema_version'"))
            return int(rows[0]["value"]) if rows else 0

    def _migrate(self) -> None:
        with self.transaction() as db:
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
        """Write one call on its own; the server batches calls through `GroupWriter` instead."""
        with self.transaction() as db:
            self.write_call(db, record)

    @staticmethod
    def write_call(db: sqlite_utils.Database, record: CallRecord) -> None:
        """The call, its attempts, the per-arm counters and its failure observations, inside the
        caller's transaction. Plain SQL: sqlite-utils' table helpers introspect the schema per insert."""
        served = record.served_by
        last_error = next((a.error for a in reversed(record.attempts) if a.error), None)
        db.execute(
            "INSERT INTO calls (call_id, tool, router, ts, status, provider, latency_s, attempts, request, "
            "decision, error, x, feat_version, sampled, session_id, cost_usd) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                record.call_id,
                record.tool,
                record.router,
                record.ts,
                "ok" if served else "failed",
                served,
                record.latency_s,
                len(record.attempts),
                json.dumps(record.request),
                json.dumps(record.decision),
                None if served else last_error,
                _blob(record.x),
                record.feat_version,
                int(record.sampled),
                record.session_id,
                record.cost_usd,
            ),
        )
        for n, attempt in enumerate(record.attempts, start=1):
            db.execute(
                "INSERT INTO attempts (call_id, n, tool, provider, ts, status, latency_s, error, ts_done, "
                "retry_after) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    record.call_id,
                    n,
                    record.tool,
                    attempt.provider,
                    record.ts,
                    attempt.status,
                    attempt.latency_s,
                    attempt.error,
                    attempt.ts_done,
                    attempt.retry_after,
                ),
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
        for obs in record.failure_obs:
            Store._insert_obs(db, obs, record.feat_version)
        if record.step is not None:
            row = _step_row(record, served)
            db.execute(
                f"INSERT INTO llm_steps ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
                list(row.values()),
            )

    def _served_call(self, db: sqlite_utils.Database, call_id: str) -> dict[str, Any]:
        rows = list(
            db.query("SELECT tool, provider, status, x, feat_version FROM calls WHERE call_id = ?", [call_id])
        )
        if not rows or rows[0]["status"] != "ok":
            raise UnknownCall(call_id)
        return rows[0]

    def _fold_quality(
        self, db: sqlite_utils.Database, call: dict[str, Any], delta: float, count: int, now: float
    ) -> None:
        db.execute(
            "UPDATE arm_state SET quality_sum = quality_sum + ?, quality_n = quality_n + ?, updated_at = ? "
            "WHERE tool = ? AND provider = ?",
            (delta, count, now, call["tool"], call["provider"]),
        )

    def add_feedback(
        self, call_id: str, score: float, source: str, now: float, comment: str | None = None
    ) -> tuple[QualityObs, list[QualityObs]]:
        with self.transaction() as db:
            return self.write_feedback(db, call_id, score, source, now, comment)

    def write_feedback(
        self,
        db: sqlite_utils.Database,
        call_id: str,
        score: float,
        source: str,
        now: float,
        comment: str | None = None,
    ) -> tuple[QualityObs, list[QualityObs]]:
        """Record explicit feedback for a served call. It replaces any judge or implicit signal of that
        call: those are marked superseded and returned, so the router can forget them."""
        call = self._served_call(db, call_id)
        if list(db.query("SELECT 1 FROM feedback WHERE call_id = ? AND source = ?", [call_id, source])):
            raise DuplicateFeedback(call_id)
        db["feedback"].insert(
            {"call_id": call_id, "source": source, "score": score, "comment": comment, "ts": now}
        )
        replaced = [
            QualityObs(
                call["tool"],
                row["provider"],
                call_id,
                row["ts"],
                _vector(row["x"]),
                row["reward"],
                row["source"],
                row["cost_usd"] or 0.0,
            )
            for row in db.query(
                "SELECT * FROM quality_obs WHERE call_id = ? AND source IN ('judge', 'implicit') "
                "AND superseded_ts IS NULL ORDER BY id",
                [call_id],
            )
        ]
        db.execute(
            "UPDATE quality_obs SET superseded_ts = ? "
            "WHERE call_id = ? AND source IN ('judge', 'implicit') AND superseded_ts IS NULL",
            (now, call_id),
        )
        self._fold_quality(db, call, score - sum(o.reward for o in replaced), 1 - len(replaced), now)
        obs = QualityObs(call["tool"], call["provider"], call_id, now, _vector(call["x"]), score, source)
        self._insert_obs(db, obs, call["feat_version"])
        return obs, replaced

    def add_signal(
        self, call_id: str, reward: float, source: str, now: float, cost_usd: float = 0.0
    ) -> QualityObs | None:
        with self.transaction() as db:
            return self.write_signal(db, call_id, reward, source, now, cost_usd)

    def write_signal(
        self,
        db: sqlite_utils.Database,
        call_id: str,
        reward: float,
        source: str,
        now: float,
        cost_usd: float = 0.0,
    ) -> QualityObs | None:
        """A judge or implicit quality signal for a served call; None when explicit feedback (which
        overrides them) or a signal of the same source is already there."""
        call = self._served_call(db, call_id)
        if list(
            db.query(
                "SELECT 1 FROM quality_obs WHERE call_id = ? AND source IN ('explicit', ?) AND provider = ?",
                [call_id, source, call["provider"]],
            )
        ):
            return None
        obs = QualityObs(
            call["tool"], call["provider"], call_id, now, _vector(call["x"]), reward, source, cost_usd
        )
        self._fold_quality(db, call, reward, 1, now)
        self._insert_obs(db, obs, call["feat_version"])
        return obs

    def last_session_call(self, session_id: str, before_ts: float) -> dict[str, Any] | None:
        rows = self.query(
            "SELECT call_id, status, request FROM calls WHERE session_id = ? AND tool = 'llm_complete' "
            "AND ts < ? ORDER BY ts DESC, rowid DESC LIMIT 1",
            [session_id, before_ts],
        )
        if not rows:
            return None
        row = rows[0]
        row["request"] = json.loads(row["request"] or "{}")
        return row

    @staticmethod
    def _insert_obs(db: sqlite_utils.Database, obs: QualityObs, feat_version: str | None) -> None:
        db.execute(
            "INSERT INTO quality_obs (tool, provider, call_id, ts, x, feat_version, reward, source, "
            "cost_usd) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                obs.tool,
                obs.provider,
                obs.call_id,
                obs.ts,
                _blob(obs.x),
                feat_version,
                obs.reward,
                obs.source,
                obs.cost_usd,
            ),
        )

    def router_events(self, tool: str, feat_version: str | None) -> list[tuple[float, int, Any]]:
        """Everything a router of `tool` has learned from, in the order it happened: attempts (kind 0,
        AttemptRecord), quality observations made under the same feature version (kind 1) and their
        replacement by explicit feedback (kind 2). Replaying these into a fresh router rebuilds its
        state exactly."""
        attempts = self.query(
            "SELECT provider, status, latency_s, error, ts_done, retry_after FROM attempts WHERE tool = ? "
            "ORDER BY id",
            [tool],
        )
        observations = self.query(
            "SELECT provider, call_id, ts, x, reward, source, feat_version, cost_usd, superseded_ts "
            "FROM quality_obs WHERE tool = ? ORDER BY id",
            [tool],
        )
        events: list[tuple[float, int, Any]] = [
            (
                a["ts_done"],
                0,
                AttemptRecord(
                    a["provider"], a["status"], a["latency_s"], a["error"], a["ts_done"], a["retry_after"]
                ),
            )
            for a in attempts
        ]
        for o in observations:
            if o["feat_version"] != feat_version and o["x"] is not None:
                continue
            obs = QualityObs(
                tool,
                o["provider"],
                o["call_id"],
                o["ts"],
                _vector(o["x"]),
                o["reward"],
                o["source"],
                o["cost_usd"] or 0.0,
            )
            events.append((o["ts"], 1, obs))
            if o["superseded_ts"] is not None:  # kind 2: the router forgets it when explicit feedback came
                events.append((o["superseded_ts"], 2, obs))
        events.sort(key=lambda e: (e[0], e[1]))  # stable: same-time events keep their insertion order
        return events

    # -- reads ----------------------------------------------------------------------------------

    def query(self, sql: str, params: list[Any] | tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.db.query(sql, params))

    def arm_states(self, tool: str) -> dict[str, dict[str, Any]]:
        rows = self.query("SELECT * FROM arm_state WHERE tool = ? ORDER BY provider", [tool])
        return {row["provider"]: row for row in rows}

    def tool_call_count(self, tool: str) -> int:
        return int(self.query("SELECT COUNT(*) AS n FROM calls WHERE tool = ?", [tool])[0]["n"])

    def recent_latencies(self, tool: str, provider: str, limit: int = 200) -> list[float]:
        rows = self.query(
            "SELECT latency_s FROM attempts WHERE tool = ? AND provider = ? ORDER BY id DESC LIMIT ?",
            [tool, provider, limit],
        )
        return [row["latency_s"] for row in rows]

    def recent_calls(self, limit: int = 20) -> list[dict[str, Any]]:
        calls = self.query("SELECT * FROM calls ORDER BY ts DESC, rowid DESC LIMIT ?", [limit])
        for call in calls:
            call.pop("x")  # features are for the router, not for reading
            call["request"] = json.loads(call["request"] or "{}")
            call["decision"] = json.loads(call["decision"] or "{}")
            call["attempts"] = self.query(
                "SELECT n, provider, status, latency_s, error FROM attempts WHERE call_id = ? ORDER BY n",
                [call["call_id"]],
            )
        return calls

    def count(self, table: str) -> int:
        return int(self.query(f"SELECT COUNT(*) AS n FROM [{table}]")[0]["n"])


def _step_row(record: CallRecord, served: str | None) -> dict[str, Any]:
    step = record.step
    assert step is not None
    return {
        "call_id": record.call_id,
        "session_id": step.session_id,
        "turn": step.turn,
        "ts": record.ts,
        "chosen_model": step.chosen_model,
        "served_model": step.served_model if served else None,
        "propensity": step.propensity,
        "policy": step.policy,
        "stage": step.stage,
        "checkpoint_id": step.checkpoint_id,
        "lambda": step.lam,
        "q_values": json.dumps(step.q_values),
        "excluded": json.dumps(step.excluded),
        "history": json.dumps(step.history),
        "task": step.task,
        "obs_rules": json.dumps(step.obs_rules),
        "budget_usd": step.budget_usd,
        "spent_before_usd": step.spent_before_usd,
        "est_cost_usd": step.est_cost_usd,
        "max_tokens": step.max_tokens,
        "prompt_tokens": step.prompt_tokens,
        "completion_tokens": step.completion_tokens,
        "cost_usd": record.cost_usd,
        "latency_s": record.latency_s,
        "status": "ok" if served else "failed",
    }


def _blob(x: np.ndarray | None) -> bytes | None:
    """Feature vectors as little-endian float64 bytes: exact, compact, readable by any SQLite client."""
    return None if x is None else np.asarray(x, dtype="<f8").tobytes()


def _vector(blob: bytes | None) -> np.ndarray | None:
    return None if blob is None else np.frombuffer(blob, dtype="<f8").copy()


def p95(values: list[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(0.95 * len(ordered)) - 1)]
