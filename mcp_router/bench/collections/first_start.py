"""Part 1, the first start: a server on the folder with an empty index folder, called all along.

Once initialized the server is asked for a `retrieve` every `call_every_s` (each call in a task of
its own, so one that waits does not delay the next), with a different SciFact query each time, while
`router://collections` is read every `poll_every_s`. It stops `calls_after_dense` calls after the
dense view is seen ready. Each call is filed by when it was sent: before BM25 was published, while
only BM25 was, or after dense was (by the views' `built_at` stamps, which the polling would blur),
so the table says which arm served what while the index was built.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import anyio

from mcp_router.bench.collections.params import Params
from mcp_router.bench.collections.progress import progress
from mcp_router.bench.collections.server import Call, Session, retrieve, started
from mcp_router.bench.collections.setting import ARMS, Workspace
from mcp_router.bench.collections.watch import Watch, watch_until

SLOW_S = 1.0  # a call slower than this is listed: a ranking on a built index answers in milliseconds
GROUPS = ("before_lexical", "lexical_only", "after_dense")


async def bench_first_start(ws: Workspace, queries: list[str], params: Params) -> dict[str, Any]:
    progress(f"first start: {', '.join(ARMS)} on an empty index folder")
    watch = Watch()
    async with started(ws, ARMS, "first-start") as session:
        progress(f"initialized {session.initialized_s} s after spawn; calling every {params.call_every_s} s")
        stop = anyio.Event()
        calls: list[Call] = []
        async with anyio.create_task_group() as group:
            group.start_soon(watch_until, session, watch, params.poll_every_s, stop, progress)
            await call_until_dense(session, queries, params, watch, calls)
            stop.set()
    calls.sort(key=lambda c: c.sent_s)
    result = summary(calls, watch, session.initialized_s)
    progress(
        f"first start: BM25 built {result['lexical_built_s']} s, dense built {result['dense_built_s']} s; "
        f"{len(calls)} calls, {result['lost']} lost, {result['errors']} errors, "
        f"max latency {result['max_latency_s']} s"
    )
    return result


async def call_until_dense(
    session: Session, queries: list[str], params: Params, watch: Watch, calls: list[Call]
) -> None:
    """Launch a call every `call_every_s` until `calls_after_dense` were launched after dense was
    seen ready (or the limit passed), then wait for every call to be answered."""

    async def one(number: int) -> None:
        calls.append(await retrieve(session, queries[number % len(queries)], number))

    after_dense = 0
    number = 0
    due = session.since()
    async with anyio.create_task_group() as group:
        while after_dense < params.calls_after_dense and session.since() < params.first_start_limit_s:
            after_dense += watch.dense_ready_s is not None
            group.start_soon(one, number)
            number += 1
            due += params.call_every_s
            await anyio.sleep(max(0.0, due - session.since()))
    if after_dense < params.calls_after_dense:
        progress(f"dense not ready after {params.first_start_limit_s:.0f} s: stopped calling")


def group_of(call: Call, watch: Watch) -> str:
    """When the call was sent, against when the views were published (built, else seen ready)."""
    lexical, dense = watch.published_s("lexical"), watch.published_s("dense")
    if lexical is None or call.sent_s < lexical:
        return "before_lexical"
    if dense is None or call.sent_s < dense:
        return "lexical_only"
    return "after_dense"


def outcome(call: Call) -> str:
    return call.arm or ("lost" if call.lost else "error")


def summary(calls: list[Call], watch: Watch, initialized_s: float) -> dict[str, Any]:
    """The times, the calls by group and serving arm, and the calls worth a look."""
    ok = [c for c in calls if c.ok]
    latencies = [c.latency_s for c in calls if c.latency_s is not None]
    groups: dict[str, Any] = {}
    for name in GROUPS:
        members = [c for c in calls if group_of(c, watch) == name]
        groups[name] = {
            "calls": len(members),
            "by_outcome": dict(Counter(outcome(c) for c in members)),
            "max_latency_s": max((c.latency_s or 0.0 for c in members), default=None),
        }
    while_indexing = [c for c in calls if group_of(c, watch) != "after_dense"]
    first_ok = min(ok, key=lambda c: c.answered_s or 0.0) if ok else None
    dense, embedding = watch.published_s("dense"), watch.embedding_seen_s
    odd = [c for c in calls if (c.latency_s or 0) > SLOW_S or c.fallbacks or c.error]
    return {
        "initialized_s": initialized_s,
        "first_ok_s": first_ok.answered_s if first_ok else None,
        "first_ok_arm": first_ok.arm if first_ok else None,
        "lexical_ready_s": watch.lexical_ready_s,
        "dense_ready_s": watch.dense_ready_s,
        "lexical_built_s": watch.built_s.get("lexical"),
        "dense_built_s": watch.built_s.get("dense"),
        "files": (watch.last or {}).get("files"),
        "documents": (watch.last or {}).get("documents"),
        "passages_embedded": watch.to_embed,
        "embedding_passages_per_s": (
            round(watch.to_embed / (dense - embedding), 1)
            if dense and embedding and dense > embedding
            else None
        ),
        "calls_made": len(calls),
        "answered": sum(not c.lost for c in calls),
        "lost": sum(c.lost for c in calls),
        "errors": sum(c.error is not None and not c.lost for c in calls),
        "all_answered": all(not c.lost for c in calls),
        "max_latency_s": max(latencies, default=None),
        "while_indexing_by_outcome": dict(Counter(outcome(c) for c in while_indexing)),
        "groups": groups,
        "slow_or_fell_back": [c.to_json() for c in odd],
        "calls": [c.to_json() for c in calls],
        "watch": watch.to_json(),
    }
