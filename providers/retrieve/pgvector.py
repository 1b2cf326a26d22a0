"""pgvector: cosine kNN over a PostgreSQL table with a `vector(384)` column, queried with MiniLM embeddings.

Config: `base_url` is the DSN (`postgresql://user@host:port/db`); a password may come from the arm's API
key env var (`spec.api_key`). Options: `table` (default: the collection's remote name from config
`collections = { ours = "table" }`, else the collection's own name), `id_column`,
`text_column`, `embedding_column` (defaults `id`, `body`, `embedding`). Identifiers are validated and
quoted, never interpolated. Error messages never contain the DSN or the password.

Needs `pip install 'mcp-router[pgvector]'` (psycopg 3 and pgvector-python).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import anyio
import numpy as np

from providers.base import Adapter
from providers.errors import BadRequest, BadResponse, ProviderError, Unavailable
from providers.types import Passage, RetrieveRequest

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_$]{0,62}")
_AUTH_FAILED = re.compile(
    r"authentication failed|no password supplied|fe_sendauth|role \"[^\"]*\" does not exist|"
    r"no pg_hba\.conf entry|permission denied for database",
    re.IGNORECASE,
)
_NO_DATABASE = re.compile(r"database \"[^\"]*\" does not exist", re.IGNORECASE)
_INSTALL_HINT = "install with: pip install 'mcp-router[pgvector]'"


def _default_embed(texts: Sequence[str]) -> np.ndarray:
    from providers.retrieve.embedder import embed_queries

    return embed_queries(texts)


# The query embedder; tests swap in a deterministic function. Must return unit-norm float32 (n, dim).
embed_fn: Callable[[Sequence[str]], np.ndarray] = _default_embed


def _identifier(value: Any, what: str) -> tuple[str, ...]:
    """`name` or `schema.name` as a tuple of validated parts; anything else is a configuration error."""
    if not isinstance(value, str):
        raise ValueError(f"{what} must be a string")
    parts = tuple(value.split("."))
    if len(parts) > 2 or not all(_IDENTIFIER.fullmatch(part) for part in parts):
        raise ValueError(f"{what} {value!r} is not a valid SQL identifier")
    return parts


class PgvectorRetriever(Adapter[RetrieveRequest, list[Passage]]):
    tool = "retrieve"
    type = "pgvector"
    target_option: ClassVar[str] = "table"  # pins the table; else the collection's mapped name

    # ------------------------------------------------------------------------------------------ helpers

    def _secrets(self) -> list[str]:
        secrets = []
        if self.spec.api_key:
            secrets.append(self.spec.api_key.reveal())
        password = self._dsn_fields().get("password")
        if password:
            secrets.append(str(password))
        return [s for s in secrets if s]

    def _dsn_fields(self) -> dict[str, Any]:
        try:
            from psycopg.conninfo import conninfo_to_dict

            return conninfo_to_dict(self.spec.base_url or "")
        except Exception:
            return {}

    def _scrub(self, text: str) -> str:
        """The first line of a driver message with every known secret masked."""
        text = (text or "").strip().splitlines()[0] if (text or "").strip() else "unknown error"
        for secret in self._secrets():
            text = text.replace(secret, "***")
        return re.sub(r"(password\s*=\s*)\S+", r"\1***", text, flags=re.IGNORECASE)

    def _target(self) -> str:
        """`host:port/db` of the DSN, for messages (never the user's password)."""
        fields = self._dsn_fields()
        host = fields.get("host") or fields.get("hostaddr") or "localhost"
        port = fields.get("port") or "5432"
        return f"{host}:{port}/{fields.get('dbname') or fields.get('user') or ''}"

    def _columns(self, request: RetrieveRequest) -> tuple[tuple[str, ...], tuple[str, ...], ...]:
        options = self.spec.options or {}
        try:
            table = _identifier(
                options.get(self.target_option, self.spec.remote_name(request.collection)), "table"
            )
            columns = tuple(
                _identifier(options.get(key, default), key)
                for key, default in (
                    ("id_column", "id"),
                    ("text_column", "body"),
                    ("embedding_column", "embedding"),
                )
            )
        except ValueError as exc:
            raise BadRequest(self.name, str(exc)) from None
        for column in columns:
            if len(column) != 1:
                raise BadRequest(self.name, f"column {'.'.join(column)!r} must not be qualified")
        return (table, *columns)

    # ------------------------------------------------------------------------------------------ call

    async def call(self, request: RetrieveRequest) -> list[Passage]:
        table, id_col, text_col, emb_col = self._columns(request)
        table_name = ".".join(table)
        if not self.spec.base_url:
            raise BadRequest(self.name, "base_url (the PostgreSQL DSN) is not configured")
        try:
            import psycopg
            from pgvector.psycopg import register_vector_async
            from psycopg import errors, sql
            from psycopg.conninfo import conninfo_to_dict
        except ImportError as exc:
            raise Unavailable(self.name, f"{exc}; {_INSTALL_HINT}") from None
        try:
            conninfo_to_dict(self.spec.base_url)
        except psycopg.Error:
            raise BadRequest(self.name, "base_url is not a valid PostgreSQL DSN") from None

        vectors = await anyio.to_thread.run_sync(embed_fn, [request.query])
        query_vector = np.asarray(vectors, dtype=np.float32)[0]

        query = sql.SQL(
            "SELECT {id}, {text}, 1 - ({emb} <=> %s) AS score FROM {table}"
            " WHERE {emb} IS NOT NULL ORDER BY {emb} <=> %s LIMIT %s"
        ).format(
            id=sql.Identifier(*id_col),
            text=sql.Identifier(*text_col),
            emb=sql.Identifier(*emb_col),
            table=sql.Identifier(*table),
        )
        connect_kwargs: dict[str, Any] = {
            "connect_timeout": max(2, math.ceil(self.spec.timeout_s)),
            "autocommit": True,
        }
        if self.spec.api_key:
            connect_kwargs["password"] = self.spec.api_key.reveal()

        rows: list[tuple[Any, ...]] = []
        # Errors are raised only after the `except` blocks: a psycopg exception carries the connection
        # (with its password) in its attributes, so it must not even be the new error's `__context__`.
        error: ProviderError | None = None
        try:
            with anyio.fail_after(self.spec.timeout_s):
                conn = await psycopg.AsyncConnection.connect(self.spec.base_url, **connect_kwargs)
                async with conn:
                    vector_type = True
                    try:
                        await register_vector_async(conn)
                    except psycopg.ProgrammingError:  # "vector type not found in the database"
                        vector_type = False
                    if vector_type:
                        cursor = await conn.execute(query, (query_vector, query_vector, max(0, request.k)))
                        rows = await cursor.fetchall()
                    else:
                        error = BadRequest(
                            self.name, f"the vector extension is not installed in {self._target()}"
                        )
        except TimeoutError:
            error = Unavailable(self.name, f"timed out after {self.spec.timeout_s:g} s")
        except errors.UndefinedTable as exc:
            error = BadRequest(self.name, f"table {table_name!r} does not exist: {self._scrub(str(exc))}")
        except errors.UndefinedColumn as exc:
            error = BadRequest(self.name, f"column missing in table {table_name!r}: {self._scrub(str(exc))}")
        except (errors.SyntaxError, errors.InvalidSchemaName, errors.UndefinedFunction) as exc:
            error = BadRequest(self.name, f"query on table {table_name!r} failed: {self._scrub(str(exc))}")
        except psycopg.OperationalError as exc:
            # libpq reports server-side refusals at connect time without a SQLSTATE: match the text
            sqlstate, text = getattr(exc, "sqlstate", None) or "", str(exc)
            if sqlstate.startswith("28") or _AUTH_FAILED.search(text):
                error = BadRequest(self.name, f"authentication failed for {self._target()}")
            elif sqlstate == "3D000" or _NO_DATABASE.search(text):
                error = BadRequest(self.name, f"database does not exist: {self._target()}")
            else:
                error = Unavailable(self.name, f"cannot connect to {self._target()}: {self._scrub(str(exc))}")
        except psycopg.Error as exc:
            error = BadResponse(self.name, f"query on table {table_name!r} failed: {self._scrub(str(exc))}")
        finally:
            connect_kwargs.pop("password", None)
        if error is not None:
            raise error

        passages = []
        for row in rows:
            if len(row) != 3 or row[2] is None:
                continue
            score = float(row[2])
            if math.isnan(score):
                continue
            passages.append(
                Passage(
                    id=str(row[0]),
                    text="" if row[1] is None else str(row[1]),
                    score=round(score, 6),
                    metadata={"table": table_name},
                )
            )
        return passages
