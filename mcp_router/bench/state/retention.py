"""Retention over time: calls written through the store, pruned to the newest `keep` after every
`every` of them (what a server's background pruner does), the database's size after each prune.

The file must stay bounded (freed pages are reused, no vacuum needed), and a prune must change no
total: the per-tool and per-arm counters `router://stats` shows are read before and after each one.
"""

from __future__ import annotations

import time
from typing import Any

from mcp_router.bench.state.history import History
from mcp_router.bench.state.progress import progress
from mcp_router.bench.state.targets import Target
from mcp_router.config import TOOLS
from mcp_router.store import Store
from mcp_router.store.retention import RetentionPolicy, checkpoint, prune

# Bounded: over the last quarter of the run the database grows by at most this share of what as
# many calls added before any prune. (PostgreSQL reuses a deleted row's space only after autovacuum
# has visited the table, so its plateau comes later and higher than SQLite's; both flatten.)
BOUNDED_SHARE = 0.1


def bench_retention(target: Target, calls: int, keep: int, every: int) -> dict[str, Any]:
    history = History(seed=7)
    policy = RetentionPolicy(max_calls=keep)
    store = target.open()
    rows: list[dict[str, Any]] = []
    totals_kept = True
    try:
        end_ts = time.time() - calls
        for written in range(every, calls + 1, every):
            history.write(store, every, end_ts + written)
            before = _totals(store)
            report = prune(store, policy, time.time())
            totals_kept &= before == _totals(store)
            if target.backend == "sqlite":
                checkpoint(store)  # the WAL folded into the file: the size is the file's
            rows.append(
                {
                    "written": written,
                    "calls_kept": store.count("calls"),
                    "events_kept": store.count("events"),
                    "db_bytes": target.size_bytes(),
                    "prune_s": round(report.seconds, 3),
                }
            )
            progress(f"{target.backend} retention: {written:,} written, {rows[-1]['db_bytes'] / 1e6:.0f} MB")
    finally:
        store.close()
    return {
        "calls": calls,
        "keep": keep,
        "every": every,
        "rows": rows,
        "totals_unchanged": totals_kept,
        **growth(rows, keep),
    }


def growth(rows: list[dict[str, Any]], keep: int) -> dict[str, Any]:
    """How much the last quarter of the run grew the database, against what as many calls grew it
    before any prune; `bounded` when that share is at most BOUNDED_SHARE."""
    unpruned = next((r for r in rows if r["written"] >= keep), None)
    last = rows[-1]
    start = next((r for r in rows if r["written"] >= last["written"] * 3 / 4), None)
    if unpruned is None or start is None or start is last or last["written"] <= keep:
        return {"last_quarter_growth_share": None, "bounded": None}
    per_call = unpruned["db_bytes"] / unpruned["written"]
    share = (last["db_bytes"] - start["db_bytes"]) / (per_call * (last["written"] - start["written"]))
    return {"last_quarter_growth_share": round(share, 4), "bounded": share <= BOUNDED_SHARE}


def _totals(store: Store) -> dict[str, Any]:
    return {tool: (store.tool_call_count(tool), store.arm_states(tool)) for tool in TOOLS}
