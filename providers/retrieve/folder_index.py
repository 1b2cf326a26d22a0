"""The on-disk index of one folder collection: each file's passages, its MiniLM vectors, and BM25.

Everything is keyed by file *content* (sha-256), so a server start, `mcp-router index` or another
process reuses what was built before, and an edited file is the only one read, split and embedded
again (a renamed file keeps its vectors). BM25's statistics are corpus-wide, so its index is rebuilt
from the stored passages whenever the set of files changes; that takes about a second for 12,000
passages, against minutes of embedding.

Layout of an index folder (one per collection, named after the collection and its root's path):
- `files.json`: per file its path, size, mtime, sha-256, title and passages;
- `dense.npz`: the vectors, stacked, with each file's sha-256 and row count;
- `lexical/`: the bm25s index, with the digest of the file list it was built from.
Each is replaced atomically (written beside, then renamed), so a reader never sees half of one, and
a crash costs at most the work since the last save.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from providers.retrieve.documents import text_files, title_and_passages

FORMAT = 1
MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"  # vectors are reused only for the same model
INDEX_DIR_ENV = "MCP_ROUTER_INDEX_DIR"


def default_index_root() -> Path:
    """`$MCP_ROUTER_INDEX_DIR`, else the user's cache folder: indexes are derived data, safe to delete."""
    chosen = os.environ.get(INDEX_DIR_ENV)
    if chosen:
        return Path(chosen).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("mcp-router")) / "indexes"


def index_folder(index_root: Path, name: str, root: Path) -> Path:
    """The folder holding `name`'s index: two collections of one name on different folders differ."""
    digest = hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:12]
    return index_root / f"{name}-{digest}"


@dataclass(frozen=True)
class FileRecord:
    path: str  # relative to the collection's root, with forward slashes
    sha256: str
    size: int
    mtime_ns: int
    title: str
    passages: tuple[str, ...]


@dataclass(frozen=True)
class Scan:
    """The folder as it is now, against what the index held."""

    files: tuple[FileRecord, ...]  # every current file, in path order
    changed: tuple[str, ...]  # paths new or with new content: read and split again
    removed: tuple[str, ...]

    @property
    def digest(self) -> str:
        """Names the file set: an index built from the same digest holds the same passages."""
        return files_digest(self.files)


def files_digest(files: Iterable[FileRecord]) -> str:
    h = hashlib.sha256(f"format {FORMAT}\n".encode())
    for record in files:
        h.update(f"{record.path}\0{record.sha256}\n".encode())
    return h.hexdigest()


def scan(root: Path, known: dict[str, FileRecord]) -> Scan:
    """Stat every file; read and hash only those whose size or mtime moved, and split only those
    whose content did. A missing root is an empty collection (the user may create it later)."""
    files: list[FileRecord] = []
    changed: list[str] = []
    present = text_files(root) if root.is_dir() else []
    for path in present:
        relative = path.relative_to(root).as_posix()
        try:
            stat = path.stat()
            old = known.get(relative)
            if old is not None and old.size == stat.st_size and old.mtime_ns == stat.st_mtime_ns:
                files.append(old)
                continue
            data = path.read_bytes()
        except OSError:  # removed or unreadable between the listing and now: not part of this scan
            continue
        sha = hashlib.sha256(data).hexdigest()
        if old is not None and old.sha256 == sha:  # touched, not changed
            files.append(FileRecord(relative, sha, stat.st_size, stat.st_mtime_ns, old.title, old.passages))
            continue
        title, passages = title_and_passages(data.decode("utf-8", errors="replace"), path.stem)
        files.append(FileRecord(relative, sha, stat.st_size, stat.st_mtime_ns, title, tuple(passages)))
        changed.append(relative)
    current = {f.path for f in files}
    removed = tuple(sorted(p for p in known if p not in current))
    return Scan(files=tuple(files), changed=tuple(changed), removed=removed)


class IndexFiles:
    """Reads and writes one collection's index folder. Unreadable or foreign files read as absent:
    the index is rebuilt, never trusted half-way."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._seen: tuple[int | None, ...] | None = None  # the saved state this process last knew

    def changed_on_disk(self) -> bool:
        """Whether another process saved part of the index since this one last read or wrote it."""
        return self._stamps() != self._seen

    def _stamps(self) -> tuple[int | None, ...]:
        """The modification times of the three parts (None: absent)."""
        stamps: list[int | None] = []
        for part in ("files.json", "dense.npz", "lexical/digest"):
            try:
                stamps.append((self.folder / part).stat().st_mtime_ns)
            except OSError:
                stamps.append(None)
        return tuple(stamps)

    def _mtime(self) -> float | None:
        try:
            return (self.folder / "files.json").stat().st_mtime
        except OSError:
            return None

    # ---------------------------------------------------------------------------------------- files

    def saved_at(self) -> float:
        """When the file list was last saved (the age of the index as loaded), else now."""
        mtime = self._mtime()
        return time.time() if mtime is None else mtime

    def load_files(self) -> dict[str, FileRecord]:
        self._seen = self._stamps()
        try:
            data = json.loads((self.folder / "files.json").read_text(encoding="utf-8"))
            if data.get("format") != FORMAT:
                return {}
            records = [FileRecord(**{**row, "passages": tuple(row["passages"])}) for row in data["files"]]
        except (OSError, ValueError, KeyError, TypeError):
            return {}
        return {r.path: r for r in records}

    def save_files(self, files: Sequence[FileRecord]) -> None:
        payload = {"format": FORMAT, "files": [asdict(f) for f in files]}
        self._write(self.folder / "files.json", json.dumps(payload, ensure_ascii=False).encode("utf-8"))
        self._seen = self._stamps()

    # ---------------------------------------------------------------------------------------- dense

    def load_vectors(self) -> dict[str, np.ndarray]:
        """Each file's vectors by its content's sha-256."""
        try:
            with np.load(self.folder / "dense.npz", allow_pickle=False) as data:
                if str(data["model"]) != MODEL_ID:
                    return {}
                vectors, shas, counts = data["vectors"], data["shas"], data["counts"]
        except (OSError, ValueError, KeyError):
            return {}
        if int(counts.sum()) != len(vectors):
            return {}
        out: dict[str, np.ndarray] = {}
        start = 0
        for sha, count in zip(shas.tolist(), counts.tolist(), strict=True):
            out[sha] = vectors[start : start + count]
            start += count
        return out

    def save_vectors(self, by_sha: dict[str, np.ndarray], dimension: int) -> None:
        shas = list(by_sha)
        blocks = [by_sha[s] for s in shas]
        vectors = np.concatenate(blocks) if blocks else np.zeros((0, dimension), dtype=np.float32)
        self.folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=".dense-", suffix=".npz")
        try:
            with os.fdopen(fd, "wb") as out:
                np.savez(
                    out,
                    model=np.array(MODEL_ID),
                    vectors=vectors.astype(np.float32, copy=False),
                    shas=np.array(shas, dtype="U64"),
                    counts=np.array([len(b) for b in blocks], dtype=np.int64),
                )
            os.replace(tmp, self.folder / "dense.npz")
            self._seen = self._stamps()
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    # -------------------------------------------------------------------------------------- lexical

    def load_lexical(self, digest: str) -> Any | None:
        """The saved bm25s index if it was built from the file set `digest`, else None."""
        folder = self.folder / "lexical"
        try:
            if (folder / "digest").read_text(encoding="ascii").strip() != digest:
                return None
            from providers.retrieve.indexes import load_bm25

            return load_bm25(folder)
        except (OSError, ValueError, KeyError):
            return None

    def save_lexical(self, index: Any, digest: str) -> None:
        from providers.retrieve.indexes import save_bm25

        self.folder.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=self.folder, prefix=".lexical-"))
        try:
            save_bm25(index, staging)
            (staging / "digest").write_text(digest, encoding="ascii")
            target = self.folder / "lexical"
            if target.exists():
                shutil.rmtree(target)
            os.replace(staging, target)
            self._seen = self._stamps()
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise

    # -------------------------------------------------------------------------------------- helpers

    def clean_staging(self) -> None:
        """Remove what a killed writer left half-written. Only the holder of the index lock writes,
        so under it every staging file is an orphan."""
        if not self.folder.is_dir():
            return
        for leftover in self.folder.glob(".*-*"):
            if leftover.is_dir():
                shutil.rmtree(leftover, ignore_errors=True)
            else:
                leftover.unlink(missing_ok=True)

    def _write(self, path: Path, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
