"""Local collections: folders of text and Markdown files, split into passages and indexed on demand.

A collection is read once and its indexes (BM25, dense vectors) are built the first time an arm asks
for them, so a server that never serves `retrieve` pays nothing, and the bm25, dense and hybrid arms
share one copy of the passages.
"""

from __future__ import annotations

import functools
import logging
import re
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

TEXT_SUFFIXES = frozenset({".md", ".markdown", ".txt", ".rst"})
MAX_PASSAGE_CHARS = 1200
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.*)$", re.MULTILINE)


@dataclass(frozen=True)
class Document:
    id: str
    text: str
    metadata: dict[str, Any]


def split_passages(text: str, max_chars: int = MAX_PASSAGE_CHARS) -> list[str]:
    """Paragraphs packed greedily up to `max_chars`; a longer paragraph is cut on whitespace."""
    passages: list[str] = []
    current = ""
    for paragraph in (p.strip() for p in re.split(r"\n\s*\n", text)):
        if not paragraph:
            continue
        while len(paragraph) > max_chars:
            cut = paragraph.rfind(" ", 0, max_chars)
            cut = cut if cut > max_chars // 2 else max_chars
            if current:
                passages.append(current)
                current = ""
            passages.append(paragraph[:cut].strip())
            paragraph = paragraph[cut:].strip()
        if current and len(current) + len(paragraph) + 2 > max_chars:
            passages.append(current)
            current = ""
        current = f"{current}\n\n{paragraph}" if current else paragraph
    if current:
        passages.append(current)
    return passages


def read_folder(name: str, root: Path) -> list[Document]:
    documents: list[Document] = []
    for path in sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in TEXT_SUFFIXES):
        text = path.read_text(encoding="utf-8", errors="replace")
        heading = _HEADING.search(text)
        title = heading.group(1).strip() if heading else path.stem
        relative = path.relative_to(root).as_posix()
        for i, passage in enumerate(split_passages(text)):
            documents.append(
                Document(
                    id=f"{relative}#{i}",
                    text=passage,
                    metadata={"collection": name, "path": relative, "title": title, "chunk": i},
                )
            )
    return documents


@dataclass
class Collection:
    """One named folder. Indexes are built lazily and guarded by a lock (retrievers run in threads)."""

    name: str
    root: Path
    _documents: list[Document] | None = field(default=None, repr=False)
    _bm25: Any = field(default=None, repr=False)
    _vectors: np.ndarray | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def documents(self) -> list[Document]:
        if self._documents is not None:  # built once, never replaced: no lock (an index build holds it)
            return self._documents
        with self._lock:
            if self._documents is None:
                self._documents = read_folder(self.name, self.root)
            return self._documents

    @property
    def bm25_ready(self) -> bool:
        return self._bm25 is not None

    def bm25(self) -> Any:
        if self._bm25 is not None:  # the event loop ranks on a built index: it must never wait on the lock
            return self._bm25
        documents = self.documents
        with self._lock:
            if self._bm25 is None:
                bm25s = import_bm25s()
                index = bm25s.BM25()
                if documents:
                    corpus = [d.text for d in documents]
                    index.index(
                        bm25s.tokenize(corpus, stopwords="en", show_progress=False), show_progress=False
                    )
                self._bm25 = index
            return self._bm25

    @property
    def vectors_ready(self) -> bool:
        return self._vectors is not None

    def vectors(self) -> np.ndarray:
        documents = self.documents
        with self._lock:
            if self._vectors is None:
                from providers.retrieve.embedder import embed

                self._vectors = embed([d.text for d in documents])
            return self._vectors


@functools.cache
def import_bm25s() -> Any:
    """bm25s, imported on first use. It sets its own logger to DEBUG when imported, which put a
    "Building index" line on every host's log; its warnings and errors still come through."""
    import bm25s

    logging.getLogger("bm25s").setLevel(logging.WARNING)
    return bm25s


class CollectionLibrary:
    """The collections a server knows, by name; the first one is the default."""

    def __init__(self, folders: Iterable[tuple[str, Path]] = ()) -> None:
        self._collections = {name: Collection(name, Path(root)) for name, root in folders}

    def names(self) -> list[str]:
        return list(self._collections)

    def __iter__(self) -> Iterator[Collection]:
        return iter(list(self._collections.values()))

    @property
    def default(self) -> str | None:
        return next(iter(self._collections), None)

    def get(self, name: str) -> Collection | None:
        return self._collections.get(name)
