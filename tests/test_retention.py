"""Retention on SQLite: pruning keeps the newest calls whole, leaves no orphan, never changes the
totals, keeps every router event a restart needs, and bounds the embedding cache; `db prune` and
`db vacuum` shrink the file."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import anyio
import pytest

from mcp_router.store import Event, Store
from mcp_router.store.messages import message_hash
from mcp_router.store.model_log import ModelLog
from mcp_router.store.retention import TABLES, RetentionPolicy, keep_pruned, prune
from tests.store_support import T0, aggregates, build, call_id, history

N, KEEP = 3000, 1000
NOW = T0 + N  # prune's clock: just after the last call
CHILDREN = ("attempts", "feedback", "quality_obs", "llm_steps")


def rows_of(store: Store, table: str, ids: set[str]) -> list[dict[str, Any]]:
    order = "step_id" if table == "llm_steps" else "id"
    return [r for r in store.query(f"SELECT * FROM {table} ORDER BY {order}") if r["call_id"] in ids]


def plain(event: Event) -> dict[str, Any]:
    return {**asdict(event), "x": None if event.x is None else event.x.tolist()}


def counts(store: Store) -> dict[str, int]:
    return {table: store.count(table) for table in TABLES}


def referenced_messages(store: Store) -> dict[str, int]:
    """Each message hash and how many references the remaining steps hold to it."""
    steps = store.query("SELECT history FROM llm_steps")
    return dict(Counter(h for s in steps for h in json.loads(s["history"])))


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    store = Store(tmp_path / "router.db")
    yield store
    store.close()


def test_prune_keeps_the_newest_calls_whole_and_the_totals_unchanged(store: Store) -> None:
    built = build(store, N)
    kept = {call_id(i) for i in range(N - KEEP, N)}
    children = {table: rows_of(store, table, kept) for table in CHILDREN}
    totals = aggregates(store)
    steps = [s for s in ModelLog(store).steps_with_outcomes() if s["call_id"] in kept]
    events = store.events_after(0)
    before = counts(store)

    report = prune(store, RetentionPolicy(max_calls=KEEP, embedding_cache_rows=100), NOW, batch=200)

    # the newest KEEP calls, each with all its rows
    assert {r["call_id"] for r in store.query("SELECT call_id FROM calls")} == kept
    for table in CHILDREN:
        assert store.query(f"SELECT * FROM {table} ORDER BY 1") == children[table], table
    for table in CHILDREN:  # nothing orphaned
        orphans = f"SELECT COUNT(*) AS n FROM {table} WHERE call_id NOT IN (SELECT call_id FROM calls)"
        assert store.query(orphans)[0]["n"] == 0, table
    # every message a remaining step refers to, counted right; none that nobody refers to
    messages = {r["hash"]: r["refs"] for r in store.query("SELECT hash, refs FROM llm_messages")}
    assert messages == referenced_messages(store)
    assert message_hash(history(0, 0)[0]) in messages  # the system message all sessions share
    # the totals router://stats and the budgets read
    assert aggregates(store) == totals
    # the remaining steps read back with their conversations and outcomes intact
    assert ModelLog(store).steps_with_outcomes() == steps
    assert any(s["turn"] > 0 and s["outcome"] is not None for s in steps)
    # router events: a prefix up to the oldest call kept; everything after the snapshot is there
    first_kept = next(e.seq for e in events if e.ts >= T0 + N - KEEP)
    assert [plain(e) for e in store.events_after(0)] == [plain(e) for e in events if e.seq >= first_kept]
    assert first_kept <= built.snapshot_seq
    assert store.query("SELECT tool, fingerprint FROM router_snapshots ORDER BY tool") == [
        {"tool": t, "fingerprint": "config"} for t in ("llm_complete", "retrieve", "search")
    ]  # the configuration last saved eight days before the others is gone
    # expired reservations, the oldest cache rows
    assert store.count("reservations") == 2
    assert sorted(ModelLog(store).get_many("emb", [f"h{k:03d}" for k in range(150)])) == [
        f"h{k:03d}" for k in range(50, 150)
    ]
    # the report says what went
    after = counts(store)
    assert report.removed == {table: before[table] - after[table] for table in TABLES}
    assert report.removed["calls"] == N - KEEP and report.removed["llm_messages"] > 0
    assert report.batches > (N - KEEP) // 200 and report.seconds > 0
    assert "2000 calls" in report.summary()

    again = prune(store, RetentionPolicy(max_calls=KEEP, embedding_cache_rows=100), NOW)
    assert again.total == 0 and again.summary().startswith("nothing to remove")


def test_events_after_the_oldest_snapshot_are_never_deleted(store: Store) -> None:
    build(store, 600, snapshot_after=100)
    store.save_snapshots([("judge", "pinned", 40, b"s")], now=T0 + 150)  # a live, old snapshot
    events = store.events_after(0)
    prune(store, RetentionPolicy(max_calls=50), T0 + 600)
    assert store.count("calls") == 50
    assert [e.seq for e in store.events_after(0)] == [e.seq for e in events if e.seq > 40]

    # once no process refreshes it for a week, it no longer holds the log back
    store.save_snapshots([("judge", "later", store.last_seq(), b"s")], now=T0 + 150 + 8 * 86_400)
    prune(store, RetentionPolicy(max_calls=50), T0 + 600)
    oldest_call = store.query("SELECT MIN(ts) AS ts FROM calls")[0]["ts"]
    remaining = store.events_after(0)
    assert remaining[0].seq == next(e.seq for e in events if e.ts >= oldest_call)
    assert store.snapshot("judge", "pinned") is None


def test_age_limit_and_both_limits(store: Store) -> None:
    build(store, 300, snapshot_after=300)
    day = 86_400.0
    now = T0 + 2 * day  # calls 0..299 are about two days old
    report = prune(store, RetentionPolicy(max_age_days=(2 * day - 149.5) / day), now)
    assert report.removed["calls"] == 150 and store.count("calls") == 150
    assert store.query("SELECT MIN(ts) AS ts FROM calls")[0]["ts"] == T0 + 150
    # both limits: the one that keeps less wins, whichever it is
    prune(store, RetentionPolicy(max_age_days=1000, max_calls=100), now)
    assert store.count("calls") == 100
    prune(store, RetentionPolicy(max_age_days=(2 * day - 259.5) / day, max_calls=100), now)
    assert store.count("calls") == 40


def test_a_policy_without_call_limits_keeps_every_call(store: Store) -> None:
    build(store, 200, snapshot_after=200)
    before = counts(store)
    report = prune(store, RetentionPolicy(), T0 + 200)
    assert report.removed["reservations"] == 4 and report.removed["embedding_cache"] == 0
    assert {t: n for t, n in counts(store).items() if t != "reservations"} == {
        t: n for t, n in before.items() if t != "reservations"
    }


def test_a_stopped_prune_removes_nothing_more(store: Store) -> None:
    build(store, 200, snapshot_after=200)
    stop = threading.Event()
    stop.set()
    assert prune(store, RetentionPolicy(max_calls=10), T0 + 200, stop=stop).total == 0
    assert store.count("calls") == 200


def test_policy_limits_must_be_positive() -> None:
    for bad in ({"max_calls": 0}, {"max_age_days": -1.0}, {"embedding_cache_rows": 0}):
        with pytest.raises(ValueError, match="must be positive"):
            RetentionPolicy(**bad)


def test_keep_pruned_prunes_in_the_background(store: Store, caplog: pytest.LogCaptureFixture) -> None:
    build(store, 300, snapshot_after=300)

    async def main() -> None:
        async with anyio.create_task_group() as background:
            background.start_soon(keep_pruned, store, RetentionPolicy(max_calls=100), 0.05, 0.0)
            deadline = time.monotonic() + 10
            while store.count("calls") > 100 and time.monotonic() < deadline:
                await anyio.sleep(0.02)
            background.cancel_scope.cancel()

    with caplog.at_level(logging.INFO, logger="mcp_router.store"):
        anyio.run(main)
    assert store.count("calls") == 100
    assert any("router database: removed 200 calls" in r.getMessage() for r in caplog.records)


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mcp_router", *args], capture_output=True, text=True, timeout=120
    )


def test_db_prune_and_vacuum_commands_shrink_the_file(tmp_path: Path) -> None:
    db = tmp_path / "router.db"
    store = Store(db)
    build(store, N)
    store.query("PRAGMA wal_checkpoint(TRUNCATE)")
    store.close()
    size = db.stat().st_size

    pruned = run_cli("db", "prune", "--calls", str(KEEP), "--db", str(db))
    assert pruned.returncode == 0, pruned.stderr
    assert "calls kept: the newest 1000;" in pruned.stdout
    lines = {line.split()[0]: line.split()[1] for line in pruned.stdout.splitlines() if "removed" in line}
    assert lines["calls"] == str(N - KEEP) and int(lines["events"]) > 0
    assert "file: " in pruned.stdout

    vacuumed = run_cli("db", "vacuum", "--db", str(db))
    assert vacuumed.returncode == 0, vacuumed.stderr
    assert "vacuumed" in vacuumed.stdout and "file: " in vacuumed.stdout
    assert db.stat().st_size < size / 2
    reopened = Store(db)
    assert reopened.count("calls") == KEEP
    assert sum(reopened.tool_call_count(t) for t in ("search", "retrieve", "llm_complete", "judge")) == N
    reopened.close()

    bad = run_cli("db", "prune", "--days", "0", "--db", str(db))
    assert bad.returncode == 2 and "expected a positive float" in bad.stderr


TRAINING_CONFIG = """
auto_providers = false

[tools.llm_complete.mtrouter]
embedder = "hashing"

[[tools.llm_complete.providers]]
name = "small-local"
type = "openai"
model = "small"
base_url = "http://127.0.0.1:9/v1"
quality_prior = 0.3

[[tools.llm_complete.providers]]
name = "big-remote"
type = "openai"
model = "big"
base_url = "http://127.0.0.1:9/v1"
quality_prior = 0.8
"""


def test_train_from_db_works_on_what_remains(tmp_path: Path) -> None:
    """Sessions cut by pruning still make episodes: each remaining step has its whole conversation."""
    from mcp_router.config import load_config
    from mcp_router.model_training import train_from_db

    db = tmp_path / "router.db"
    store = Store(db)
    build(store, N)
    prune(store, RetentionPolicy(max_calls=KEEP), NOW)
    store.close()
    (tmp_path / "config.toml").write_text(TRAINING_CONFIG)
    report = train_from_db(load_config(tmp_path / "config.toml"), db)
    assert report["promoted"] and report["episodes"]["train"] > 10
