"""The store's single writer: group commit, per-item rollback, durability before the caller resumes."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import anyio
import pytest

from mcp_router.store import AttemptRecord, CallRecord, GroupWriter, Store, StoreBusy
from mcp_router.store.writer import WriterClosed

pytestmark = pytest.mark.anyio


def record(call_id: str) -> CallRecord:
    return CallRecord(
        call_id=call_id,
        tool="search",
        router="lqm",
        ts=1.0,
        request={"query": "q"},
        attempts=[AttemptRecord("a", "ok", 0.01, None, 1.0)],
    )


def committed_ids(path: Path) -> set[str]:
    """What another connection (another process, or the same file after a crash) can read."""
    with sqlite3.connect(path) as conn:
        return {row[0] for row in conn.execute("SELECT call_id FROM calls")}


async def test_a_write_is_committed_when_submit_returns(tmp_path: Path) -> None:
    store = Store(tmp_path / "r.db")
    writer = GroupWriter(store)
    await writer.submit(lambda db: Store.write_call(db, record("call_1")))
    assert committed_ids(tmp_path / "r.db") == {"call_1"}
    writer.close()
    store.close()


async def test_concurrent_writes_share_transactions_and_all_land(tmp_path: Path) -> None:
    store = Store(tmp_path / "r.db")
    writer = GroupWriter(store)

    async def one(i: int) -> None:
        await writer.submit(lambda db: Store.write_call(db, record(f"call_{i}")))

    async with anyio.create_task_group() as tg:
        for i in range(300):
            tg.start_soon(one, i)
    assert committed_ids(tmp_path / "r.db") == {f"call_{i}" for i in range(300)}
    assert writer.items == 300 and writer.commits < 300  # at least some calls shared a commit
    arm = store.arm_states("search")["a"]
    assert arm["calls"] == arm["ok"] == 300
    writer.close()
    store.close()


async def test_a_failing_write_rolls_back_alone(tmp_path: Path) -> None:
    store = Store(tmp_path / "r.db")
    writer = GroupWriter(store)
    await writer.submit(lambda db: Store.write_call(db, record("dup")))

    def half_then_fail(db) -> None:
        Store.write_call(db, record("half"))
        raise ValueError("boom")

    results = []

    async def run(work) -> None:
        try:
            await writer.submit(work)
            results.append("committed")
        except Exception as exc:
            results.append(type(exc).__name__)

    async with anyio.create_task_group() as tg:
        tg.start_soon(run, lambda db: Store.write_call(db, record("dup")))  # primary-key clash
        tg.start_soon(run, half_then_fail)
        tg.start_soon(run, lambda db: Store.write_call(db, record("fine")))
    assert sorted(results) == ["IntegrityError", "ValueError", "committed"]
    assert committed_ids(tmp_path / "r.db") == {"dup", "fine"}  # nothing of "half" remains
    seqs = [e.seq for e in store.events_after(0)]
    assert seqs == list(range(1, len(seqs) + 1)) == list(range(1, 5))  # the rolled-back ones left no gap
    assert store.arm_states("search")["a"]["calls"] == 2
    writer.close()
    store.close()


async def test_a_failing_write_alone_in_its_batch_rolls_back_and_the_next_commits(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A batch of one runs without a savepoint (see `_run_items`): its failure undoes the whole
    transaction, which holds nothing else, and reaches its caller as its own error."""
    store = Store(tmp_path / "r.db")
    writer = GroupWriter(store)

    def half_then_fail(db) -> None:
        Store.write_call(db, record("half"))
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        await writer.submit(half_then_fail)

    def twice(db) -> None:
        Store.write_call(db, record("x"))
        Store.write_call(db, record("x"))  # primary-key clash with itself

    with pytest.raises(sqlite3.IntegrityError):
        await writer.submit(twice)
    await writer.submit(lambda db: Store.write_call(db, record("after")))
    assert committed_ids(tmp_path / "r.db") == {"after"}  # nothing of "half" or of "x"
    assert [e.seq for e in store.events_after(0)] == [1, 2]  # one call's events; no gap left
    assert "group commit" not in caplog.text  # a write's own failure is not the store's
    writer.close()
    store.close()


async def test_close_commits_what_is_queued_and_refuses_more(tmp_path: Path) -> None:
    store = Store(tmp_path / "r.db")
    writer = GroupWriter(store)
    await writer.submit(lambda db: Store.write_call(db, record("before")))
    writer.close()
    with pytest.raises(WriterClosed):
        await writer.submit(lambda db: Store.write_call(db, record("after")))
    assert committed_ids(tmp_path / "r.db") == {"before"}
    store.close()


async def test_the_wal_is_checkpointed_by_the_writer_not_by_a_call(tmp_path: Path) -> None:
    """Calls never run SQLite's automatic checkpoint (its fsync); the writer keeps the WAL bounded
    even when writes never pause (without it, every commit appends pages for good). The bound holds
    after every commit, not only on average: batches wait behind a queued truncation."""
    store = Store(tmp_path / "r.db")
    writer = GroupWriter(store, wal_limit_pages=2000)
    await writer.submit(lambda db: Store.write_call(db, record("call_0")))
    assert store.backend.conn.query("PRAGMA wal_autocheckpoint")[0]["wal_autocheckpoint"] == 0  # the writer
    wal = tmp_path / "r.db-wal"
    i, largest_wal_pages = 0, 0.0
    with anyio.move_on_after(2.5):
        while True:
            i += 1
            await writer.submit(lambda db, i=i: Store.write_call(db, record(f"call_{i}")))
            largest_wal_pages = max(largest_wal_pages, wal.stat().st_size / 4096)
    assert writer.commits > 400  # 400 commits write ~3,000 pages unbounded
    assert 2000 < largest_wal_pages < 2100  # it reached the limit, and one commit's pages past it at most
    writer.close()
    store.close()


async def test_uncontended_batches_commit_on_the_loop(tmp_path: Path) -> None:
    store = Store(tmp_path / "r.db")
    writer = GroupWriter(store)
    for i in range(5):
        await writer.submit(lambda db, i=i: Store.write_call(db, record(f"call_{i}")))
    assert writer.on_loop == writer.commits == 5
    writer.close()
    store.close()


async def test_another_process_holding_the_write_lock_never_blocks_the_loop(tmp_path: Path) -> None:
    """The batch goes to the writer thread, which waits for the lock; the loop keeps serving."""
    store = Store(tmp_path / "r.db")
    writer = GroupWriter(store)
    await writer.submit(lambda db: Store.write_call(db, record("first")))
    other = sqlite3.connect(tmp_path / "r.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # what a second server process does while it writes
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await anyio.sleep(0.01)

    async with anyio.create_task_group() as tg:
        tg.start_soon(ticker)
        writing = anyio.Event()

        async def write() -> None:
            await writer.submit(lambda db: Store.write_call(db, record("second")))
            writing.set()

        tg.start_soon(write)
        await anyio.sleep(0.5)
        assert not writing.is_set() and ticks >= 20  # waiting, in the thread; the loop ticked on
        other.execute("COMMIT")
        with anyio.fail_after(5):
            await writing.wait()
        tg.cancel_scope.cancel()
    assert committed_ids(tmp_path / "r.db") == {"first", "second"}
    assert writer.on_loop == 1 and writer.commits == 2
    other.close()
    writer.close()
    store.close()


def test_the_busy_timeout_is_off_only_for_a_non_waiting_begin(tmp_path: Path) -> None:
    """A non-waiting transaction leaves the connection's busy timeout at 0 (two statements fewer per
    call); the next waiting transaction or checkpoint still waits for another process's lock."""
    store = Store(tmp_path / "r.db")
    backend = store.backend
    other = sqlite3.connect(tmp_path / "r.db", isolation_level=None, check_same_thread=False)

    def hold_the_write_lock_for(seconds: float) -> threading.Timer:
        other.execute("BEGIN IMMEDIATE")  # what a second server process does while it writes
        releaser = threading.Timer(seconds, lambda: other.execute("COMMIT"))
        releaser.start()
        return releaser

    with backend.transaction(wait=False) as db:
        Store.write_call(db, record("fast"))
    releaser = hold_the_write_lock_for(0.3)
    with pytest.raises(StoreBusy), backend.transaction(wait=False) as db:
        Store.write_call(db, record("refused"))
    with backend.transaction(wait=True) as db:  # waits ~0.3 s for the lock instead of failing
        Store.write_call(db, record("waited"))
    releaser.join()
    with backend.transaction(wait=False) as db:
        Store.write_call(db, record("fast again"))
    releaser = hold_the_write_lock_for(0.3)
    assert backend.writer_pragma("wal_checkpoint(TRUNCATE)")[0]["busy"] == 0  # it waited its turn
    releaser.join()
    assert committed_ids(tmp_path / "r.db") == {"fast", "waited", "fast again"}
    other.close()
    store.close()
