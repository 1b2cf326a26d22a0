"""History embeddings in their own SQLite file, for offline training and benchmarks (a server keeps
them in its router database through `model_log.ModelLog`)."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np


class SqliteCache:
    """Embeddings in their own SQLite file (table `embedding_cache`, reference §11.7), WAL mode so a
    benchmark and a server can read it at once; reopening an existing file keeps its rows."""

    _CHUNK = 500  # SQLite's bound-parameter limit is 999 on old builds

    def __init__(self, path: Path) -> None:
        path = Path(path).expanduser()
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode = WAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS embedding_cache (embedder_id TEXT NOT NULL, text_hash TEXT NOT NULL, "
            "dim INTEGER NOT NULL, vec BLOB NOT NULL, PRIMARY KEY (embedder_id, text_hash))"
        )

    def get_many(self, embedder_id: str, hashes: Sequence[str]) -> dict[str, np.ndarray]:
        found: dict[str, np.ndarray] = {}
        unique = list(dict.fromkeys(hashes))
        with self._lock:
            for start in range(0, len(unique), self._CHUNK):
                chunk = unique[start : start + self._CHUNK]
                marks = ",".join("?" * len(chunk))
                rows = self._db.execute(
                    f"SELECT text_hash, dim, vec FROM embedding_cache WHERE embedder_id = ? "
                    f"AND text_hash IN ({marks})",
                    [embedder_id, *chunk],
                ).fetchall()
                for h, dim, blob in rows:
                    vector = np.frombuffer(blob, dtype=np.float32)
                    if vector.shape != (dim,):
                        raise ValueError(
                            f"{self.path}: cached vector {h} has {vector.size} values, expected {dim}"
                        )
                    found[h] = vector.copy()
        return found

    def put_many(self, embedder_id: str, items: Mapping[str, np.ndarray]) -> None:
        rows = [
            (embedder_id, h, int(np.asarray(v).size), np.asarray(v, dtype=np.float32).tobytes())
            for h, v in items.items()
        ]
        with self._lock:
            self._db.execute("BEGIN")
            self._db.executemany("INSERT OR REPLACE INTO embedding_cache VALUES (?, ?, ?, ?)", rows)
            self._db.execute("COMMIT")

    def close(self) -> None:
        self._db.close()
