"""Text files → passages: what a folder collection holds before any index is built.

A file is split into passages of at most `MAX_PASSAGE_CHARS` (paragraphs packed greedily), and each
passage is one document with an id `path#chunk`, so an answer points back at the file it came from.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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


def text_files(root: Path) -> list[Path]:
    """The collection's files under `root`, in a stable order (their relative paths, sorted)."""
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in TEXT_SUFFIXES)


def title_and_passages(text: str, fallback_title: str) -> tuple[str, list[str]]:
    """The first Markdown heading (else `fallback_title`, the file's stem) and the passages."""
    heading = _HEADING.search(text)
    return (heading.group(1).strip() if heading else fallback_title), split_passages(text)


def file_documents(collection: str, path: str, title: str, passages: list[str]) -> list[Document]:
    """One file's passages as documents, numbered in file order."""
    return [
        Document(
            id=f"{path}#{i}",
            text=passage,
            metadata={"collection": collection, "path": path, "title": title, "chunk": i},
        )
        for i, passage in enumerate(passages)
    ]


def read_folder(name: str, root: Path) -> list[Document]:
    """Every passage of every text file under `root` (no index, no cache): the reference reading."""
    documents: list[Document] = []
    for path in text_files(root):
        title, passages = title_and_passages(path.read_text(encoding="utf-8", errors="replace"), path.stem)
        documents.extend(file_documents(name, path.relative_to(root).as_posix(), title, passages))
    return documents
