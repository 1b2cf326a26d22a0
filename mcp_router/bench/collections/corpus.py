"""The folder the benchmark indexes: SciFact abstracts, one `.txt` file each, in the work folder.

The corpus is read in place from `$MCP_ROUTER_DATA/scifact` (never copied into the repo) and written
as `# {title}\n\n{text}\n`, the shape of a user's notes folder: a heading the indexer takes as the
title, then the abstract. The test queries give the calls varied text, so no answer comes from a
cache and every arm's ranking is exercised.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from pathlib import Path

from mcp_router.bench.paths import data_dir

SUFFIX = ".txt"
_UNSAFE = re.compile(r"[^A-Za-z0-9_.\-]")


@dataclass(frozen=True)
class Abstract:
    doc_id: str
    title: str
    text: str

    @property
    def file_name(self) -> str:
        return _UNSAFE.sub("_", self.doc_id) + SUFFIX

    def body(self) -> str:
        return f"# {self.title}\n\n{self.text}\n"


@dataclass(frozen=True)
class Folder:
    path: Path
    files: list[Path]
    bytes: int
    seconds: float

    def describe(self) -> dict[str, object]:
        return {
            "path": str(self.path),
            "files": len(self.files),
            "bytes": self.bytes,
            "write_s": self.seconds,
        }


def scifact_root() -> Path:
    root = data_dir() / "scifact"
    if not (root / "corpus.jsonl").is_file():
        raise FileNotFoundError(f"SciFact corpus not found at {root / 'corpus.jsonl'}")
    return root


def read_abstracts(root: Path, limit: int | None) -> list[Abstract]:
    """The first `limit` abstracts of `corpus.jsonl` (all when None), in file order."""
    abstracts: list[Abstract] = []
    with open(root / "corpus.jsonl", encoding="utf-8") as lines:
        for line in lines:
            if limit is not None and len(abstracts) >= limit:
                break
            if line.strip():
                row = json.loads(line)
                abstracts.append(Abstract(str(row["_id"]), row.get("title", "").strip(), row["text"].strip()))
    return abstracts


def read_queries(root: Path) -> list[str]:
    """The test queries' texts, in file order."""
    with open(root / "queries.jsonl", encoding="utf-8") as lines:
        return [json.loads(line)["text"] for line in lines if line.strip()]


def write_folder(abstracts: list[Abstract], folder: Path) -> Folder:
    """One file per abstract in `folder` (created; it must hold nothing else the indexer would read)."""
    started = time.perf_counter()
    folder.mkdir(parents=True, exist_ok=False)
    files, size = [], 0
    for abstract in abstracts:
        path = folder / abstract.file_name
        data = abstract.body().encode("utf-8")
        path.write_bytes(data)
        files.append(path)
        size += len(data)
    return Folder(folder, files, size, round(time.perf_counter() - started, 3))


def append_sentence(path: Path, label: str) -> str:
    """Append a new sentence to `path` (its content, so its hash, changes); returns the sentence."""
    sentence = f"This sentence was appended by mcp-router bench collections ({label}, {time.time():.3f})."
    with open(path, "a", encoding="utf-8") as f:
        f.write(f"\n{sentence}\n")
    return sentence
