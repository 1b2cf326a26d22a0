"""Retention: the router database keeps recent evidence, not every call ever made.

`prune` deletes the oldest calls beyond the policy (older than `max_age_days`, or beyond the newest
`max_calls`) with their attempts, feedback, quality signals and MTRouter steps, then the messages no
remaining step refers to. It works in small batches, each its own short write transaction, so a
server sharing the database keeps serving between them. What must survive is never touched: the
aggregates (`arm_state`, `scope_arm_state`, `tool_totals`, `sessions`) keep `router://stats` and
session budgets whole.

Router events go with the calls they came from: the prefix of the event log (in `seq` order) older
than the oldest call kept. A restart folds the events after its snapshot, so no event past the oldest
snapshot's `seq` is deleted. A snapshot that fell a week behind the newest one belongs to a
configuration no running process maintains (a running server refreshes all of its routers' snapshots
together, every minute it has new events); it is dropped first, so it does not pin the log forever,
and its configuration, if it returns, replays the retained events as any changed configuration does.
Expired budget reservations go too, and the embedding cache keeps its newest rows.

`keep_pruned` runs `prune` now and then in a worker thread, for a server's background task group.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import anyio

from mcp_router.store import messages
from mcp_router.store.schema import Connection
from mcp_router.store.store import Store

log = logging.getLogger("mcp_router.store")
DAY_S = 86_400.0
STALE_SNAPSHOT_S = 7 * DAY_S  # this far behind the newest snapshot, no process refreshes it any more
BATCH_PAUSE_S = 0.002  # between batches: the server's writer gets the write lock in between
FIRST_PRUNE_AFTER_S = 60.0  # a starting server warms up first
TABLES = (
    "calls",
    "attempts",
    "feedback",
    "quality_obs",
    "llm_steps",
    "llm_messages",
    "events",
    "router_snapshots",
    "reservations",
    "embedding_cache",
)


@dataclass(frozen=True)
class RetentionPolicy:
    """What to keep. Both call limits apply when both are set; None keeps calls of any age or number."""

    max_age_days: float | None = None
    max_calls: int | None = None
    embedding_cache_rows: int | None = 50_000

    def __post_init__(self) -> None:
        for name in ("max_age_days", "max_calls", "embedding_cache_rows"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise ValueError(f"retention {name} must be positive, not {value!r}")

    def describe(self) -> str:
        limits = []
        if self.max_age_days is not None:
            limits.append(f"younger than {self.max_age_days:g} days")
        if self.max_calls is not None:
            limits.append(f"the newest {self.max_calls}")
        cache = (
            "unbounded" if self.embedding_cache_rows is None else f"at most {self.embedding_cache_rows} rows"
        )
        return f"calls kept: {' and '.join(limits) or 'all'}; embedding cache: {cache}"


@dataclass
class PruneReport:
    removed: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TABLES, 0))
    batches: int = 0  # write transactions
    seconds: float = 0.0

    @property
    def total(self) -> int:
        return sum(self.removed.values())

    def summary(self) -> str:
        if not self.total:
            return f"nothing to remove ({self.seconds:.2f} s)"
        counts = ", ".join(f"{n} {table}" for table, n in self.removed.items() if n)
        return f"removed {counts} in {self.seconds:.2f} s, {self.batches} write transactions"


def prune(
    store: Store,
    policy: RetentionPolicy,
    now: float,
    batch: int = 500,
    stop: threading.Event | None = None,
) -> PruneReport:
    """Apply `policy` at time `now`, `batch` rows per write transaction. Setting `stop` ends it after
    the current batch; what was deleted stays deleted, and a later run goes on from there."""
    if batch < 1:
        raise ValueError(f"batch must be at least 1, not {batch}")
    pruner = _Pruner(store, batch, stop or threading.Event())
    started = time.monotonic()
    oldest_kept = pruner.calls(policy, now)
    if oldest_kept is not None:
        pruner.events(oldest_kept)
    pruner.reservations(now)
    if policy.embedding_cache_rows is not None:
        pruner.embedding_cache(policy.embedding_cache_rows)
    pruner.report.seconds = time.monotonic() - started
    return pruner.report


async def keep_pruned(
    store: Store,
    policy: RetentionPolicy,
    interval_s: float,
    first_after_s: float = FIRST_PRUNE_AFTER_S,
    clock: Callable[[], float] = time.time,
) -> None:
    """Prune every `interval_s` (the first time after `first_after_s`) in a worker thread, off the
    event loop; log what went. Cancelling it stops the running prune after its current batch."""
    stop = threading.Event()
    delay = min(first_after_s, interval_s)
    try:
        while True:
            await anyio.sleep(delay)
            delay = interval_s
            try:
                report = await anyio.to_thread.run_sync(
                    lambda: prune(store, policy, clock(), stop=stop), abandon_on_cancel=True
                )
            except Exception:  # the next round tries again; serving goes on either way
                log.warning("pruning the router database failed", exc_info=True)
                continue
            if report.total:
                log.info("router database: %s", report.summary())
    finally:
        stop.set()


class _Pruner:
    def __init__(self, store: Store, batch: int, stop: threading.Event) -> None:
        self.store = store
        self.batch = batch
        self.stop = stop
        self.report = PruneReport()

    def _more(self) -> bool:
        """Between batches: pause so other writers get the lock, and say whether to go on."""
        return not self.stop.wait(BATCH_PAUSE_S)

    def _count(self, table: str, n: int) -> None:
        self.report.removed[table] += n

    # -- calls and what hangs off them -------------------------------------------------------------

    def calls(self, policy: RetentionPolicy, now: float) -> float | None:
        """Delete the calls beyond the policy, oldest first; returns the time before which router
        events may go (the oldest call kept), or None when the policy keeps every call."""
        if policy.max_age_days is None and policy.max_calls is None:
            return None
        where, params = self._beyond(policy, now)
        while where and self._more():
            with self.store.transaction() as db:
                rows = db.query(
                    f"SELECT call_id FROM calls WHERE {where} ORDER BY ts, call_id LIMIT ?",
                    [*params, self.batch],
                )
                self._delete_calls(db, [r["call_id"] for r in rows])
            self.report.batches += 1
            if len(rows) < self.batch:
                break
        oldest = self.store.query("SELECT ts FROM calls ORDER BY ts, call_id LIMIT 1")
        if oldest:
            return float(oldest[0]["ts"])
        return None if policy.max_age_days is None else now - policy.max_age_days * DAY_S

    def _beyond(self, policy: RetentionPolicy, now: float) -> tuple[str, list[Any]]:
        """The calls to delete, as a condition on the (ts, call_id) order: the longer of the prefixes
        the two limits cut. Fixed before the first batch, so two processes pruning at once delete
        the same calls, and calls written meanwhile (the newest) are never among them."""
        cutoff = None if policy.max_age_days is None else now - policy.max_age_days * DAY_S
        newest_beyond = None
        if policy.max_calls is not None:
            rows = self.store.query(
                "SELECT ts, call_id FROM calls ORDER BY ts DESC, call_id DESC LIMIT 1 OFFSET ?",
                [policy.max_calls],
            )
            newest_beyond = rows[0] if rows else None
        if newest_beyond is not None and (cutoff is None or newest_beyond["ts"] >= cutoff):
            return "(ts, call_id) <= (?, ?)", [newest_beyond["ts"], newest_beyond["call_id"]]
        if cutoff is not None:
            return "ts < ?", [cutoff]
        return "", []

    def _delete_calls(self, db: Connection, call_ids: list[str]) -> None:
        """Children first (foreign keys), then the calls; the steps' messages lose a reference."""
        steps = _select_in(db, "SELECT history FROM llm_steps WHERE call_id IN ({})", call_ids)
        histories = [json.loads(s["history"]) for s in steps if s["history"]]
        for table in ("attempts", "feedback", "quality_obs", "llm_steps", "calls"):
            self._count(table, _delete_in(db, table, "call_id", call_ids))
        self._count("llm_messages", messages.release(db, histories))

    # -- router events ---------------------------------------------------------------------------------

    def events(self, before_ts: float) -> None:
        """Delete the prefix of the event log older than `before_ts`, up to the oldest snapshot."""
        if self.stop.is_set():
            return
        with self.store.transaction() as db:
            self._count(
                "router_snapshots",
                db.execute(
                    "DELETE FROM router_snapshots WHERE created_at < "
                    "(SELECT MAX(created_at) FROM router_snapshots) - ?",
                    [STALE_SNAPSHOT_S],
                ),
            )
            floor = db.query("SELECT MIN(seq) AS seq FROM router_snapshots")[0]["seq"]
        self.report.batches += 1
        limit = self.store.last_seq() if floor is None else int(floor)
        young = self.store.query(
            "SELECT seq FROM events WHERE seq <= ? AND ts >= ? ORDER BY seq LIMIT 1", [limit, before_ts]
        )
        end = int(young[0]["seq"]) - 1 if young else limit
        first = self.store.query("SELECT MIN(seq) AS seq FROM events")[0]["seq"]
        low = None if first is None else int(first) - 1
        while low is not None and low < end and self._more():
            high = min(low + self.batch, end)
            with self.store.transaction() as db:
                self._count(
                    "events", db.execute("DELETE FROM events WHERE seq > ? AND seq <= ?", [low, high])
                )
            self.report.batches += 1
            low = high

    # -- budgets and caches ----------------------------------------------------------------------

    def reservations(self, now: float) -> None:
        """Holds past their expiry no longer count against a budget (a crashed call never released
        its own)."""
        while self._more():
            with self.store.transaction() as db:
                rows = db.query(
                    "SELECT id FROM reservations WHERE expires_at <= ? LIMIT ?", [now, self.batch]
                )
                self._count("reservations", _delete_in(db, "reservations", "id", [r["id"] for r in rows]))
            self.report.batches += 1
            if len(rows) < self.batch:
                break

    def embedding_cache(self, max_rows: int) -> None:
        """Evict the oldest rows beyond `max_rows`. A miss only costs one embedding again, so two
        processes pruning at once may each evict the excess they counted."""
        excess = self.store.count("embedding_cache") - max_rows
        while excess > 0 and self._more():
            with self.store.transaction() as db:
                rows = db.query(
                    "SELECT embedder_id, text_hash FROM embedding_cache ORDER BY created_at LIMIT ?",
                    [min(excess, self.batch)],
                )
                db.executemany(
                    "DELETE FROM embedding_cache WHERE embedder_id = ? AND text_hash = ?",
                    [(r["embedder_id"], r["text_hash"]) for r in rows],
                )
            self._count("embedding_cache", len(rows))
            self.report.batches += 1
            excess = excess - len(rows) if rows else 0


def _select_in(db: Connection, sql: str, keys: list[Any]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for chunk in messages.chunks(keys):
        rows += db.query(sql.format(", ".join("?" * len(chunk))), chunk)
    return rows


def _delete_in(db: Connection, table: str, column: str, keys: list[Any]) -> int:
    deleted = 0
    for chunk in messages.chunks(keys):
        deleted += db.execute(f"DELETE FROM {table} WHERE {column} IN ({', '.join('?' * len(chunk))})", chunk)
    return deleted


def checkpoint(store: Store) -> None:
    """SQLite: copy the WAL (where a prune's deletes went) into the database file and empty it, so
    the file's size is the database's. Nothing to do elsewhere."""
    if store.dialect == "sqlite":
        store.backend.writer_pragma("wal_checkpoint(TRUNCATE)")  # as the writer does: under its lock


def vacuum(store: Store) -> None:
    """Give the space of deleted rows back to the file system and refresh the planner's statistics.

    SQLite: VACUUM rewrites the file (through the WAL), and a TRUNCATE checkpoint moves it into the
    database file and empties the WAL. PostgreSQL: VACUUM (ANALYZE) may not run in a transaction; the
    backend's read connections are in autocommit."""
    with store.backend.read() as db:
        if store.dialect == "sqlite":
            db.execute("VACUUM")
            db.query("PRAGMA wal_checkpoint(TRUNCATE)")
        else:
            db.execute("VACUUM (ANALYZE)")
