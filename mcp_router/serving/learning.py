"""Keeps each tool's router equal to the fold of the store's router events, in `seq` order.

Routers learn only from committed events, and every process folds them in the same order: its own
right after they commit (when nothing from another process came in between), everyone's through a
tail that polls the store for events past the last one folded. So processes sharing a database
converge on the same router state, each event is folded exactly once per process, and a restart
rebuilds the state exactly from a snapshot and the events after it.

Decisions are the one thing a process counts before the commit (each draw needs its own index): a
process skips the `call` events it wrote itself, and snapshots carry the committed count.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import anyio

from mcp_router.routing import Outcome, Router
from mcp_router.routing.state import encode, loads, pack
from mcp_router.store import Event, Store

log = logging.getLogger("mcp_router.learning")
TAIL_EVERY_S = 0.25  # how often another process's events are looked for
SNAPSHOT_EVERY_S = 60.0
SNAPSHOT_EVERY_EVENTS = 20_000
PAGE = 10_000


class Learning:
    def __init__(
        self,
        store: Store,
        routers: Mapping[str, Router],
        feat_version: str | None,
        clock: Callable[[], float],
    ) -> None:
        self.store = store
        self.routers = dict(routers)
        self.feat_version = feat_version
        self.clock = clock
        self.origin = secrets.token_hex(6)  # this process's events: their decisions are counted already
        self.last_seq = 0
        self.folded = 0  # events folded since start-up
        self._committed_calls = {tool: 0 for tool in self.routers}  # call events folded, all origins
        self._held: dict[int, Event] = {}  # own events that wait for an earlier seq from another process
        self._wake = anyio.Event()
        self._snapshot_seq = 0
        self._snapshot_at = time.monotonic()

    def fingerprint(self, router: Router) -> str:
        return f"{router.fingerprint()}:{self.feat_version}"

    # -- start-up --------------------------------------------------------------------------------

    def restore(self) -> dict[str, int]:
        """Load each router's snapshot (if one matches its configuration), then fold its tool's events
        after it, up to the last event committed now (later ones come through the tail). Returns, per
        tool, the seq its snapshot stood at (0: none, a full replay of what the database kept). A
        router depends only on its own tool's events, so one tool's replay reads only those."""
        end = self.store.last_seq()
        start: dict[str, int] = {}
        for tool, router in self.routers.items():
            found = self.store.snapshot(tool, self.fingerprint(router))
            start[tool] = 0
            if found is not None:
                seq, blob = found
                router.set_state(loads(blob))
                self._committed_calls[tool] = router.decisions
                start[tool] = seq
            self._replay(tool, start[tool], end)
        self.last_seq = max(end, *start.values()) if start else end
        self._snapshot_seq = min(start.values(), default=0)
        return start

    def _replay(self, tool: str, after: int, end: int) -> None:
        while after < end:
            page = self.store.events_after(after, PAGE, tool=tool)
            for event in page:
                if event.seq > end:
                    return
                self._fold(event)
                after = event.seq
            if len(page) < PAGE:
                return

    # -- folding ---------------------------------------------------------------------------------

    def _fold(self, event: Event) -> None:
        router = self.routers.get(event.tool)
        self.folded += 1
        if router is None:
            return
        if event.kind == "call":
            self._committed_calls[event.tool] += 1
            if event.origin != self.origin:
                router.decisions += 1
            return
        if event.provider not in router.arms:
            return
        if event.kind == "attempt":
            assert event.status is not None and event.latency_s is not None
            router.observe(
                Outcome(event.provider, event.status, event.latency_s, event.ts, event.retry_after)
            )
            return
        if event.x is not None and event.feat_version != self.feat_version:
            return  # learned under other features: not comparable
        assert event.reward is not None
        if event.kind == "quality":
            router.observe_quality(event.provider, event.x, event.reward, event.ts)
        elif event.kind == "forget":
            router.forget_quality(event.provider, event.x, event.reward, event.ts)

    def deliver(self, events: Iterable[Event]) -> None:
        """This process's events, just committed: folded now if they follow the last folded one,
        else held until the tail has folded what another process wrote in between."""
        for event in events:
            if event.seq > self.last_seq:
                self._held[event.seq] = event
        while self.last_seq + 1 in self._held:
            event = self._held.pop(self.last_seq + 1)
            self._fold(event)
            self.last_seq = event.seq
        if self._held:
            self._wake.set()

    def catch_up(self, events: list[Event]) -> None:
        """Fold what the tail read (every process's events, own included), in order."""
        for event in events:
            if event.seq <= self.last_seq:
                continue
            self._held.pop(event.seq, None)
            self._fold(event)
            self.last_seq = event.seq
        for seq in [s for s in self._held if s <= self.last_seq]:
            del self._held[seq]

    async def follow(self, interval_s: float = TAIL_EVERY_S) -> None:
        """The tail: fold other processes' events within about `interval_s`; snapshot now and then."""
        while True:
            with anyio.move_on_after(interval_s):
                await self._wake.wait()
            self._wake = anyio.Event()
            try:
                await self._tail()
            except Exception as exc:  # the database is unreachable for a moment: serve on, try again
                log.warning("router events not read: %s", exc)
                continue
            if self._snapshot_due():  # copied on the loop (milliseconds), encoded and saved in a thread
                packed, seq = self._packed(), self.last_seq
                rows = await anyio.to_thread.run_sync(self._encode, packed)
                await anyio.to_thread.run_sync(self._save, rows, seq)

    async def _tail(self) -> None:
        while True:
            page = await anyio.to_thread.run_sync(self.store.events_after, self.last_seq, PAGE)
            self.catch_up(page)
            if len(page) < PAGE:
                return

    # -- snapshots -------------------------------------------------------------------------------

    def _snapshot_due(self) -> bool:
        behind = self.last_seq - self._snapshot_seq
        if behind <= 0:
            return False
        return behind >= SNAPSHOT_EVERY_EVENTS or time.monotonic() - self._snapshot_at >= SNAPSHOT_EVERY_S

    def _packed(self) -> list[tuple[str, str, int, Any]]:
        """Every router's state at `last_seq`, copied on the loop (where the routers change)."""
        packed = []
        for tool, router in self.routers.items():
            state = router.get_state()
            state["decisions"] = self._committed_calls[tool]
            packed.append((tool, self.fingerprint(router), self.last_seq, pack(state)))
        return packed

    @staticmethod
    def _encode(packed: list[tuple[str, str, int, Any]]) -> list[tuple[str, str, int, bytes]]:
        return [(tool, fingerprint, seq, encode(state)) for tool, fingerprint, seq, state in packed]

    def snapshot_rows(self) -> list[tuple[str, str, int, bytes]]:
        """Every router's state at `last_seq`, as a snapshot stores it."""
        return self._encode(self._packed())

    def _save(self, rows: list[tuple[str, str, int, bytes]], seq: int) -> None:
        try:
            self.store.save_snapshots(rows, self.clock())
        except Exception:  # a snapshot is an optimisation: the events are still there
            log.warning("router snapshot not saved", exc_info=True)
            return
        self._snapshot_seq = seq
        self._snapshot_at = time.monotonic()

    def save_snapshot(self) -> None:
        """On clean shutdown: the next start-up folds nothing."""
        if self.last_seq != self._snapshot_seq:
            self._save(self.snapshot_rows(), self.last_seq)
