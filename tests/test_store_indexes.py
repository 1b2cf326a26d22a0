"""Every lookup of the router database uses an index (SQLite's EXPLAIN QUERY PLAN).

`LOOKUPS` lists each query of store.py, messages.py, model_log.py, stats.py and retention.py that
reads, updates or deletes rows, with representative parameters. On a store with a few thousand rows,
none may `SCAN` a large table without an index, except the few that read a whole table on purpose
(each says why). A second test runs those modules' code and fails on any such statement missing from
the list, so a new query cannot skip this check. Inserts (with their primary-key upserts) are not
lookups; migrations run once.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mcp_router.store import Store
from mcp_router.store.model_log import ModelLog
from mcp_router.store.retention import RetentionPolicy, prune
from mcp_router.store.sqlite import SqliteConnection
from tests.store_support import T0, build, call_id

# Tables that grow with traffic; `sessions` is never pruned (it holds the budgets).
LARGE = {
    "calls",
    "attempts",
    "quality_obs",
    "feedback",
    "llm_steps",
    "llm_messages",
    "events",
    "embedding_cache",
    "reservations",
    "sessions",
}
CID = call_id(2998)  # a served search call with feedback
HASH = "0" * 32


@dataclass(frozen=True)
class Lookup:
    sql: str
    params: tuple[Any, ...] = ()
    reads_all: str | None = None  # the large table it reads whole on purpose, and why, as "table: why"


LOOKUPS: dict[str, Lookup] = {
    # -- store.py: writes of a call and its signals
    "Store._served_call": Lookup(
        "SELECT tool, provider, status, x, feat_version, scope FROM calls WHERE call_id = ?", (CID,)
    ),
    "Store._fold_quality": Lookup(
        "UPDATE arm_state SET quality_sum = quality_sum + ?, quality_n = quality_n + ?, updated_at = ? "
        "WHERE tool = ? AND provider = ?",
        (0.5, 1, T0, "search", "a"),
    ),
    "Store._fold_quality: the call's collection": Lookup(
        "UPDATE scope_arm_state SET quality_sum = quality_sum + ?, quality_n = quality_n + ? "
        "WHERE tool = ? AND scope = ? AND provider = ?",
        (0.5, 1, "retrieve", "docs", "bm25"),
    ),
    "Store._append_events": Lookup("UPDATE event_counter SET seq = seq + ? WHERE id = 1 RETURNING seq", (2,)),
    "Store._write_step, Store.release": Lookup("DELETE FROM reservations WHERE id = ?", (3,)),
    "Store.write_feedback: once per source": Lookup(
        "SELECT 1 FROM feedback WHERE call_id = ? AND source = ?", (CID, "explicit")
    ),
    "Store.write_feedback: the signals it replaces": Lookup(
        "SELECT * FROM quality_obs WHERE call_id = ? AND source IN ('judge', 'implicit') "
        "AND superseded_ts IS NULL ORDER BY id",
        (CID,),
    ),
    "Store.write_feedback: supersede them": Lookup(
        "UPDATE quality_obs SET superseded_ts = ? "
        "WHERE call_id = ? AND source IN ('judge', 'implicit') AND superseded_ts IS NULL",
        (T0, CID),
    ),
    "Store.write_signal": Lookup(
        "SELECT 1 FROM quality_obs WHERE call_id = ? AND source IN ('explicit', ?) AND provider = ?",
        (CID, "judge", "a"),
    ),
    # -- store.py: events, snapshots, sessions, budgets
    "Store.events_after": Lookup(
        "SELECT seq, tool, kind, origin, provider, ts, status, latency_s, retry_after, x, reward, "
        "feat_version FROM events WHERE seq > ? ORDER BY seq LIMIT ?",
        (7000, 10_000),
    ),
    "Store.events_after (one tool)": Lookup(
        "SELECT seq, tool, kind, origin, provider, ts, status, latency_s, retry_after, x, reward, "
        "feat_version FROM events WHERE seq > ? AND tool = ? ORDER BY seq LIMIT ?",
        (7000, "search", 10_000),
    ),
    "Store.last_seq": Lookup("SELECT seq FROM event_counter WHERE id = 1"),
    "Store.snapshot": Lookup(
        "SELECT seq, state FROM router_snapshots WHERE tool = ? AND fingerprint = ?", ("search", "config")
    ),
    "Store.reserve": Lookup(
        "SELECT COALESCE(SUM(amount_usd), 0) AS held FROM reservations "
        "WHERE session_id = ? AND expires_at > ?",
        ("s1", T0),
    ),
    "Store.session": Lookup(
        "SELECT budget_usd, spent_usd, steps, last_model FROM sessions WHERE session_id = ?", ("s1",)
    ),
    "Store.last_session_call": Lookup(
        "SELECT call_id, status, request FROM calls WHERE session_id = ? AND tool = 'llm_complete' "
        "AND ts < ? ORDER BY ts DESC, call_id DESC LIMIT 1",
        ("s100", T0 + 3000),
    ),
    # -- store.py: reads for router://stats and router://calls/recent
    "Store.arm_states": Lookup("SELECT * FROM arm_state WHERE tool = ? ORDER BY provider", ("search",)),
    "Store.tool_call_count": Lookup("SELECT calls FROM tool_totals WHERE tool = ?", ("search",)),
    "Store.scope_arm_states": Lookup(
        "SELECT * FROM scope_arm_state WHERE tool = ? ORDER BY scope, provider", ("retrieve",)
    ),
    "Store.recent_latencies": Lookup(
        "SELECT latency_s FROM attempts WHERE tool = ? AND provider = ? ORDER BY id DESC LIMIT ?",
        ("search", "a", 200),
    ),
    "Store.recent_calls": Lookup("SELECT * FROM calls ORDER BY ts DESC, call_id DESC LIMIT ?", (20,)),
    "Store.recent_calls: their attempts": Lookup(
        "SELECT call_id, n, provider, status, latency_s, error FROM attempts "
        "WHERE call_id IN (?, ?) ORDER BY call_id, n",
        (CID, call_id(2997)),
    ),
    "Store.count (retention: the embedding cache)": Lookup(
        "SELECT COUNT(*) AS n FROM embedding_cache",
        reads_all="embedding_cache: a count reads every row (from the smallest index)",
    ),
    # -- messages.py
    "messages.load": Lookup(
        "SELECT hash, role, content FROM llm_messages WHERE hash IN (?, ?)", (HASH, HASH[::-1])
    ),
    "messages.release: one reference fewer": Lookup(
        "UPDATE llm_messages SET refs = refs - ? WHERE hash = ?", (1, HASH)
    ),
    "messages.release: the unreferenced": Lookup(
        "DELETE FROM llm_messages WHERE hash IN (?, ?) AND refs <= 0", (HASH, HASH[::-1])
    ),
    # -- model_log.py
    "ModelLog.sessions": Lookup(
        "SELECT session_id, steps, spent_usd, budget_usd, updated_at AS last_ts FROM sessions "
        "ORDER BY updated_at DESC LIMIT ?",
        (50,),
    ),
    "ModelLog.steps_with_outcomes": Lookup(
        "SELECT s.*, o.reward AS outcome, o.source AS outcome_source FROM llm_steps s "
        "LEFT JOIN quality_obs o ON o.id = ( SELECT MAX(q.id) FROM quality_obs q "
        "WHERE q.call_id = s.call_id AND q.superseded_ts IS NULL AND q.source != 'failure' ) "
        "ORDER BY s.step_id",
        reads_all="llm_steps: training reads every step (its outcome is an indexed lookup per step)",
    ),
    "ModelLog.promote: retire": Lookup(
        "UPDATE llm_checkpoints SET status = 'retired' WHERE status = 'promoted'"
    ),
    "ModelLog.promote": Lookup(
        "UPDATE llm_checkpoints SET status = 'promoted' WHERE checkpoint_id = ?", ("ck1",)
    ),
    "ModelLog.set_status": Lookup(
        "UPDATE llm_checkpoints SET status = ? WHERE checkpoint_id = ?", ("rejected", "ck1")
    ),
    "ModelLog.promoted": Lookup(
        "SELECT * FROM llm_checkpoints WHERE status = 'promoted' ORDER BY created_at DESC LIMIT ?", (1,)
    ),
    "ModelLog.checkpoints": Lookup(
        "SELECT * FROM llm_checkpoints WHERE TRUE ORDER BY created_at DESC LIMIT ?", (10,)
    ),
    "ModelLog.get_many": Lookup(
        "SELECT text_hash, vec FROM embedding_cache WHERE embedder_id = ? AND text_hash IN (?, ?)",
        ("emb", "h001", "h002"),
    ),
    # -- router://models (stats.models_view)
    "steps and spend per model": Lookup(
        "SELECT chosen_model, COUNT(*) AS n, SUM(cost_usd) AS cost_usd FROM llm_steps GROUP BY chosen_model",
        reads_all="llm_steps: steps and spend per model, an aggregate over every retained step",
    ),
    # -- retention.py
    "retention: the newest call beyond max_calls": Lookup(
        "SELECT ts, call_id FROM calls ORDER BY ts DESC, call_id DESC LIMIT 1 OFFSET ?", (1000,)
    ),
    "retention: a batch of calls beyond max_calls": Lookup(
        "SELECT call_id FROM calls WHERE (ts, call_id) <= (?, ?) ORDER BY ts, call_id LIMIT ?",
        (T0 + 1999, call_id(1999), 500),
    ),
    "retention: a batch of calls beyond max_age_days": Lookup(
        "SELECT call_id FROM calls WHERE ts < ? ORDER BY ts, call_id LIMIT ?", (T0 + 2000, 500)
    ),
    "retention: the steps' histories": Lookup(
        "SELECT history FROM llm_steps WHERE call_id IN (?, ?)", (call_id(0), call_id(3))
    ),
    "retention: attempts": Lookup("DELETE FROM attempts WHERE call_id IN (?, ?)", (call_id(0), call_id(1))),
    "retention: feedback": Lookup("DELETE FROM feedback WHERE call_id IN (?, ?)", (call_id(0), call_id(1))),
    "retention: quality_obs": Lookup(
        "DELETE FROM quality_obs WHERE call_id IN (?, ?)", (call_id(0), call_id(1))
    ),
    "retention: llm_steps": Lookup("DELETE FROM llm_steps WHERE call_id IN (?, ?)", (call_id(0), call_id(3))),
    "retention: calls": Lookup("DELETE FROM calls WHERE call_id IN (?, ?)", (call_id(0), call_id(1))),
    "retention: the oldest call kept": Lookup("SELECT ts FROM calls ORDER BY ts, call_id LIMIT 1"),
    "retention: stale snapshots": Lookup(
        "DELETE FROM router_snapshots WHERE created_at < (SELECT MAX(created_at) FROM router_snapshots) - ?",
        (7 * 86_400,),
    ),
    "retention: the oldest snapshot": Lookup("SELECT MIN(seq) AS seq FROM router_snapshots"),
    "retention: the first event to keep": Lookup(
        "SELECT seq FROM events WHERE seq <= ? AND ts >= ? ORDER BY seq LIMIT 1", (6000, T0 + 2000)
    ),
    "retention: the first event": Lookup("SELECT MIN(seq) AS seq FROM events"),
    "retention: a batch of events": Lookup("DELETE FROM events WHERE seq > ? AND seq <= ?", (0, 500)),
    "retention: expired reservations": Lookup(
        "SELECT id FROM reservations WHERE expires_at <= ? LIMIT ?", (T0 + 3000, 500)
    ),
    "retention: delete them": Lookup("DELETE FROM reservations WHERE id IN (?, ?)", (1, 2)),
    "retention: the oldest cache rows": Lookup(
        "SELECT embedder_id, text_hash FROM embedding_cache ORDER BY created_at LIMIT ?", (500,)
    ),
    "retention: evict one": Lookup(
        "DELETE FROM embedding_cache WHERE embedder_id = ? AND text_hash = ?", ("emb", "h001")
    ),
}


def normal(sql: str) -> str:
    """Whitespace collapsed and `IN (?, ?, …)` lists of any length as one form."""
    sql = re.sub(r"\s+", " ", sql).strip()
    sql = re.sub(r"\(\s+", "( ", re.sub(r"\s+\)", " )", sql))
    return re.sub(r"IN \(\?(?:,\s*\?)*\)", "IN (?…)", sql)


def aliases(sql: str) -> dict[str, str]:
    """`FROM llm_steps s` → {"s": "llm_steps"}, so a plan's `SCAN s` names its table."""
    found = {t: t for t in re.findall(r"\b(?:FROM|JOIN|UPDATE|INTO)\s+(\w+)", sql)}
    keywords = {"WHERE", "ORDER", "GROUP", "LEFT", "JOIN", "ON", "LIMIT", "SET", "AS"}
    for table, alias in re.findall(r"\b(?:FROM|JOIN)\s+(\w+)\s+(?:AS\s+)?(\w+)", sql):
        if alias.upper() not in keywords:
            found[alias] = table
    return found


def full_scans(db: SqliteConnection, lookup: Lookup) -> list[str]:
    """The plan's lines that read a large table whole, without an index."""
    plan = [r["detail"] for r in db.query(f"EXPLAIN QUERY PLAN {lookup.sql}", lookup.params)]
    names = aliases(lookup.sql)
    allowed = lookup.reads_all.split(":")[0] if lookup.reads_all else None
    scans = []
    for line in plan:
        match = re.match(r"SCAN (\w+)", line)
        if not match or re.search(r"USING (COVERING )?INDEX|PRIMARY KEY", line):
            continue
        table = names.get(match.group(1), match.group(1))
        if table in LARGE and table != allowed:
            scans.append(line)
    return scans


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    store = Store(tmp_path_factory.mktemp("indexes") / "router.db")
    build(store)
    yield store
    store.close()


@pytest.mark.parametrize("analyzed", [False, True], ids=["fresh", "after ANALYZE"])
def test_every_lookup_uses_an_index(store: Store, analyzed: bool) -> None:
    with store.backend.read() as db:
        if analyzed:
            db.execute("ANALYZE")
        scans = {name: s for name, lookup in LOOKUPS.items() if (s := full_scans(db, lookup))}
    assert scans == {}


def test_the_list_holds_every_lookup_the_code_makes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run the code of the listed modules (writes, reads, pruning by age and by count) and record
    every statement; each one that reads, updates or deletes rows must be in LOOKUPS."""
    from mcp_router.config import load_config
    from mcp_router.stats import models_view

    store = Store(tmp_path / "router.db")
    ran: set[str] = set()
    for method in ("execute", "query", "executemany"):
        original = getattr(SqliteConnection, method)

        def record(self: SqliteConnection, sql: str, *args: Any, _original: Any = original) -> Any:
            ran.add(normal(sql))
            return _original(self, sql, *args)

        monkeypatch.setattr(SqliteConnection, method, record)
    build(store, 400, snapshot_after=300)
    with store.transaction() as db:
        held = Store.reserve(db, "s1", 1.0, 0.01, now=T0, ttl_s=60)[0]
        Store.release(db, held)
    log = ModelLog(store)
    log.register_checkpoint(
        {
            "checkpoint_id": "ck1",
            "path": "/x",
            "parent_id": None,
            "created_at": T0,
            "pool": [],
            "encoder_id": "e",
            "meta": {},
            "validation": {},
            "status": "candidate",
        }
    )
    log.promote("ck1")
    log.set_status("ck1", "rejected")
    log.promoted()
    log.get_many("emb", ["h001", "h002"])
    log.sessions()
    log.steps_with_outcomes()
    models_view(load_config().config, store, None)
    store.events_after(0, tool="search")
    store.snapshot("search", "config")
    store.session("s1")
    store.last_session_call("s1", T0 + 400)
    store.recent_calls()
    for tool in ("search", "retrieve"):
        store.arm_states(tool)
        store.scope_arm_states(tool)
        store.tool_call_count(tool)
        store.recent_latencies(tool, "a")
    prune(store, RetentionPolicy(max_age_days=(400 - 100) / 86_400, embedding_cache_rows=100), T0 + 400)
    prune(store, RetentionPolicy(max_calls=100), T0 + 400)
    store.close()

    lookups = [s for s in ran if s.split()[0] in ("SELECT", "UPDATE", "DELETE", "WITH")]
    listed = {normal(lookup.sql) for lookup in LOOKUPS.values()}
    assert sorted(s for s in lookups if s not in listed) == []
    assert len(lookups) > 40  # the run reached the code it is meant to
