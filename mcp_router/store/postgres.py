"""The PostgreSQL backend: one database shared by router replicas on several machines.

A small pool of autocommit connections (psycopg 3 and psycopg_pool). Reads run in autocommit; a write
transaction checks one connection out, opens `BEGIN`, and commits or rolls back at the end.

Every write transaction first takes one transaction-scoped advisory lock, the counterpart of SQLite's
`BEGIN IMMEDIATE`: writers of all replicas take turns. Without it, two batches of the group writer
that touch the same rows in a different order (tool A's counters then tool B's in one, the reverse in
the other, with the event counter in between) deadlock, and PostgreSQL aborts one of them. Almost every
write takes the event counter's row lock anyway, so writers were already taking turns; the lock only
makes the turn start before the first row is touched. It also serialises the migrations of replicas
that start together against an empty database.

The store's SQL uses `?` placeholders; they are translated to psycopg's `%s` here.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool, PoolTimeout

from mcp_router.store.records import StoreBusy

CONNECT_TIMEOUT_S = 5  # libpq's connect_timeout, unless the URL or PGCONNECT_TIMEOUT sets one
POOL_MAX_SIZE = 4
POOL_WAIT_S = 10.0  # how long a checkout waits for a free connection
WRITE_LOCK_KEY = 0x6D63_705F_7274_7200  # pg_advisory_xact_lock key of router writes ("mcp_rtr\0")


@functools.lru_cache(maxsize=1024)
def to_pyformat(sql: str) -> str:
    """`?` placeholders as psycopg's `%s`, a literal `%` escaped as `%%`."""
    return sql.replace("%", "%%").replace("?", "%s")


def display_url(url: str) -> str:
    """The URL without its password (user info or `password=` query parameter), for people and logs."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, hosts = netloc.rsplit("@", 1)
        netloc = f"{userinfo.split(':', 1)[0]}@{hosts}"
    query = urlencode([(k, v) for k, v in parse_qsl(parts.query) if k.lower() != "password"])
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


class PostgresConnection:
    """A connection as the store's SQL sees it: `?` placeholders, rows as dicts."""

    dialect = "postgresql"

    def __init__(self, conn: psycopg.Connection[dict[str, Any]]) -> None:
        self.conn = conn

    @staticmethod
    def _run(cursor: psycopg.Cursor[dict[str, Any]], sql: str, params: Sequence[Any]) -> None:
        if params:
            cursor.execute(to_pyformat(sql), params)
        else:  # no parameters: psycopg sends the text as it is (no `%` processing)
            cursor.execute(sql)

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        with self.conn.cursor() as cursor:
            self._run(cursor, sql, params)
            return cursor.rowcount

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        with self.conn.cursor() as cursor:
            cursor.executemany(to_pyformat(sql), rows)

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        with self.conn.cursor() as cursor:
            self._run(cursor, sql, params)
            if cursor.description is None:
                return []
            rows = cursor.fetchall()
        for row in rows:  # bytea is bytes in text mode; a binary-mode loader would give memoryview
            for key, value in row.items():
                if isinstance(value, memoryview):
                    row[key] = bytes(value)
        return rows

    def tables(self) -> set[str]:
        return {
            r["table_name"]
            for r in self.query(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
            )
        }


class PostgresBackend:
    dialect = "postgresql"
    commits_on_loop = False  # a commit is a network round trip: always on the writer thread
    on_disk = False  # no SQLite file, no WAL to checkpoint

    def __init__(self, url: str, max_size: int = POOL_MAX_SIZE) -> None:
        self.url = url
        self.display = display_url(url)
        self.lock = threading.RLock()  # the Backend interface; reads and writes do not need it
        password = self._password(url)
        kwargs: dict[str, Any] = {"autocommit": True, "row_factory": dict_row}
        if not self._sets_connect_timeout(url):
            kwargs["connect_timeout"] = CONNECT_TIMEOUT_S
        self._probe(kwargs, password)
        self.pool: ConnectionPool[psycopg.Connection[dict[str, Any]]] = ConnectionPool(
            url,
            kwargs=kwargs,
            min_size=1,
            max_size=max_size,
            open=True,
            name="mcp-router-store",
            timeout=POOL_WAIT_S,
        )
        try:
            self.pool.wait(timeout=POOL_WAIT_S)
        except PoolTimeout:
            self.pool.close(timeout=1.0)
            raise self._unreachable("no connection within the pool's start-up timeout", password) from None

    # -- connecting ------------------------------------------------------------------------------

    @staticmethod
    def _password(url: str) -> str | None:
        try:
            return psycopg.conninfo.conninfo_to_dict(url).get("password") or os.environ.get("PGPASSWORD")
        except psycopg.Error:
            return None

    @staticmethod
    def _sets_connect_timeout(url: str) -> bool:
        if os.environ.get("PGCONNECT_TIMEOUT"):
            return True
        try:
            return "connect_timeout" in psycopg.conninfo.conninfo_to_dict(url)
        except psycopg.Error:
            return False

    def _probe(self, kwargs: dict[str, Any], password: str | None) -> None:
        """One connection up front, so an unreachable server fails now with libpq's reason, instead
        of a pool timeout that has none."""
        try:
            with psycopg.connect(self.url, **kwargs) as conn:
                conn.execute("SELECT 1")
        except psycopg.Error as exc:
            raise self._unreachable(str(exc).strip() or type(exc).__name__, password) from None

    def _unreachable(self, reason: str, password: str | None) -> RuntimeError:
        if password:
            reason = reason.replace(password, "***")
        return RuntimeError(f"cannot reach the router database {self.display}: {reason}")

    # -- the Backend interface -------------------------------------------------------------------

    @contextmanager
    def transaction(self, wait: bool = True) -> Iterator[PostgresConnection]:
        """One transaction holding the router's write lock: committed when the block ends, rolled back
        when it raises. Without `wait`, `StoreBusy` (and nothing written) when another writer holds
        that lock."""
        with self.pool.connection() as conn, conn.transaction():
            db = PostgresConnection(conn)
            if wait:
                db.execute(f"SELECT pg_advisory_xact_lock({WRITE_LOCK_KEY})")
            elif not db.query(f"SELECT pg_try_advisory_xact_lock({WRITE_LOCK_KEY}) AS locked")[0]["locked"]:
                raise StoreBusy("another writer holds the router database's write lock")
            yield db

    @contextmanager
    def read(self) -> Iterator[PostgresConnection]:
        with self.pool.connection() as conn:
            yield PostgresConnection(conn)

    def close(self) -> None:
        self.pool.close(timeout=5.0)
