"""A router database with every kind of row, written fast (one transaction per part), for the
retention and index tests on SQLite and PostgreSQL.

Call i is at T0 + i. Every third call is an `llm_complete` step of a five-turn session (a shared
system message, then user and assistant turns, so sessions share messages and later turns repeat
earlier ones); the others are `search` calls (every fourth fails once first, with a failure signal)
and `retrieve` calls (of the collections `docs` and `notes`, alternately), and every 50th a `judge`
call (no router events). Served calls get explicit feedback (i % 7 == 0) or a judge verdict (i % 5 == 0).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from mcp_router.store import AttemptRecord, CallRecord, QualityObs, StepRecord, Store
from mcp_router.store.model_log import ModelLog

T0 = 1_700_000_000.0
SYSTEM = {"role": "system", "content": "You are terse."}
TURNS = 5


@dataclass(frozen=True)
class Built:
    snapshot_seq: int  # the live snapshots' seq (written after `snapshot_after` calls)
    calls: int


def call_id(i: int) -> str:
    return f"call_{i:05d}"


def history(session: int, turn: int) -> list[dict[str, str]]:
    messages = [SYSTEM, {"role": "user", "content": f"s{session} question 0"}]
    for t in range(turn):
        messages += [
            {"role": "assistant", "content": f"s{session} answer {t}"},
            {"role": "user", "content": f"s{session} question {t + 1}"},
        ]
    return messages


def call(i: int) -> CallRecord:
    ts = T0 + i
    x = np.array([1.0, float(i % 10), 0.5])
    if i % 50 == 49:
        return CallRecord(call_id(i), "judge", "", ts, {}, [AttemptRecord("j", "ok", 0.3, ts_done=ts + 0.3)])
    if i % 3 == 0:
        j = i // 3
        session, turn = j // TURNS, j % TURNS
        step = StepRecord(
            session_id=f"s{session}",
            turn=turn,
            chosen_model="small",
            propensity=0.9,
            policy="greedy",
            stage="prior",
            checkpoint_id=None,
            lam=1.0,
            q_values={"small": 0.4, "big": 0.3},
            excluded={},
            history=history(session, turn),
            task=None,
            obs_rules=[],
            budget_usd=1.0,
            spent_before_usd=0.001 * turn,
            est_cost_usd=0.002,
            max_tokens=64,
            served_model="small",
            prompt_tokens=10 + turn,
            completion_tokens=5,
        )
        attempts = [AttemptRecord("small-local", "ok", 0.4, ts_done=ts + 0.4)]
        return CallRecord(
            call_id(i),
            "llm_complete",
            "lqm",
            ts,
            {"turn": turn},
            attempts,
            session_id=f"s{session}",
            cost_usd=0.001,
            step=step,
        )
    if i % 3 == 1:
        attempts = [AttemptRecord("a", "ok", 0.2, ts_done=ts + 0.3)]
        failures = []
        if i % 4 == 1:
            attempts.insert(0, AttemptRecord("b", "unavailable", 0.1, "HTTP 503", ts_done=ts + 0.1))
            failures = [QualityObs("search", "b", call_id(i), ts + 0.1, x, 0.0, "failure")]
        return CallRecord(
            call_id(i),
            "search",
            "lqm",
            ts,
            {"query": f"q{i}"},
            attempts,
            x=x,
            feat_version="f1",
            sampled=bool(failures),
            failure_obs=failures,
        )
    attempts = [AttemptRecord("bm25", "ok", 0.05, ts_done=ts + 0.05)]
    collection = "docs" if i % 2 else "notes"
    return CallRecord(
        call_id(i),
        "retrieve",
        "lqm",
        ts,
        {"query": f"q{i}", "collection": collection},
        attempts,
        x=x,
        feat_version="f1",
        scope=collection,
    )


def write_calls(store: Store, start: int, stop: int) -> None:
    with store.transaction() as db:
        for i in range(start, stop):
            record = call(i)
            Store.write_call(db, record)
            if record.served_by is None or record.tool == "judge":
                continue
            if i % 7 == 0:
                store.write_feedback(db, record.call_id, 0.8, "explicit", now=record.ts + 0.5)
            elif i % 5 == 0:
                store.write_signal(db, record.call_id, 0.6, "judge", now=record.ts + 0.5, cost_usd=1e-4)


def build(store: Store, n: int = 3000, snapshot_after: int = 2500) -> Built:
    """`n` calls; after the first `snapshot_after`, the live routers' snapshots (and a stale one, a
    configuration last saved eight days before them); budget reservations, some expired; 150
    embedding cache rows in three writes of 50."""
    write_calls(store, 0, snapshot_after)
    seq = store.last_seq()
    live = T0 + snapshot_after
    store.save_snapshots([("search", "old-config", 5, b"old")], now=live - 8 * 86_400)
    store.save_snapshots([(t, "config", seq, b"state") for t in ("search", "retrieve", "llm_complete")], live)
    write_calls(store, snapshot_after, n)
    with store.transaction() as db:
        for k in range(6):  # expires at T0 + n - 3 + k: at T0 + n, four have expired
            Store.reserve(db, f"s{k}", None, 0.01, now=T0 + n - 63 + k, ttl_s=60)
    log = ModelLog(store)
    for part in range(3):
        log.put_many("emb", {f"h{part * 50 + k:03d}": np.full(4, k, dtype="<f4") for k in range(50)})
    return Built(snapshot_seq=seq, calls=n)


def aggregates(store: Store) -> dict[str, Any]:
    """What pruning must leave exactly as it was."""
    tools = ("search", "retrieve", "llm_complete", "judge")
    return {
        "arm_states": {t: store.arm_states(t) for t in tools},
        "scope_arm_states": {t: store.scope_arm_states(t) for t in tools},
        "tool_call_count": {t: store.tool_call_count(t) for t in tools},
        "tool_totals": store.query("SELECT * FROM tool_totals ORDER BY tool"),
        "sessions": store.query("SELECT * FROM sessions ORDER BY session_id"),
    }
