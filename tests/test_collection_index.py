"""Folder collections' on-disk indexes: persisted, keyed by content, updated incrementally, built off
the call path, and shared between processes.

Most tests count what the indexer embeds with a deterministic stand-in for MiniLM (`CountingEmbed`):
they are about what is (re)built, not about ranking quality, which tests/test_retrieve_providers.py
checks with the real model.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import httpx
import numpy as np
import pytest

from providers import ProviderEnv, Unavailable
from providers.retrieve.collections import CollectionLibrary
from providers.retrieve.documents import read_folder
from providers.retrieve.folder_index import INDEX_DIR_ENV
from providers.types import RetrieveRequest
from tests.providers_support import adapter

ROOT = Path(__file__).resolve().parent.parent


class CountingEmbed:
    """Deterministic unit vectors seeded by each text; records every batch it is asked for."""

    def __init__(self) -> None:
        self.texts: list[str] = []

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        self.texts.extend(texts)
        rows = []
        for text in texts:
            seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
            v = np.random.default_rng(seed).standard_normal(384).astype(np.float32)
            rows.append(v / np.linalg.norm(v))
        return np.stack(rows) if rows else np.zeros((0, 384), dtype=np.float32)


def write_notes(folder: Path, n: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        filler = "Some words that fill the paragraph out. " * 16  # two paragraphs: two passages
        (folder / f"note{i:03d}.md").write_text(
            f"# Note {i}\n\nThe number {i} is written here as word{i}. {filler}\n\n"
            f"A second paragraph {i}. {filler}",
            encoding="utf-8",
        )


def library(folder: Path, index_root: Path, embed: CountingEmbed | None = None) -> CollectionLibrary:
    return CollectionLibrary([("notes", folder)], index_root=index_root, embed=embed or CountingEmbed())


def test_a_second_library_loads_the_saved_index_without_embedding(tmp_path: Path) -> None:
    write_notes(tmp_path / "notes", 12)
    first = CountingEmbed()
    report = library(tmp_path / "notes", tmp_path / "idx", first).refresh()["notes"]
    assert report.files == 12 and report.files_embedded == 12 and report.complete
    assert len(first.texts) == report.passages

    again = CountingEmbed()
    second = library(tmp_path / "notes", tmp_path / "idx", again)
    report = second.refresh()["notes"]
    assert (report.changed, report.files_embedded, report.lexical_rebuilt) == (0, 0, False)
    assert again.texts == []
    collection = second.get("notes")
    assert collection.dense is not None and collection.lexical is not None
    assert [d.id for d in collection.dense.documents] == [
        d.id for d in read_folder("notes", tmp_path / "notes")
    ]
    assert collection.dense.vectors.shape == (report.passages, 384)


def test_editing_one_file_embeds_that_file_only(tmp_path: Path) -> None:
    folder = tmp_path / "notes"
    write_notes(folder, 10)
    embed = CountingEmbed()
    lib = library(folder, tmp_path / "idx", embed)
    lib.refresh()
    embed.texts.clear()
    (folder / "note004.md").write_text("# Note 4\n\nNow about zeppelins.", encoding="utf-8")
    report = lib.refresh()["notes"]
    assert (report.changed, report.files_embedded, report.passages_embedded) == (1, 1, 1)
    assert embed.texts == ["# Note 4\n\nNow about zeppelins."]
    lexical = lib.get("notes").lexical
    assert lexical is not None
    hits = lexical.rank("zeppelins", 3)
    assert [lexical.documents[i].metadata["path"] for i, _ in hits] == ["note004.md"]


def test_a_renamed_or_touched_file_is_not_embedded_again(tmp_path: Path) -> None:
    folder = tmp_path / "notes"
    write_notes(folder, 5)
    embed = CountingEmbed()
    lib = library(folder, tmp_path / "idx", embed)
    lib.refresh()
    embed.texts.clear()
    (folder / "note001.md").rename(folder / "renamed.md")
    os.utime(folder / "note002.md", ns=(1, 1))
    report = lib.refresh()["notes"]
    assert embed.texts == []
    assert (report.changed, report.removed, report.files_embedded) == (1, 1, 0)
    dense = lib.get("notes").dense
    assert dense is not None and "renamed.md#0" in {d.id for d in dense.documents}
    assert "note001.md#0" not in {d.id for d in dense.documents}


def test_removing_a_file_drops_its_passages_and_vectors(tmp_path: Path) -> None:
    folder = tmp_path / "notes"
    write_notes(folder, 4)
    lib = library(folder, tmp_path / "idx")
    lib.refresh()
    (folder / "note000.md").unlink()
    report = lib.refresh()["notes"]
    assert report.removed == 1 and report.files == 3
    fresh = library(folder, tmp_path / "idx")
    fresh.refresh()
    collection = fresh.get("notes")
    assert collection.dense is not None
    assert all(d.metadata["path"] != "note000.md" for d in collection.dense.documents)
    assert len(collection.vectors_by_sha) == 3  # the removed file's vectors were not kept


def test_an_interrupted_first_indexing_resumes_where_it_stopped(tmp_path: Path) -> None:
    folder = tmp_path / "notes"
    write_notes(folder, 300)  # 600 passages: several batches

    class StopAfterFirstBatch(CountingEmbed):
        def __init__(self, lib_ref: list[CollectionLibrary]) -> None:
            super().__init__()
            self.lib_ref = lib_ref

        def __call__(self, texts: Sequence[str]) -> np.ndarray:
            self.lib_ref[0]._stopping.set()  # as a server shutdown would, mid-embedding
            return super().__call__(texts)

    ref: list[CollectionLibrary] = []
    first = StopAfterFirstBatch(ref)
    ref.append(library(folder, tmp_path / "idx", first))
    report = ref[0].refresh()["notes"]
    assert not report.complete and ref[0].get("notes").dense is None
    assert 0 < len(first.texts) < 600

    rest = CountingEmbed()
    report = library(folder, tmp_path / "idx", rest).refresh()["notes"]
    assert report.complete
    assert len(rest.texts) == 600 - len(first.texts)  # nothing embedded twice


def test_a_damaged_index_is_rebuilt(tmp_path: Path) -> None:
    folder = tmp_path / "notes"
    write_notes(folder, 3)
    lib = library(folder, tmp_path / "idx")
    lib.refresh()
    index_dir = lib.get("notes").index_files.folder
    (index_dir / "files.json").write_text("{not json", encoding="utf-8")
    (index_dir / "dense.npz").write_bytes(b"garbage")
    embed = CountingEmbed()
    fresh = library(folder, tmp_path / "idx", embed)
    report = fresh.refresh()["notes"]
    assert report.complete and report.files_embedded == 3 and fresh.get("notes").dense is not None


def test_bm25_only_library_never_embeds(tmp_path: Path) -> None:
    folder = tmp_path / "notes"
    write_notes(folder, 3)
    lib = CollectionLibrary([("notes", folder)], index_root=tmp_path / "idx", embed=None)
    report = lib.refresh()["notes"]
    assert report.complete and report.files_embedded == 0
    assert lib.get("notes").lexical is not None and lib.get("notes").dense is None


@pytest.mark.anyio
async def test_a_call_never_waits_for_indexing(tmp_path: Path) -> None:
    """While the dense view is being built, bm25 serves, and a dense call fails at once, saying how far
    indexing is (the dispatcher passes such an arm over; this is what a direct caller sees)."""
    folder = tmp_path / "notes"
    write_notes(folder, 20)
    release = threading.Event()

    class Blocked(CountingEmbed):
        def __call__(self, texts: Sequence[str]) -> np.ndarray:
            release.wait(30)
            return super().__call__(texts)

    lib = library(folder, tmp_path / "idx", Blocked())
    lib.start()
    try:
        async with httpx.AsyncClient() as client:
            env = ProviderEnv(http=client, collections=lib)
            request = RetrieveRequest("word7", "notes", k=2)
            deadline = time.monotonic() + 10
            while lib.get("notes").lexical is None and time.monotonic() < deadline:
                time.sleep(0.01)
            passages = await adapter(env, "bm25").call(request)
            assert passages[0].metadata["path"] == "note007.md"
            dense = adapter(env, "dense")
            assert not dense.ready(request)
            started = time.monotonic()
            with pytest.raises(Unavailable) as caught:
                await dense.call(request)
            assert time.monotonic() - started < 1.0  # nothing to wait for: it answers at once
            assert "still being indexed" in caught.value.message
            assert "embedding 0/40 passages" in caught.value.message
    finally:
        release.set()
        lib.stop()


def test_status_shows_index_state_age_and_progress(tmp_path: Path) -> None:
    write_notes(tmp_path / "notes", 2)
    lib = library(tmp_path / "notes", tmp_path / "idx")
    before = lib.get("notes").status()
    assert before["lexical"]["ready"] is False and before["indexing"]["phase"] == "pending"
    lib.refresh()
    status = lib.get("notes").status()
    assert status["files"] == 2 and status["documents"] == 4
    assert status["lexical"]["ready"] and status["dense"]["ready"]
    assert status["dense"]["documents"] == 4 and status["dense"]["age_s"] >= 0
    assert status["indexing"]["phase"] == "idle"
    assert status["indexing"]["last_refresh"]["passages_embedded"] == 4
    json.dumps(status)  # served as a resource: plain JSON


def _run_index_command(folder: Path, index_root: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, INDEX_DIR_ENV: str(index_root), "HF_HUB_OFFLINE": "1"}
    return subprocess.run(
        [sys.executable, "-m", "mcp_router", "index", str(folder)],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=300,
    )


@pytest.mark.slow
def test_index_command_builds_what_a_server_process_then_loads(tmp_path: Path) -> None:
    """`mcp-router index FOLDER` in another process; this one loads its work and embeds nothing."""
    folder = tmp_path / "papers"
    write_notes(folder, 6)
    done = _run_index_command(folder, tmp_path / "idx")
    assert done.returncode == 0, done.stderr
    assert "papers: 6 files, 12 passages; 6 new or changed" in done.stdout
    assert "embedded 12 passages of 6 files" in done.stdout
    embed = CountingEmbed()
    lib = CollectionLibrary([("papers", folder)], index_root=tmp_path / "idx", embed=embed)
    report = lib.refresh()["papers"]
    assert report.files_embedded == 0 and embed.texts == []
    assert lib.get("papers").dense is not None

    again = _run_index_command(folder, tmp_path / "idx")
    assert "0 new or changed" in again.stdout and "embedded 0 passages" in again.stdout


def test_index_command_rejects_an_unknown_collection(tmp_path: Path) -> None:
    env = {**os.environ, INDEX_DIR_ENV: str(tmp_path / "idx")}
    done = subprocess.run(
        [sys.executable, "-m", "mcp_router", "index", "no-such-collection"],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
    )
    assert done.returncode == 2
    assert "not a folder collection: no-such-collection; known: docs" in done.stderr


def test_a_process_holding_the_index_lock_makes_the_other_wait_then_share(tmp_path: Path) -> None:
    """Another process holds the index lock: this library waits instead of indexing beside it, and
    indexes once the lock is free."""
    folder = tmp_path / "notes"
    write_notes(folder, 3)
    probe = library(folder, tmp_path / "idx")
    lock_path = probe.get("notes").index_files.folder / ".lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from filelock import FileLock; l = FileLock(sys.argv[1]); l.acquire(); "
            "print('held', flush=True); sys.stdin.readline()",
            str(lock_path),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        embed = CountingEmbed()
        waiting = library(folder, tmp_path / "idx", embed)
        waiting.start()
        deadline = time.monotonic() + 10
        while waiting.get("notes").progress.phase != "waiting" and time.monotonic() < deadline:
            time.sleep(0.02)
        assert waiting.get("notes").progress.phase == "waiting"
        assert embed.texts == [] and waiting.get("notes").lexical is None
    finally:
        assert holder.stdin is not None
        holder.stdin.write("\n")
        holder.stdin.flush()
        holder.wait(10)
    waiting.rescan()
    deadline = time.monotonic() + 10
    while waiting.get("notes").dense is None and time.monotonic() < deadline:
        time.sleep(0.02)
    waiting.stop()
    assert waiting.get("notes").dense is not None  # it indexed once the lock was free


def test_a_killed_writers_staging_files_are_removed_under_the_lock(tmp_path: Path) -> None:
    write_notes(tmp_path / "notes", 2)
    lib = library(tmp_path / "notes", tmp_path / "idx")
    lib.refresh()
    folder = lib.get("notes").index_files.folder
    (folder / ".dense-abc123.npz").write_bytes(b"half")
    (folder / ".lexical-xyz").mkdir()
    lib.refresh()
    assert sorted(p.name for p in folder.iterdir()) == [".lock", "dense.npz", "files.json", "lexical"]
