"""Routers learn from the store's numbered events: a restart from a snapshot plus the events after it,
a full replay, and the live process that made the decisions all hold the same state, bit for bit;
and two dispatchers sharing one database fold each other's events exactly once."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from mcp_router.config import load_config
from mcp_router.routing import RouteContext, build_router
from mcp_router.routing.features import Featurizer
from mcp_router.routing.state import loads
from mcp_router.serving.dispatch import AllProvidersFailed, Arm, Dispatcher, ToolRoute
from mcp_router.store import Store
from providers import ProviderEnv, create_adapter
from providers.http import new_client
from providers.retrieve.collections import CollectionLibrary
from providers.types import RetrieveRequest

FEATURIZER = Featurizer()  # text features only: no model load needed here


@pytest.fixture
def make(tmp_path: Path, notes_dir: Path) -> Iterator[Callable[[], Dispatcher]]:
    """A factory of dispatchers over one database: bm25 and hybrid retrieval under LQM, a shared clock."""
    clock = iter(np.arange(1_000.0, 9_000.0, 0.25))
    env = ProviderEnv(http=new_client(), collections=CollectionLibrary([("notes", notes_dir)]))
    providers = {p.name: p for p in load_config().config.tool("retrieve").providers}
    adapters = {name: create_adapter(providers[name].spec(), env) for name in ("bm25", "hybrid")}
    made: list[Dispatcher] = []

    def dispatcher() -> Dispatcher:
        arms = {name: Arm(adapter, 30.0) for name, adapter in adapters.items()}
        router = build_router("lqm", "retrieve", list(arms), l_ref_s=0.5, params={"n_min": 2})
        route = ToolRoute("retrieve", arms, router, max_attempts=2, deadline_s=30)
        made.append(
            Dispatcher({"retrieve": route}, Store(tmp_path / "r.db"), FEATURIZER, clock=lambda: next(clock))
        )
        return made[-1]

    yield dispatcher
    for d in made:
        d.writer.close()


async def route(dispatcher: Dispatcher, queries: list[str], collection: str = "notes") -> None:
    for query in queries:
        with contextlib.suppress(AllProvidersFailed):  # an unknown collection: every arm fails
            await dispatcher.run("retrieve", RetrieveRequest(query, collection, 2), query, {"query": query})


async def rate(dispatcher: Dispatcher, n: int) -> None:
    """Judge the newest `n` calls, then overrule half of those verdicts with explicit feedback."""
    calls = [c for c in dispatcher.store.recent_calls(n) if c["status"] == "ok"]
    for i, call in enumerate(calls):
        await dispatcher.signal(call["call_id"], 0.1 * i, "judge")
    for i, call in enumerate(calls[::2]):
        await dispatcher.feedback(call["call_id"], 1.0 - 0.15 * i, None)


def state(dispatcher: Dispatcher) -> bytes:
    """The router's state as a snapshot stores it (decisions: the committed ones)."""
    ((_, _, _, blob),) = dispatcher.learning.snapshot_rows()
    return blob


@pytest.mark.anyio
async def test_live_state_full_replay_and_snapshot_restart_are_identical(
    make: Callable[[], Dispatcher],
) -> None:
    first = make()
    await route(first, ["tomatoes sun", "sourdough flour", "water", "garden"] * 3)
    await route(first, ["anything"], collection="nowhere")
    await rate(first, 8)
    live = state(first)
    kinds = {e.kind for e in first.store.events_after(0)}
    assert kinds == {"call", "attempt", "quality", "forget"}

    replayed = make()  # no snapshot yet: every event is folded
    assert replayed.learning.folded == first.store.last_seq() and state(replayed) == live

    first.close()  # a clean shutdown snapshots the routers
    restored = make()
    assert restored.learning.folded == 0 and state(restored) == live
    a, b = first.routes["retrieve"].router, restored.routes["retrieve"].router
    assert a.decisions == b.decisions == 13
    for query in ["tomato watering", "bread", "flour and water", "sun"]:
        x = FEATURIZER(query)
        da, db = (r.rank(RouteContext("retrieve", query, 5_000.0, x)) for r in (a, b))
        assert (da.order, da.policy, da.scores) == (db.order, db.policy, db.scores)

    await route(restored, ["sun and water", "flour"] * 3)  # it goes on; it is not shut down
    await rate(restored, 4)
    tailed = make()  # the snapshot, then only the events written after it
    assert 0 < tailed.learning.folded < tailed.store.last_seq()
    with tailed.store.transaction() as db:
        db.execute("DELETE FROM router_snapshots")
    full = make()
    assert full.learning.folded == full.store.last_seq()
    assert state(tailed) == state(full) == state(restored)


@pytest.mark.anyio
async def test_two_dispatchers_on_one_database_fold_each_event_once(make: Callable[[], Dispatcher]) -> None:
    a, b = make(), make()
    for round_ in range(3):  # interleaved writers: each sees gaps in the sequence where the other wrote
        await route(a, ["tomatoes sun", "sourdough"])
        await route(b, ["garden water"])
        await rate(a if round_ % 2 else b, 3)
    assert a.learning._held or b.learning._held  # own events wait behind the other's
    for d in (a, b):
        d.learning.catch_up(d.store.events_after(d.learning.last_seq))
        assert not d.learning._held and d.learning.last_seq == d.store.last_seq()
    fresh = make()
    assert state(a) == state(b) == state(fresh)
    snapshot = loads(state(a))
    heads = snapshot["heads"]
    quality_events = [e for e in a.store.events_after(0) if e.kind == "quality"]
    forgets = [e for e in a.store.events_after(0) if e.kind == "forget"]
    assert sum(len(h["obs"]) for h in heads.values()) == len(quality_events) - len(forgets)
    assert snapshot["decisions"] == a.store.tool_call_count("retrieve") == 9
    # live decision counters: each counts its own draws and the other's committed calls
    assert a.routes["retrieve"].router.decisions == b.routes["retrieve"].router.decisions == 9


@pytest.mark.anyio
async def test_a_running_server_snapshots_in_the_background(
    make: Callable[[], Dispatcher], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The tail saves a snapshot on its own (every minute by default), so a restart after `kill -9`
    folds only what came after it."""
    import anyio

    from mcp_router.serving import learning

    monkeypatch.setattr(learning, "SNAPSHOT_EVERY_S", 0.0)
    running = make()
    await route(running, ["tomatoes sun", "sourdough flour"] * 2)
    async with anyio.create_task_group() as tg:
        tg.start_soon(running.learning.follow, 0.01)
        with anyio.fail_after(5):
            while not running.store.query("SELECT 1 FROM router_snapshots"):
                await anyio.sleep(0.01)
        tg.cancel_scope.cancel()
    await route(running, ["garden"])  # after the snapshot; never shut down cleanly
    restarted = make()
    assert restarted.learning.folded == 2  # the last call: its decision and its one attempt
    assert state(restarted) == state(running)
