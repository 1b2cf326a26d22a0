"""Building a folder collection's indexes: load what is on disk, then bring it up to date.

`load_saved` publishes the saved indexes in well under a second (no model, no parsing), so a server
that starts on an indexed folder serves every arm at once. `refresh` then scans the folder and does
only what changed: it splits the edited files, rebuilds BM25 (about a second) when the file set
moved, and embeds only passages whose file content has no vectors yet, saving as it goes, so an
interrupted first indexing resumes where it stopped. Both run in the library's indexer thread (or
in `mcp-router index`), never inside a call.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from providers.retrieve.documents import Document, file_documents
from providers.retrieve.folder_index import FileRecord, files_digest, scan
from providers.retrieve.indexes import DenseIndex, LexicalIndex

if TYPE_CHECKING:
    from providers.retrieve.collections import Collection

log = logging.getLogger(__name__)

EMBED_BATCH = 512  # passages per step: the model sorts each step by length, so less padding
SAVE_EVERY_S = 20.0  # during a long first indexing, vectors reach the disk at least this often

Embed = Callable[[Sequence[str]], np.ndarray]


@dataclass(frozen=True)
class RefreshReport:
    """What one refresh found and did."""

    files: int
    passages: int
    changed: int  # files new or edited
    removed: int
    lexical_rebuilt: bool
    files_embedded: int
    passages_embedded: int
    seconds: float
    complete: bool  # False: stopped before every passage had its vector


def documents_of(collection: str, files: Sequence[FileRecord]) -> list[Document]:
    documents: list[Document] = []
    for record in files:
        documents.extend(file_documents(collection, record.path, record.title, list(record.passages)))
    return documents


def _stack(files: Sequence[FileRecord], vectors: dict[str, np.ndarray], dimension: int) -> np.ndarray:
    blocks = [vectors[f.sha256] for f in files if f.passages]
    return np.concatenate(blocks) if blocks else np.zeros((0, dimension), dtype=np.float32)


def load_saved(collection: Collection) -> bool:
    """Publish the indexes saved for `collection` that match its saved file list; True if any.
    The caller holds the collection's `state_lock`."""
    store = collection.index_files
    if store is None:
        return False
    known = store.load_files()
    if not known:
        return False
    files = sorted(known.values(), key=lambda f: f.path)
    documents = documents_of(collection.name, files)
    built_at = store.saved_at()
    bm25 = store.load_lexical(files_digest(files))
    vectors = store.load_vectors()
    collection.known_files = known
    collection.vectors_by_sha = vectors
    if bm25 is not None:
        collection.lexical = LexicalIndex(documents, bm25, built_at)
    if all(f.sha256 in vectors for f in files if f.passages):
        collection.dense = DenseIndex(documents, _stack(files, vectors, collection.dimension), built_at)
    return collection.lexical is not None or collection.dense is not None


def refresh(collection: Collection, embed: Embed | None, stopping: Callable[[], bool]) -> RefreshReport:
    """Scan the folder and bring both indexes up to date, publishing each as soon as it is; with no
    `embed` (no arm needs vectors) only BM25."""
    started = time.monotonic()
    progress = collection.progress
    progress.begin("scanning")
    found = scan(collection.root, collection.known_files)
    files = list(found.files)
    documents = documents_of(collection.name, files)
    moved = bool(found.changed or found.removed)  # a file new to the index is among `changed`
    touched = moved or any(collection.known_files.get(f.path) != f for f in files)
    store = collection.index_files

    lexical_rebuilt = False
    if moved or collection.lexical is None:
        progress.phase = "lexical"
        lexical = LexicalIndex.build(documents)
        collection.lexical = lexical
        lexical_rebuilt = True
        if store is not None:
            store.save_lexical(lexical.bm25, found.digest)
    if touched or lexical_rebuilt:
        collection.known_files = {f.path: f for f in files}
        if store is not None:
            store.save_files(files)

    vectors = collection.vectors_by_sha
    missing = [f for f in files if f.passages and f.sha256 not in vectors] if embed else []
    progress.to_embed = sum(len(f.passages) for f in missing)
    progress.embedded = 0
    embedded_files = _embed_missing(collection, missing, embed, stopping)
    complete = embed is None or all(f.sha256 in vectors for f in files if f.passages)
    if embed and complete and (embedded_files or moved or collection.dense is None):
        collection.dense = DenseIndex(documents, _stack(files, vectors, collection.dimension), time.time())
    if embed and complete and store is not None and (embedded_files or found.removed):
        current = {f.sha256 for f in files}
        for sha in [s for s in vectors if s not in current]:  # vectors of content no file has now
            del vectors[sha]
        store.save_vectors(vectors, collection.dimension)
    report = RefreshReport(
        files=len(files),
        passages=len(documents),
        changed=len(found.changed),
        removed=len(found.removed),
        lexical_rebuilt=lexical_rebuilt,
        files_embedded=embedded_files,
        passages_embedded=progress.embedded,
        seconds=round(time.monotonic() - started, 3),
        complete=complete,
    )
    progress.finish(report)
    if moved or embedded_files:
        log.info("collection %s: %s", collection.name, report)
    return report


def _embed_missing(
    collection: Collection, missing: list[FileRecord], embed: Embed | None, stopping: Callable[[], bool]
) -> int:
    """Embed the passages of `missing` files in batches, saving every `SAVE_EVERY_S`; the number of
    files whose vectors were added. Stops between batches when `stopping()` (after saving)."""
    if not missing or embed is None:
        return 0
    progress = collection.progress
    progress.phase = "embedding"
    vectors = collection.vectors_by_sha
    store = collection.index_files
    last_save = time.monotonic()
    done_files = 0
    pending: list[FileRecord] = []
    texts: list[str] = []
    for i, record in enumerate(missing):
        pending.append(record)
        texts.extend(record.passages)
        if len(texts) < EMBED_BATCH and i < len(missing) - 1:
            continue
        rows = embed(texts)
        start = 0
        for done in pending:
            vectors[done.sha256] = rows[start : start + len(done.passages)]
            start += len(done.passages)
        done_files += len(pending)
        progress.embedded += len(texts)
        pending, texts = [], []
        stop = stopping()
        if store is not None and (stop or time.monotonic() - last_save > SAVE_EVERY_S):
            store.save_vectors(vectors, collection.dimension)
            last_save = time.monotonic()
        if stop:
            break
    return done_files
