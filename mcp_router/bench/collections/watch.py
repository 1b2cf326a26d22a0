"""Reading `router://collections` while a server indexes: when each view was published, and the
indexer's phases as they went by.

A view has two times, both in seconds since the spawn: `*_ready_s`, the first read that showed it
(late by up to one polling period and the read's own latency, also kept: a server that answers a
resource read slowly while it embeds is itself a finding), and `*_built_s`, its `built_at` stamp
on the benchmark's clock, when the view was built after the spawn (a view loaded from disk carries
the time it was saved, from before the spawn: then there is no built time of this server).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import anyio

from mcp_router.bench.collections.server import Session, collection, ready

PROGRESS_EVERY_S = 15.0
VIEWS = ("lexical", "dense")


@dataclass
class Watch:
    ready_s: dict[str, float] = field(default_factory=dict)  # view -> first read showing it ready
    built_s: dict[str, float] = field(default_factory=dict)  # view -> its built_at, when after the spawn
    embedding_seen_s: float | None = None  # the first read in phase "embedding"
    to_embed: int = 0  # the most passages a read said were to embed
    phases: list[dict[str, Any]] = field(default_factory=list)  # each change of phase, when seen
    reads: int = 0
    read_errors: list[str] = field(default_factory=list)
    slowest_read_s: float = 0.0
    last: dict[str, Any] | None = None  # the entry the last successful read returned

    @property
    def lexical_ready_s(self) -> float | None:
        return self.ready_s.get("lexical")

    @property
    def dense_ready_s(self) -> float | None:
        return self.ready_s.get("dense")

    def published_s(self, view: str) -> float | None:
        """When `view` became available: its build time if this server built it, else when seen."""
        return self.built_s.get(view, self.ready_s.get(view))

    def see(self, t: float, entry: dict[str, Any], spawned_at: float) -> bool:
        """Record one read at `t` s since the spawn; True when the phase changed."""
        for view in VIEWS:
            if view not in self.ready_s and ready(entry, view):
                self.ready_s[view] = t
                built = entry[view].get("built_at")
                if built is not None and built >= spawned_at:
                    self.built_s[view] = round(built - spawned_at, 3)
        indexing = entry.get("indexing") or {}
        phase = indexing.get("phase")
        self.to_embed = max(self.to_embed, int(indexing.get("to_embed") or 0))
        if phase == "embedding" and self.embedding_seen_s is None:
            self.embedding_seen_s = t
        if self.phases and self.phases[-1]["phase"] == phase:
            return False
        change = {
            "t_s": t,
            "phase": phase,
            "embedded": indexing.get("embedded"),
            "to_embed": indexing.get("to_embed"),
        }
        self.phases.append(change)
        return True

    def to_json(self) -> dict[str, Any]:
        return {
            "ready_s": self.ready_s,
            "built_s": self.built_s,
            "embedding_seen_s": self.embedding_seen_s,
            "to_embed": self.to_embed,
            "reads": self.reads,
            "read_errors": self.read_errors[:5],
            "read_error_count": len(self.read_errors),
            "slowest_read_s": round(self.slowest_read_s, 3),
            "phases": self.phases,
            "last": self.last,
        }


async def read_once(session: Session, watch: Watch) -> dict[str, Any] | None:
    """One read into `watch`; None (and the error kept) if it failed. The first read must succeed:
    a server without the resource cannot be benchmarked, and waiting would not change that."""
    started = time.perf_counter()
    try:
        entry = await collection(session)
    except Exception as exc:
        if watch.reads == 0:
            raise RuntimeError(f"reading router://collections failed: {type(exc).__name__}: {exc}") from exc
        watch.read_errors.append(f"{session.since():.1f}s {type(exc).__name__}: {exc}"[:300])
        return None
    watch.reads += 1
    watch.slowest_read_s = max(watch.slowest_read_s, time.perf_counter() - started)
    watch.last = entry
    return entry


async def watch_until(
    session: Session, watch: Watch, every_s: float, stop: anyio.Event, report: Any = None
) -> None:
    """Read the resource every `every_s` until `stop` is set; `report(line)` on each phase change and
    every `PROGRESS_EVERY_S` meanwhile."""
    last_report = -PROGRESS_EVERY_S
    while not stop.is_set():
        entry = await read_once(session, watch)
        t = round(session.since(), 3)
        if entry is not None:
            changed = watch.see(t, entry, session.spawned_at)
            if report is not None and (changed or t - last_report >= PROGRESS_EVERY_S):
                report(describe(t, entry))
                last_report = t
        with anyio.move_on_after(every_s):
            await stop.wait()


def describe(t: float, entry: dict[str, Any]) -> str:
    """One progress line: the phase, the embedding count, the views."""
    indexing = entry.get("indexing") or {}
    line = f"{t:7.1f}s after spawn: {indexing.get('phase')}"
    if indexing.get("phase") == "embedding":
        line += f" {indexing.get('embedded')}/{indexing.get('to_embed')} passages"
    views = [v for v in VIEWS if ready(entry, v)]
    return line + f"; ready: {', '.join(views) or 'nothing'}"
