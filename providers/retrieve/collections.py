"""Folder collections and the library's indexer thread, which keeps their indexes ready off the call path.

A collection holds two published views, `lexical` (BM25) and `dense` (MiniLM vectors), each replaced
whole when a newer one is built; an arm is ready for a collection once its view exists, and a call
never builds one. The library's thread loads the on-disk indexes at start, brings them up to date,
and rescans the folders every `rescan_every_s`, so edits are picked up while the server runs.

Several processes may share an index folder (replicas, `mcp-router index` beside a server): a file
lock lets one of them index while the others keep serving what they have and load its result.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from providers.retrieve import embedder
from providers.retrieve.folder_index import FileRecord, IndexFiles, default_index_root, index_folder
from providers.retrieve.indexer import Embed, RefreshReport, load_saved, refresh
from providers.retrieve.indexes import DenseIndex, LexicalIndex

log = logging.getLogger(__name__)

View = Literal["lexical", "dense"]
DIMENSION = 384
RESCAN_EVERY_S = 30.0
BUSY_RETRY_S = 2.0  # another process holds the index lock: look again this soon
STOP_WAIT_S = 5.0


@dataclass
class IndexProgress:
    """What the indexer is doing for one collection (written by its thread, read for status)."""

    phase: str = "pending"  # pending, loading, scanning, lexical, embedding, waiting, idle, failed
    to_embed: int = 0
    embedded: int = 0
    started_at: float | None = None
    last: RefreshReport | None = None
    last_at: float | None = None
    error: str | None = None

    def begin(self, phase: str) -> None:
        self.phase, self.started_at, self.error = phase, time.time(), None

    def finish(self, report: RefreshReport) -> None:
        self.phase = "idle" if report.complete else "pending"
        self.last, self.last_at = report, time.time()


class Collection:
    """One named folder and its published indexes."""

    dimension = DIMENSION

    def __init__(self, name: str, root: Path, index_root: Path | None) -> None:
        self.name = name
        self.root = root
        self.index_files = IndexFiles(index_folder(index_root, name, root)) if index_root else None
        self.lexical: LexicalIndex | None = None
        self.dense: DenseIndex | None = None
        self.progress = IndexProgress()
        self.known_files: dict[str, FileRecord] = {}  # the indexer's; calls never read it
        self.vectors_by_sha: dict[str, np.ndarray] = {}
        self.state_lock = threading.Lock()  # one indexer at a time (the thread, or a direct refresh)

    def view(self, kind: View) -> LexicalIndex | DenseIndex | None:
        return self.lexical if kind == "lexical" else self.dense

    def describe_progress(self) -> str:
        """One line for an error message: how far indexing is."""
        p = self.progress
        if p.phase == "embedding" and p.to_embed:
            return f"embedding {p.embedded}/{p.to_embed} passages"
        if p.error:
            return f"indexing failed: {p.error}"
        return p.phase

    def status(self, now: float | None = None) -> dict[str, Any]:
        """The folder's files, passages, index views and indexing, as `router://collections` shows them."""
        now = time.time() if now is None else now
        p = self.progress

        def view_state(view: LexicalIndex | DenseIndex | None) -> dict[str, Any]:
            if view is None:
                return {"ready": False, "documents": None, "built_at": None, "age_s": None}
            return {
                "ready": True,
                "documents": len(view.documents),
                "built_at": round(view.built_at, 3),
                "age_s": round(now - view.built_at, 1),
            }

        return {
            "index_dir": str(self.index_files.folder) if self.index_files else None,
            "files": len(self.known_files) if self.known_files else None,
            "documents": len(self.lexical.documents) if self.lexical else None,
            "lexical": view_state(self.lexical),
            "dense": view_state(self.dense),
            "indexing": {
                "phase": p.phase,
                "to_embed": p.to_embed,
                "embedded": p.embedded,
                "error": p.error,
                "last_refresh": asdict(p.last) if p.last else None,
                "last_refresh_at": round(p.last_at, 3) if p.last_at else None,
            },
        }


class CollectionLibrary:
    """The collections a server knows, by name (the first is the default), and their indexer.

    `index_root` is where indexes persist (default `$MCP_ROUTER_INDEX_DIR`, else the user cache);
    `False` keeps them in memory only. `embed` builds the dense view; None builds BM25 only (no arm
    needs vectors). `start` runs the indexer thread; `refresh` indexes now, in the calling thread
    (tests, `mcp-router index`)."""

    def __init__(
        self,
        folders: Iterable[tuple[str, Path]] = (),
        index_root: Path | Literal[False] | None = None,
        rescan_every_s: float = RESCAN_EVERY_S,
        embed: Embed | None = embedder.embed_passages,
    ) -> None:
        root = None if index_root is False else (index_root or default_index_root())
        self._collections = {name: Collection(name, Path(path), root) for name, path in folders}
        self.rescan_every_s = rescan_every_s
        self.embed = embed
        self._stopping = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    def names(self) -> list[str]:
        return list(self._collections)

    def __iter__(self) -> Iterator[Collection]:
        return iter(list(self._collections.values()))

    @property
    def default(self) -> str | None:
        return next(iter(self._collections), None)

    def get(self, name: str) -> Collection | None:
        return self._collections.get(name)

    # ------------------------------------------------------------------------------------- indexing

    def start(self) -> None:
        """Start the indexer thread (once; later calls do nothing)."""
        with self._start_lock:
            if self._thread is not None or not self._collections:
                return
            self._thread = threading.Thread(target=self._run, name="collection-indexer", daemon=True)
            self._thread.start()

    def stop(self, wait_s: float = STOP_WAIT_S) -> None:
        """Stop the thread between two batches (what it embedded so far is saved first), waiting at
        most `wait_s`: a shutdown does not wait out a long batch, whose work the next start redoes."""
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(wait_s)

    def rescan(self) -> None:
        """Ask the thread to look at the folders now instead of at its next scheduled rescan."""
        self._wake.set()

    def refresh(self, names: Iterable[str] | None = None) -> dict[str, RefreshReport]:
        """Index the named collections (default: all) now, waiting for another process if it holds one."""
        reports: dict[str, RefreshReport] = {}
        for name in names if names is not None else self.names():
            collection = self._collections[name]
            with collection.state_lock:
                if collection.lexical is None and collection.dense is None:
                    load_saved(collection)
                reports[name] = self._locked(collection, blocking=True)  # type: ignore[assignment]
        return reports

    def _run(self) -> None:
        for collection in self:
            collection.progress.begin("loading")
            with collection.state_lock:
                try:
                    load_saved(collection)
                except Exception as exc:  # a damaged index is rebuilt by the refresh below
                    log.warning("could not load the saved index of %s: %s", collection.name, exc)
        while not self._stopping.is_set():
            busy = False
            for collection in self:
                if self._stopping.is_set():
                    return
                with collection.state_lock:
                    try:
                        self._locked(collection, blocking=False)
                    except Exception:  # e.g. an index folder that cannot be created: next rescan
                        log.warning("indexing %s failed", collection.name, exc_info=True)
                    busy |= collection.progress.phase == "waiting"
            self._wake.wait(BUSY_RETRY_S if busy else self.rescan_every_s)
            self._wake.clear()

    def _locked(self, collection: Collection, blocking: bool) -> RefreshReport | None:
        """Refresh under the index folder's file lock; None if another process holds it (its work is
        loaded instead), or if the refresh failed (the error is in the collection's progress)."""
        lock = _file_lock(collection)
        if lock is not None and not _acquire(lock, blocking):
            collection.progress.phase = "waiting"
            _reload_if_newer(collection)
            return None
        try:
            if lock is not None:  # another process may have indexed since we last looked
                _reload_if_newer(collection)
                collection.index_files.clean_staging()  # type: ignore[union-attr]
            return refresh(collection, self.embed, self._stopping.is_set)
        except Exception as exc:
            log.warning("indexing %s failed", collection.name, exc_info=True)
            collection.progress.phase, collection.progress.error = "failed", f"{type(exc).__name__}: {exc}"
            if blocking:
                raise
            return None
        finally:
            if lock is not None:
                lock.release()


def _file_lock(collection: Collection) -> Any | None:
    if collection.index_files is None:
        return None
    from filelock import FileLock

    folder = collection.index_files.folder
    folder.mkdir(parents=True, exist_ok=True)
    return FileLock(folder / ".lock")


def _acquire(lock: Any, blocking: bool) -> bool:
    from filelock import Timeout

    try:
        lock.acquire(timeout=-1 if blocking else 0)
    except Timeout:
        return False
    return True


def _reload_if_newer(collection: Collection) -> None:
    """Take another process's saved work, so it is neither redone nor served stale."""
    store = collection.index_files
    if store is not None and store.changed_on_disk():
        load_saved(collection)
