"""The SQLite store: schema versioning, WAL, atomic call records, sharing one file between processes."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import threading
from dataclasses import replace
from pathlib import Path

import pytest

from mcp_router.store import (
    SCHEMA_VERSION,
    AttemptRecord,
    CallRecord,
    DuplicateFeedback,
    Store,
    UnknownCall,
    p95,
)


def record(call_id: str, *attempts: AttemptRecord, tool: str = "search") -> CallRecord:
    return CallRecord(
        call_id=call_id,
        tool=tool,
        router="round-robin",
        ts=1.0,
        request={"query": "q"},
        attempts=list(attempts),
    )


OK = AttemptRecord("a", "ok", 0.2)
FAIL = AttemptRecord("b", "unavailable", 0.1, "HTTP 503")


def test_new_database_is_versioned_and_in_wal_mode(tmp_path: Path) -> None:
    store = Store(tmp_path / "r.db")
    assert store.schema_version() == SCHEMA_VERSION
    assert store.query("PRAGMA journal_mode")[0]["journal_mode"] == "wal"
    store.close()
    reopened = Store(tmp_path / "r.db")  # migrations do not run twice
    assert reopened.schema_version() == SCHEMA_VERSION and reopened.count("calls") == 0


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    Store(tmp_path / "r.db").close()
    with sqlite3.connect(tmp_path / "r.db") as conn:
        conn.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(RuntimeError, match="upgrade mcp-router"):
        Store(tmp_path / "r.db")


def test_call_attempts_and_arm_state_are_written_together(tmp_path: Path) -> None:
    store = Store(tmp_path / "r.db")
    store.record_call(record("call_1", FAIL, OK))
    states = store.arm_states("search")
    assert (states["a"]["calls"], states["a"]["ok"]) == (1, 1)
    assert (states["b"]["failures"], states["b"]["last_error"]) == (1, "HTTP 503")
    (call,) = store.recent_calls()
    assert (
        call["status"] == "ok" and call["provider"] == "a" and call["attempts"][0]["status"] == "unavailable"
    )
    assert call["latency_s"] == pytest.approx(0.3)


def test_a_failed_write_leaves_nothing_behind(tmp_path: Path) -> None:
    store = Store(tmp_path / "r.db")
    store.record_call(record("call_1", OK))
    with pytest.raises(sqlite3.IntegrityError):
        store.record_call(record("call_1", OK, OK))  # same id: the whole transaction rolls back
    assert store.count("calls") == 1 and store.count("attempts") == 1
    assert store.arm_states("search")["a"]["calls"] == 1


def test_feedback_needs_a_served_call_and_comes_once(tmp_path: Path) -> None:
    store = Store(tmp_path / "r.db")
    store.record_call(record("call_ok", OK))
    store.record_call(record("call_failed", FAIL))
    obs, replaced = store.add_feedback("call_ok", 0.5, "explicit", now=2.0)
    assert (obs.tool, obs.provider, obs.reward, obs.ts, obs.source) == ("search", "a", 0.5, 2.0, "explicit")
    assert replaced == []
    with pytest.raises(DuplicateFeedback):
        store.add_feedback("call_ok", 0.9, "explicit", now=3.0)
    for missing in ("call_failed", "call_unknown"):
        with pytest.raises(UnknownCall):
            store.add_feedback(missing, 0.5, "explicit", now=3.0)
    assert store.arm_states("search")["a"]["quality_sum"] == 0.5
    assert store.count("quality_obs") == 1 and store.count("feedback") == 1


def test_two_connections_share_one_file(tmp_path: Path) -> None:
    stores = [Store(tmp_path / "r.db"), Store(tmp_path / "r.db")]

    def write(i: int) -> None:
        for n in range(50):
            stores[i].record_call(record(f"call_{i}_{n}", OK))

    threads = [threading.Thread(target=write, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert stores[0].count("calls") == 100 and stores[1].arm_states("search")["a"]["calls"] == 100


def test_p95() -> None:
    assert p95([]) is None
    assert p95([1.0]) == 1.0
    assert p95([float(i) for i in range(1, 101)]) == 95.0


def test_stats_command_prints_table(tmp_path: Path) -> None:
    store = Store(tmp_path / "r.db")
    store.record_call(record("call_1", AttemptRecord("bm25", "ok", 0.01), tool="retrieve"))
    store.close()
    done = subprocess.run(
        [sys.executable, "-m", "mcp_router", "stats", "--db", str(tmp_path / "r.db")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    line = next(x for x in done.stdout.splitlines() if x.startswith("retrieve") and " bm25 " in x)
    assert line.split()[2:5] == ["1", "1", "0"]


def test_explicit_feedback_supersedes_judge_and_implicit_signals(tmp_path: Path) -> None:
    store = Store(tmp_path / "r.db")
    store.record_call(record("call_1", OK))
    judged = store.add_signal("call_1", 0.75, "judge", now=2.0, cost_usd=0.001)
    assert judged is not None and judged.cost_usd == 0.001
    assert store.add_signal("call_1", 0.5, "judge", now=2.5) is None  # one judge verdict per call
    implicit = store.add_signal("call_1", 0.1, "implicit", now=3.0)
    assert implicit is not None
    _, replaced = store.add_feedback("call_1", 0.9, "explicit", now=4.0)
    assert [(o.source, o.reward, o.ts) for o in replaced] == [("judge", 0.75, 2.0), ("implicit", 0.1, 3.0)]
    assert store.add_signal("call_1", 0.3, "judge", now=5.0) is None  # explicit overrides later verdicts
    state = store.arm_states("search")["a"]
    assert (state["quality_n"], state["quality_sum"]) == (1, pytest.approx(0.9))
    events = [
        (e.seq, e.kind, e.reward, e.ts) for e in store.events_after(0) if e.kind not in ("call", "attempt")
    ]
    assert events == [  # numbered in commit order; a forget names the reward it takes back
        (3, "quality", 0.75, 2.0),
        (4, "quality", 0.1, 3.0),
        (5, "quality", 0.9, 4.0),
        (6, "forget", 0.75, 2.0),
        (7, "forget", 0.1, 3.0),
    ]


def test_a_schema_2_database_is_migrated_with_its_evidence_as_events(tmp_path: Path) -> None:
    """What an earlier mcp-router wrote (schema 2) keeps its calls, gains the event log in the order
    the old start-up replayed it (by time, attempts before quality), and the totals that survive pruning."""
    from mcp_router.store import MIGRATIONS
    from mcp_router.store.sqlite import SqliteConnection

    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:
        db = SqliteConnection(conn)
        db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")
        MIGRATIONS[1](db)
        MIGRATIONS[2](db)
        db.execute("INSERT INTO meta VALUES ('schema_version', '2')")
        for call_id, ts in (("call_b", 2.0), ("call_a", 1.0)):
            db.execute(
                "INSERT INTO calls (call_id, tool, status, provider, ts, cost_usd) "
                "VALUES (?, 'search', 'ok', 'a', ?, 0)",
                (call_id, ts),
            )
            db.execute(
                "INSERT INTO attempts (call_id, n, tool, provider, ts, status, latency_s, ts_done) "
                "VALUES (?, 1, 'search', 'a', ?, 'ok', 0.5, ?)",
                (call_id, ts, ts + 0.5),
            )
        db.execute(
            "INSERT INTO quality_obs (tool, provider, call_id, ts, reward, source, superseded_ts) "
            "VALUES ('search', 'a', 'call_a', 1.5, 0.25, 'judge', 3.0)"
        )
    store = Store(path)
    assert store.schema_version() == SCHEMA_VERSION == 5
    assert store.count("calls") == 2 and store.tool_call_count("search") == 2
    events = [(e.kind, e.ts) for e in store.events_after(0)]
    assert events == [
        ("call", 1.0),
        ("attempt", 1.5),  # call_a's attempt, stored second, comes first by time
        ("quality", 1.5),
        ("call", 2.0),
        ("attempt", 2.5),
        ("forget", 1.5),  # superseded at 3.0; names the reward's own time
    ]
    assert store.last_seq() == 6


def test_each_conversation_message_is_stored_once(tmp_path: Path) -> None:
    """A 20-turn session stores 40 messages, not the 420 its steps' histories add up to, and
    every step reads back the exact conversation it saw."""
    from mcp_router.store.model_log import ModelLog
    from tests.store_support import call

    store = Store(tmp_path / "r.db")
    conversation = [{"role": "system", "content": "Be brief."}]
    histories = []
    for turn in range(20):
        conversation.append({"role": "user", "content": f"question {turn} ✓"})
        histories.append(list(conversation))
        step = replace(call(0).step, session_id="long", turn=turn, history=histories[-1])
        store.record_call(replace(call(0), call_id=f"call_{turn}", ts=float(turn), step=step))
        conversation.append({"role": "assistant", "content": f"answer {turn}"})
    assert store.count("llm_messages") == 40  # the last answer was never part of a history
    assert sum(len(h) for h in histories) == 420
    stored = store.query("SELECT history FROM llm_steps ORDER BY step_id")
    assert all(len(json.loads(s["history"])[0]) == 32 for s in stored)  # hashes, not messages
    assert [s["history"] for s in ModelLog(store).steps_with_outcomes()] == histories
    refs = {r["content"]: r["refs"] for r in store.query("SELECT content, refs FROM llm_messages")}
    assert refs["Be brief."] == 20 and refs["question 19 ✓"] == 1
    store.close()


def test_a_schema_3_database_keeps_its_histories_and_cache(tmp_path: Path) -> None:
    """Migration 4 moves each step's whole conversation into `llm_messages` (once per message) and
    dates the embedding cache's existing rows as the oldest."""
    from mcp_router.store import MIGRATIONS
    from mcp_router.store.model_log import ModelLog
    from mcp_router.store.sqlite import SqliteConnection

    first = [{"role": "user", "content": "hi"}]
    second = [*first, {"role": "assistant", "content": "hello"}, {"role": "user", "content": "and?"}]
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:
        db = SqliteConnection(conn)
        db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")
        for version in (1, 2, 3):
            MIGRATIONS[version](db)
        db.execute("INSERT INTO meta VALUES ('schema_version', '3')")
        for turn, history in enumerate((first, second, None)):
            db.execute(
                "INSERT INTO calls (call_id, tool, status, ts) VALUES (?, 'llm_complete', 'ok', ?)",
                (f"call_{turn}", float(turn)),
            )
            db.execute(
                "INSERT INTO llm_steps (call_id, session_id, turn, ts, chosen_model, propensity, policy, "
                "stage, history) VALUES (?, 's', ?, ?, 'm', 1.0, 'only', 'prior', ?)",
                (f"call_{turn}", turn, float(turn), None if history is None else json.dumps(history)),
            )
        db.execute("INSERT INTO embedding_cache VALUES ('emb', 'h', 2, ?)", (b"\x00" * 8,))
    store = Store(path)
    assert store.schema_version() == SCHEMA_VERSION == 5
    assert [s["history"] for s in ModelLog(store).steps_with_outcomes()] == [first, second, None]
    assert {r["content"]: r["refs"] for r in store.query("SELECT content, refs FROM llm_messages")} == {
        "hi": 2,
        "hello": 1,
        "and?": 1,
    }
    assert store.query("SELECT text_hash, created_at FROM embedding_cache") == [
        {"text_hash": "h", "created_at": 0.0}
    ]
    store.close()


def test_a_schema_4_database_gets_per_collection_totals_from_the_calls_it_kept(tmp_path: Path) -> None:
    """Migration 5 gives each retrieve call its scope (the request's `collection`) and starts the
    per-collection totals from the kept attempts and live quality signals; other tools get none."""
    from mcp_router.store import MIGRATIONS
    from mcp_router.store.sqlite import SqliteConnection

    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:
        db = SqliteConnection(conn)
        db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")
        for version in (1, 2, 3, 4):
            MIGRATIONS[version](db)
        db.execute("INSERT INTO meta VALUES ('schema_version', '4')")
        calls = [
            ("call_1", "retrieve", {"query": "q", "collection": "docs"}, [("bm25", "ok", 0.5)]),
            (
                "call_2",
                "retrieve",
                {"query": "q", "collection": "docs"},
                [("dense", "timeout", 1.0), ("bm25", "ok", 0.25)],
            ),
            ("call_3", "retrieve", {"query": "q", "collection": "papers"}, [("qdrant", "ok", 0.125)]),
            ("call_4", "search", {"query": "q"}, [("wiki", "ok", 0.5)]),
        ]
        for call_id, tool, request, attempts in calls:
            db.execute(
                "INSERT INTO calls (call_id, tool, status, provider, ts, request) "
                "VALUES (?, ?, 'ok', ?, 1.0, ?)",
                (call_id, tool, attempts[-1][0], json.dumps(request)),
            )
            for n, (provider, status, latency) in enumerate(attempts, start=1):
                db.execute(
                    "INSERT INTO attempts (call_id, n, tool, provider, ts, status, latency_s) "
                    "VALUES (?, ?, ?, ?, 1.0, ?, ?)",
                    (call_id, n, tool, provider, status, latency),
                )
        for call_id, provider, reward, source, superseded in (
            ("call_1", "bm25", 0.5, "judge", 2.0),  # replaced by the explicit 1.0
            ("call_1", "bm25", 1.0, "explicit", None),
            ("call_2", "dense", 0.0, "failure", None),  # a failure signal is no quality total
            ("call_2", "bm25", 0.25, "judge", None),
        ):
            db.execute(
                "INSERT INTO quality_obs (tool, provider, call_id, ts, reward, source, superseded_ts) "
                "VALUES ('retrieve', ?, ?, 1.5, ?, ?, ?)",
                (provider, call_id, reward, source, superseded),
            )
    store = Store(path)
    assert store.schema_version() == SCHEMA_VERSION == 5
    scopes = {r["call_id"]: r["scope"] for r in store.query("SELECT call_id, scope FROM calls")}
    assert scopes == {"call_1": "docs", "call_2": "docs", "call_3": "papers", "call_4": None}
    totals = {
        scope: {
            arm: (r["calls"], r["ok"], r["failures"], r["latency_sum_s"], r["quality_sum"], r["quality_n"])
            for arm, r in arms.items()
        }
        for scope, arms in store.scope_arm_states("retrieve").items()
    }
    assert totals == {
        "docs": {"bm25": (2, 2, 0, 0.75, 1.25, 2), "dense": (1, 0, 1, 1.0, 0.0, 0)},
        "papers": {"qdrant": (1, 1, 0, 0.125, 0.0, 0)},
    }
    assert store.scope_arm_states("search") == {}
    store.close()


def test_retrieve_calls_and_their_quality_are_totalled_per_collection(tmp_path: Path) -> None:
    """Each attempt counts in its call's collection; a judge signal, then explicit feedback replacing
    it, move that collection's quality exactly as they move the arm's."""
    store = Store(tmp_path / "r.db")

    def retrieve(call_id: str, scope: str, *attempts: AttemptRecord) -> CallRecord:
        return replace(record(call_id, *attempts, tool="retrieve"), scope=scope)

    store.record_call(
        retrieve("call_1", "docs", AttemptRecord("dense", "timeout", 1.0), AttemptRecord("bm25", "ok", 0.5))
    )
    store.record_call(retrieve("call_2", "docs", AttemptRecord("bm25", "ok", 0.25)))
    store.record_call(retrieve("call_3", "papers", AttemptRecord("qdrant", "ok", 0.125)))
    store.record_call(record("call_4", OK))  # no scope: no per-collection row
    store.add_signal("call_1", 0.5, "judge", now=2.0)
    store.add_feedback("call_1", 0.75, "explicit", now=3.0)
    store.add_signal("call_3", 0.25, "judge", now=4.0)
    states = store.scope_arm_states("retrieve")
    assert {s: sorted(arms) for s, arms in states.items()} == {
        "docs": ["bm25", "dense"],
        "papers": ["qdrant"],
    }
    bm25 = states["docs"]["bm25"]
    assert (bm25["calls"], bm25["ok"], bm25["failures"], bm25["latency_sum_s"]) == (2, 2, 0, 0.75)
    assert (bm25["quality_sum"], bm25["quality_n"]) == (0.75, 1)
    dense = states["docs"]["dense"]
    assert (dense["calls"], dense["ok"], dense["failures"], dense["quality_n"]) == (1, 0, 1, 0)
    assert (states["papers"]["qdrant"]["quality_sum"], states["papers"]["qdrant"]["quality_n"]) == (0.25, 1)
    assert store.query("SELECT scope FROM calls WHERE call_id = 'call_3'") == [{"scope": "papers"}]
    assert store.scope_arm_states("search") == {}
    store.close()
