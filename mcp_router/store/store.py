"""The router database: the only module with the SQL of calls, signals, events, snapshots and budgets.

The backend is chosen by where the database is: a path means SQLite (the embedded default), a
`postgresql://` URL means PostgreSQL, shared by replicas on several machines. The SQL here runs on
both (`?` placeholders; the PostgreSQL connection translates them).

Every tool call is written in one transaction with its attempts, the per-arm counters it changes and
its router events, so the database is never half-updated. Router events are numbered from one
counter row inside that transaction: the row lock serialises writers, so `seq` order is commit order
and a reader that has seen `seq` n has seen everything before it.
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from mcp_router.store import messages
from mcp_router.store.records import (
    CallRecord,
    DuplicateFeedback,
    Event,
    QualityObs,
    UnknownCall,
)
from mcp_router.store.schema import MIGRATIONS, SCHEMA_VERSION, Connection
from mcp_router.store.sqlite import SqliteBackend

NO_ROUTER = {"judge"}  # tools recorded without a router: their calls make no router events
_EVENT_COLUMNS = (
    "seq, tool, kind, origin, provider, ts, status, latency_s, retry_after, x, reward, feat_version"
)


class Backend(Protocol):
    dialect: str
    display: str  # where the data is, for people: never a password
    on_disk: bool
    commits_on_loop: bool
    lock: threading.RLock

    def transaction(self, wait: bool = True) -> Any: ...

    def read(self) -> Any: ...

    def close(self) -> None: ...


def is_postgres_url(target: str | Path) -> bool:
    return str(target).startswith(("postgresql://", "postgres://"))


def open_backend(target: str | Path) -> Backend:
    if is_postgres_url(target):
        from mcp_router.store.postgres import PostgresBackend

        return PostgresBackend(str(target))
    if "://" in str(target):
        raise ValueError(
            f"unsupported database URL {str(target).split('://')[0]}://…; give a file path (SQLite) "
            "or a postgresql:// URL"
        )
    return SqliteBackend(target)


class Store:
    """Thread-safe access to the router database (tools and resources may run in worker threads)."""

    def __init__(self, target: str | Path) -> None:
        self.backend = open_backend(target)
        self.dialect = self.backend.dialect
        self.path = Path(target) if self.dialect == "sqlite" else None
        self.display = self.backend.display
        self.on_disk = self.backend.on_disk
        try:
            self._migrate()
        except BaseException:
            self.backend.close()
            raise

    @property
    def lock(self) -> threading.RLock:
        """Held by whoever uses the connection; the group writer takes it without waiting on the loop."""
        return self.backend.lock

    @contextmanager
    def transaction(self, wait: bool = True) -> Iterator[Connection]:
        """One write transaction that takes the write lock up front. Without `wait`, `StoreBusy`
        (and nothing written) when another connection holds that lock."""
        with self.backend.transaction(wait) as db:
            yield db

    def schema_version(self) -> int:
        with self.backend.read() as db:
            return self._version(db)

    @staticmethod
    def _version(db: Connection) -> int:
        if not _has_table(db, "meta"):
            return 0
        rows = db.query("SELECT value FROM meta WHERE key = 'schema_version'")
        return int(rows[0]["value"]) if rows else 0

    def _migrate(self) -> None:
        # a write transaction holds the write lock (BEGIN IMMEDIATE; PostgreSQL's advisory lock), so
        # replicas starting together migrate once: the others then find the schema current
        with self.transaction() as db:
            if not _has_table(db, "meta"):
                db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")
            current = self._version(db)
            if current > SCHEMA_VERSION:
                raise RuntimeError(
                    f"database {self.display} has schema {current}, newer than this mcp-router "
                    f"({SCHEMA_VERSION}); upgrade mcp-router"
                )
            for version in range(current + 1, SCHEMA_VERSION + 1):
                MIGRATIONS[version](db)
                db.execute(
                    "INSERT INTO meta (key, value) VALUES ('schema_version', ?) "
                    "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    (str(version),),
                )

    def close(self) -> None:
        self.backend.close()

    # -- writes ---------------------------------------------------------------------------------

    def record_call(self, record: CallRecord, origin: str = "") -> list[Event]:
        """Write one call on its own; the server batches calls through `GroupWriter` instead."""
        with self.transaction() as db:
            return self.write_call(db, record, origin)

    @staticmethod
    def write_call(db: Connection, record: CallRecord, origin: str = "") -> list[Event]:
        """The call, its attempts, the per-arm, per-scope and per-tool counters, the session's spend and the
        router events it makes, inside the caller's transaction. Returns those events, numbered."""
        served = record.served_by
        last_error = next((a.error for a in reversed(record.attempts) if a.error), None)
        db.execute(
            "INSERT INTO calls (call_id, tool, router, ts, status, provider, latency_s, attempts, request, "
            "decision, error, x, feat_version, sampled, session_id, cost_usd, scope) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
                record.scope,
            ),
        )
        db.execute(
            "INSERT INTO tool_totals (tool, calls, ok, cost_usd) VALUES (?, 1, ?, ?) "
            "ON CONFLICT (tool) DO UPDATE SET calls = tool_totals.calls + 1, "
            "ok = tool_totals.ok + excluded.ok, cost_usd = tool_totals.cost_usd + excluded.cost_usd",
            (record.tool, int(served is not None), record.cost_usd),
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
                    calls = arm_state.calls + 1, ok = arm_state.ok + excluded.ok,
                    failures = arm_state.failures + excluded.failures,
                    latency_sum_s = arm_state.latency_sum_s + excluded.latency_sum_s,
                    last_status = excluded.last_status,
                    last_error = COALESCE(excluded.last_error, arm_state.last_error),
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
            if record.scope is not None:
                Store._count_scope_attempt(db, record, attempt.provider, ok, attempt.latency_s)
        for obs in record.failure_obs:
            Store._insert_obs(db, obs, record.feat_version)
        if record.step is not None:
            Store._write_step(db, record, served)
        if record.tool in NO_ROUTER:
            return []
        return Store._append_events(db, origin, _call_events(record))

    @staticmethod
    def _count_scope_attempt(
        db: Connection, record: CallRecord, provider: str, ok: int, latency_s: float
    ) -> None:
        """One attempt in the totals of its call's scope (the collection searched) and arm."""
        db.execute(
            "INSERT INTO scope_arm_state (tool, scope, provider, calls, ok, failures, latency_sum_s) "
            "VALUES (?, ?, ?, 1, ?, ?, ?) ON CONFLICT (tool, scope, provider) DO UPDATE SET "
            "calls = scope_arm_state.calls + 1, ok = scope_arm_state.ok + excluded.ok, "
            "failures = scope_arm_state.failures + excluded.failures, "
            "latency_sum_s = scope_arm_state.latency_sum_s + excluded.latency_sum_s",
            (record.tool, record.scope, provider, ok, 1 - ok, latency_s),
        )

    @staticmethod
    def _write_step(db: Connection, record: CallRecord, served: str | None) -> None:
        """The step (its conversation as message hashes, each message stored once), the session's
        running spend, and the end of the call's budget reservation."""
        step = record.step
        assert step is not None
        row = _step_row(record, served, messages.hold(db, step.history))
        db.execute(
            f"INSERT INTO llm_steps ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
            list(row.values()),
        )
        db.execute(
            "INSERT INTO sessions (session_id, budget_usd, spent_usd, steps, last_model, updated_at) "
            "VALUES (?, ?, ?, 1, ?, ?) ON CONFLICT (session_id) DO UPDATE SET "
            "budget_usd = COALESCE(excluded.budget_usd, sessions.budget_usd), "
            "spent_usd = sessions.spent_usd + excluded.spent_usd, steps = sessions.steps + 1, "
            "last_model = COALESCE(excluded.last_model, sessions.last_model), "
            "updated_at = excluded.updated_at",
            (step.session_id, step.budget_usd, record.cost_usd, row["served_model"], record.ts),
        )
        if step.reservation_id is not None:
            Store.release(db, step.reservation_id)

    @staticmethod
    def _append_events(db: Connection, origin: str, events: list[dict[str, Any]]) -> list[Event]:
        """Number `events` from the counter row (its lock orders concurrent writers) and insert them."""
        if not events:
            return []
        last = db.query("UPDATE event_counter SET seq = seq + ? WHERE id = 1 RETURNING seq", (len(events),))
        first = int(last[0]["seq"]) - len(events) + 1
        numbered = [Event(seq=first + i, origin=origin, **e) for i, e in enumerate(events)]
        db.executemany(
            f"INSERT INTO events ({_EVENT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(*_event_head(e), _blob(e.x), e.reward, e.feat_version) for e in numbered],
        )
        return numbered

    @staticmethod
    def _served_call(db: Connection, call_id: str) -> dict[str, Any]:
        rows = db.query(
            "SELECT tool, provider, status, x, feat_version, scope FROM calls WHERE call_id = ?", [call_id]
        )
        if not rows or rows[0]["status"] != "ok":
            raise UnknownCall(call_id)
        return rows[0]

    @staticmethod
    def _fold_quality(db: Connection, call: dict[str, Any], delta: float, count: int, now: float) -> None:
        db.execute(
            "UPDATE arm_state SET quality_sum = quality_sum + ?, quality_n = quality_n + ?, updated_at = ? "
            "WHERE tool = ? AND provider = ?",
            (delta, count, now, call["tool"], call["provider"]),
        )
        if call["scope"] is not None:
            db.execute(
                "UPDATE scope_arm_state SET quality_sum = quality_sum + ?, quality_n = quality_n + ? "
                "WHERE tool = ? AND scope = ? AND provider = ?",
                (delta, count, call["tool"], call["scope"], call["provider"]),
            )

    def add_feedback(
        self, call_id: str, score: float, source: str, now: float, comment: str | None = None
    ) -> tuple[QualityObs, list[QualityObs]]:
        with self.transaction() as db:
            obs, replaced, _ = self.write_feedback(db, call_id, score, source, now, comment)
            return obs, replaced

    def write_feedback(
        self,
        db: Connection,
        call_id: str,
        score: float,
        source: str,
        now: float,
        comment: str | None = None,
        origin: str = "",
    ) -> tuple[QualityObs, list[QualityObs], list[Event]]:
        """Record explicit feedback for a served call. It replaces any judge or implicit signal of that
        call: those are marked superseded and returned, so the router can forget them."""
        call = self._served_call(db, call_id)
        if db.query("SELECT 1 FROM feedback WHERE call_id = ? AND source = ?", [call_id, source]):
            raise DuplicateFeedback(call_id)
        db.execute(
            "INSERT INTO feedback (call_id, source, score, comment, ts) VALUES (?, ?, ?, ?, ?)",
            (call_id, source, score, comment, now),
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
        # the order the router learns them in: the new reward, then the ones it replaces
        events = [_quality_event(obs, call["feat_version"])]
        events += [_quality_event(old, call["feat_version"], "forget") for old in replaced]
        return obs, replaced, self._append_events(db, origin, events)

    def add_signal(
        self, call_id: str, reward: float, source: str, now: float, cost_usd: float = 0.0
    ) -> QualityObs | None:
        with self.transaction() as db:
            return self.write_signal(db, call_id, reward, source, now, cost_usd)[0]

    def write_signal(
        self,
        db: Connection,
        call_id: str,
        reward: float,
        source: str,
        now: float,
        cost_usd: float = 0.0,
        origin: str = "",
    ) -> tuple[QualityObs | None, list[Event]]:
        """A judge or implicit quality signal for a served call; None when explicit feedback (which
        overrides them) or a signal of the same source is already there."""
        call = self._served_call(db, call_id)
        if db.query(
            "SELECT 1 FROM quality_obs WHERE call_id = ? AND source IN ('explicit', ?) AND provider = ?",
            [call_id, source, call["provider"]],
        ):
            return None, []
        obs = QualityObs(
            call["tool"], call["provider"], call_id, now, _vector(call["x"]), reward, source, cost_usd
        )
        self._fold_quality(db, call, reward, 1, now)
        self._insert_obs(db, obs, call["feat_version"])
        return obs, self._append_events(db, origin, [_quality_event(obs, call["feat_version"])])

    @staticmethod
    def _insert_obs(db: Connection, obs: QualityObs, feat_version: str | None) -> None:
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

    # -- router events and snapshots ---------------------------------------------------------------

    def events_after(self, seq: int, limit: int = 10_000, tool: str | None = None) -> list[Event]:
        """Events numbered above `seq`, in order (of one tool, or of all)."""
        where, params = ("seq > ?", [seq]) if tool is None else ("seq > ? AND tool = ?", [seq, tool])
        rows = self.query(
            f"SELECT {_EVENT_COLUMNS} FROM events WHERE {where} ORDER BY seq LIMIT ?", [*params, limit]
        )
        return [Event(**{**row, "x": _vector(row["x"])}) for row in rows]

    def last_seq(self) -> int:
        return int(self.query("SELECT seq FROM event_counter WHERE id = 1")[0]["seq"])

    def save_snapshots(self, snapshots: Sequence[tuple[str, str, int, bytes]], now: float) -> None:
        """(tool, fingerprint, seq, state) rows; each replaces the older snapshot of its key."""
        with self.transaction() as db:
            for tool, fingerprint, seq, state in snapshots:
                db.execute(
                    "INSERT INTO router_snapshots (tool, fingerprint, seq, created_at, state) "
                    "VALUES (?, ?, ?, ?, ?) ON CONFLICT (tool, fingerprint) DO UPDATE SET "
                    "seq = excluded.seq, created_at = excluded.created_at, state = excluded.state "
                    "WHERE excluded.seq >= router_snapshots.seq",
                    (tool, fingerprint, seq, now, state),
                )

    def snapshot(self, tool: str, fingerprint: str) -> tuple[int, bytes] | None:
        rows = self.query(
            "SELECT seq, state FROM router_snapshots WHERE tool = ? AND fingerprint = ?", [tool, fingerprint]
        )
        return (int(rows[0]["seq"]), bytes(rows[0]["state"])) if rows else None

    # -- sessions and budgets --------------------------------------------------------------------

    @staticmethod
    def reserve(
        db: Connection, session_id: str, budget_usd: float | None, amount_usd: float, now: float, ttl_s: float
    ) -> tuple[int | None, float, float]:
        """Reserve `amount_usd` of the session's budget if it fits: (reservation id or None, spent,
        reserved by other calls in flight). Inside a write transaction, so two processes cannot both
        take one remainder: the upsert locks the session's row until commit."""
        row = db.query(
            "INSERT INTO sessions (session_id, budget_usd, updated_at) VALUES (?, ?, ?) "
            "ON CONFLICT (session_id) DO UPDATE SET budget_usd = COALESCE(excluded.budget_usd, "
            "sessions.budget_usd) RETURNING budget_usd, spent_usd",
            (session_id, budget_usd, now),
        )[0]
        held = db.query(
            "SELECT COALESCE(SUM(amount_usd), 0) AS held FROM reservations "
            "WHERE session_id = ? AND expires_at > ?",
            (session_id, now),
        )[0]["held"]
        spent, budget = float(row["spent_usd"]), row["budget_usd"]
        if budget is not None and spent + held + amount_usd > budget + 1e-12:
            return None, spent, float(held)
        rows = db.query(
            "INSERT INTO reservations (session_id, amount_usd, expires_at) VALUES (?, ?, ?) RETURNING id",
            (session_id, amount_usd, now + ttl_s),
        )
        return int(rows[0]["id"]), spent, float(held)

    @staticmethod
    def release(db: Connection, reservation_id: int) -> None:
        """End a reservation: with the call's record, or at once when the call never ran."""
        db.execute("DELETE FROM reservations WHERE id = ?", (reservation_id,))

    def session(self, session_id: str) -> dict[str, Any] | None:
        rows = self.query(
            "SELECT budget_usd, spent_usd, steps, last_model FROM sessions WHERE session_id = ?", [session_id]
        )
        return rows[0] if rows else None

    def last_session_call(self, session_id: str, before_ts: float) -> dict[str, Any] | None:
        rows = self.query(
            "SELECT call_id, status, request FROM calls WHERE session_id = ? AND tool = 'llm_complete' "
            "AND ts < ? ORDER BY ts DESC, call_id DESC LIMIT 1",
            [session_id, before_ts],
        )
        if not rows:
            return None
        row = rows[0]
        row["request"] = json.loads(row["request"] or "{}")
        return row

    # -- reads ----------------------------------------------------------------------------------

    def query(self, sql: str, params: list[Any] | tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        with self.backend.read() as db:
            return db.query(sql, params)

    def arm_states(self, tool: str) -> dict[str, dict[str, Any]]:
        rows = self.query("SELECT * FROM arm_state WHERE tool = ? ORDER BY provider", [tool])
        return {row["provider"]: row for row in rows}

    def scope_arm_states(self, tool: str) -> dict[str, dict[str, dict[str, Any]]]:
        """Totals per scope (retrieve: the collection) and arm: scope -> provider -> row."""
        rows = self.query("SELECT * FROM scope_arm_state WHERE tool = ? ORDER BY scope, provider", [tool])
        states: dict[str, dict[str, dict[str, Any]]] = {}
        for row in rows:
            states.setdefault(row["scope"], {})[row["provider"]] = row
        return states

    def tool_call_count(self, tool: str) -> int:
        """Calls ever made through `tool`, pruned ones included."""
        rows = self.query("SELECT calls FROM tool_totals WHERE tool = ?", [tool])
        return int(rows[0]["calls"]) if rows else 0

    def recent_latencies(self, tool: str, provider: str, limit: int = 200) -> list[float]:
        rows = self.query(
            "SELECT latency_s FROM attempts WHERE tool = ? AND provider = ? ORDER BY id DESC LIMIT ?",
            [tool, provider, limit],
        )
        return [row["latency_s"] for row in rows]

    def recent_calls(self, limit: int = 20, tool: str | None = None) -> list[dict[str, Any]]:
        """The newest `limit` calls (of `tool` only, if given), newest first, with their attempts."""
        where, params = ("WHERE tool = ? ", [tool]) if tool else ("", [])
        with self.backend.read() as db:
            calls = db.query(
                f"SELECT * FROM calls {where}ORDER BY ts DESC, call_id DESC LIMIT ?", [*params, limit]
            )
            ids = [c["call_id"] for c in calls]
            attempts: dict[str, list[dict[str, Any]]] = {i: [] for i in ids}
            if ids:
                for row in db.query(
                    "SELECT call_id, n, provider, status, latency_s, error FROM attempts "
                    f"WHERE call_id IN ({', '.join('?' * len(ids))}) ORDER BY call_id, n",
                    ids,
                ):
                    attempts[row.pop("call_id")].append(row)
        for call in calls:
            call.pop("x")  # features are for the router, not for reading
            call["request"] = json.loads(call["request"] or "{}")
            call["decision"] = json.loads(call["decision"] or "{}")
            call["attempts"] = attempts[call["call_id"]]
        return calls

    def count(self, table: str) -> int:
        if not table.isidentifier():
            raise ValueError(f"not a table name: {table!r}")
        return int(self.query(f"SELECT COUNT(*) AS n FROM {table}")[0]["n"])


def _has_table(db: Connection, name: str) -> bool:
    if db.dialect == "sqlite":
        sql = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?"
    else:
        sql = (
            "SELECT 1 FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = ?"
        )
    return bool(db.query(sql, [name]))


def _event_head(e: Event) -> tuple[Any, ...]:
    return (e.seq, e.tool, e.kind, e.origin, e.provider, e.ts, e.status, e.latency_s, e.retry_after)


def _call_events(record: CallRecord) -> list[dict[str, Any]]:
    """A call's events in the order its router lives them: the decision, then each attempt followed by
    the quality 0 of that attempt if it failed on a sampled call."""
    events: list[dict[str, Any]] = [{"tool": record.tool, "kind": "call", "ts": record.ts}]
    failures = list(record.failure_obs)
    for attempt in record.attempts:
        events.append(
            {
                "tool": record.tool,
                "kind": "attempt",
                "provider": attempt.provider,
                "ts": attempt.ts_done,
                "status": attempt.status,
                "latency_s": attempt.latency_s,
                "retry_after": attempt.retry_after,
            }
        )
        if failures and failures[0].provider == attempt.provider and failures[0].ts == attempt.ts_done:
            events.append(_quality_event(failures.pop(0), record.feat_version))
    return events


def _quality_event(obs: QualityObs, feat_version: str | None, kind: str = "quality") -> dict[str, Any]:
    return {
        "tool": obs.tool,
        "kind": kind,
        "provider": obs.provider,
        "ts": obs.ts,
        "x": obs.x,
        "reward": obs.reward,
        "feat_version": feat_version if obs.x is not None else None,
    }


def _step_row(record: CallRecord, served: str | None, history: list[str]) -> dict[str, Any]:
    """The `llm_steps` row of a call's step; `history` is its messages' hashes (`messages.hold`)."""
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
        "history": json.dumps(history),
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
