"""`retrieve` over named collections, through a real in-process `mcp.Client` and the real server.

Folder collections are searched by the local `bm25` arm; remote collections by the real Qdrant, Chroma,
Elasticsearch and OpenSearch adapters, whose HTTP answers are the stores' documented JSON bodies
(recorded in test_retrieve_remote.py) served by respx. The query embedder is the only swap, as there.
Each call is served only by the arms of its collection: a remote collection never falls back to a
local arm, nor a folder collection to a remote store.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
from mcp import Client

from mcp_router.config import load_config
from mcp_router.serving.server import create_server
from providers.retrieve import _remote
from tests.test_retrieve_remote import (
    CHROMA,
    CHROMA_DB,
    CHROMA_ID,
    OS,
    QDRANT,
    chroma_collection_body,
    chroma_query_body,
    es_search_body,
    fake_embed,
    qdrant_query_body,
)

pytestmark = pytest.mark.anyio
ES = "http://es-shared.test:9200"
UNSET_KEY = "MCP_ROUTER_TEST_ARCHIVE_KEY"  # never set: the archive's only provider is off
REMOTE_ARMS = {"qdrant", "es", "chroma", "os-wiki"}


def collections_config(notes_dir: Path, retrieve_extra: str = "") -> str:
    """Two folder collections (docs, notes) for `bm25`; `papers` (Qdrant's `scifact_v2`); `shared`,
    served by both Qdrant and Elasticsearch under their own names; `kb` (Chroma); `wiki`, named after
    OpenSearch's pinned index; `archive`, whose only provider is disabled."""
    return f"""
auto_providers = false

[collections.docs]
path = "builtin:sample_docs"

[collections.notes]
path = "{notes_dir}"

[tools.retrieve]
max_attempts = 3
timeout_s = 20
{retrieve_extra}

[[tools.retrieve.providers]]
name = "bm25"
type = "bm25"

[[tools.retrieve.providers]]
name = "qdrant"
type = "qdrant"
base_url = "{QDRANT}"
collections = {{ papers = "scifact_v2", shared = "shared_q" }}

[[tools.retrieve.providers]]
name = "es"
type = "elasticsearch"
base_url = "{ES}"
collections = {{ shared = "shared-idx" }}

[[tools.retrieve.providers]]
name = "chroma"
type = "chroma"
base_url = "{CHROMA}"
collections = ["kb"]

[[tools.retrieve.providers]]
name = "os-wiki"
type = "opensearch"
base_url = "{OS}"
options = {{ index = "wiki" }}

[[tools.retrieve.providers]]
name = "qdrant-archive"
type = "qdrant"
base_url = "{QDRANT}"
api_key_env = "{UNSET_KEY}"
collections = ["archive"]

[judge]
enabled = false
"""


@pytest.fixture
def stores(monkeypatch: pytest.MonkeyPatch) -> Iterator[respx.MockRouter]:
    """The remote stores' endpoints, each answering with its documented success body."""
    monkeypatch.setattr(_remote, "embed_texts", fake_embed)
    monkeypatch.delenv(UNSET_KEY, raising=False)
    with respx.mock(assert_all_called=False) as router:
        router.post(f"{QDRANT}/collections/scifact_v2/points/query", name="papers").mock(
            return_value=httpx.Response(200, json=qdrant_query_body())
        )
        router.post(f"{QDRANT}/collections/shared_q/points/query", name="shared-qdrant").mock(
            return_value=httpx.Response(200, json=qdrant_query_body())
        )
        router.post(f"{ES}/shared-idx/_search", name="shared-es").mock(
            return_value=httpx.Response(200, json=es_search_body())
        )
        router.get(f"{CHROMA_DB}/collections/kb", name="kb-lookup").mock(
            return_value=httpx.Response(200, json=chroma_collection_body())
        )
        router.post(f"{CHROMA_DB}/collections/{CHROMA_ID}/query", name="kb").mock(
            return_value=httpx.Response(200, json=chroma_query_body())
        )
        router.post(f"{OS}/wiki/_search", name="wiki").mock(
            return_value=httpx.Response(200, json=es_search_body(1))
        )
        yield router


@asynccontextmanager
async def serve(tmp_path: Path, text: str) -> AsyncIterator[Client]:
    path = tmp_path / "router.toml"
    path.write_text(text)
    server = create_server(load_config(path), tmp_path / "router.db")
    async with Client(server, cache=None) as client:
        yield client


@pytest.fixture
async def client(tmp_path: Path, notes_dir: Path, stores: respx.MockRouter) -> AsyncIterator[Client]:
    async with serve(tmp_path, collections_config(notes_dir)) as c:
        yield c


async def retrieve(client: Client, **arguments: Any) -> dict[str, Any]:
    result = await client.call_tool("retrieve", {"query": "where is mars", **arguments})
    assert not result.is_error, result.content[0].text
    return result.structured_content


async def error_of(client: Client, **arguments: Any) -> str:
    result = await client.call_tool("retrieve", {"query": "where is mars", **arguments})
    assert result.is_error, result.structured_content
    return result.content[0].text


async def read_json(client: Client, uri: str) -> dict[str, Any]:
    return json.loads((await client.read_resource(uri)).contents[0].text)


async def last_call(client: Client) -> dict[str, Any]:
    return (await read_json(client, "router://calls/recent"))["calls"][0]


# ---------------------------------------------------------------------------------------------- remote


async def test_a_remote_collection_is_searched_in_its_store_under_the_remote_name(
    client: Client, stores: respx.MockRouter
) -> None:
    data = await retrieve(client, collection="papers", k=2)
    assert data["collection"] == "papers" and data["provider"] == "qdrant"
    assert [(p["id"], p["text"], p["score"]) for p in data["passages"]] == [
        ("1", "Mars is the fourth planet from the Sun.", 0.875),
        ("9b2c6f3e-0a57-4a1f-8d7e-1b2c3d4e5f60", "", 0.25),
    ]
    assert data["passages"][0]["metadata"] == {"source": "space/mars.md"}
    body = json.loads(stores["papers"].calls.last.request.content)
    assert body == {
        "query": pytest.approx(fake_embed(["where is mars"])[0].tolist()),
        "limit": 2,
        "with_payload": True,
    }
    call = await last_call(client)
    assert [a["provider"] for a in call["attempts"]] == ["qdrant"]
    excluded = call["decision"]["excluded"]
    for arm in ("bm25", "es", "chroma", "os-wiki"):
        assert excluded[arm] == "does not serve collection 'papers'"
    assert call["request"]["collection"] == "papers"


async def test_chroma_and_opensearch_collections_reach_their_stores(
    client: Client, stores: respx.MockRouter
) -> None:
    kb = await retrieve(client, collection="kb", k=2)
    assert kb["provider"] == "chroma"
    assert [(p["id"], p["score"]) for p in kb["passages"]] == [("mars-1", 0.875), ("cats-1", 0.25)]
    assert stores["kb-lookup"].call_count == 1 and stores["kb"].call_count == 1
    wiki = await retrieve(client, collection="wiki")  # named after the pinned index
    assert wiki["provider"] == "os-wiki"
    assert [(p["id"], p["metadata"]) for p in wiki["passages"]] == [
        ("mars-1", {"title": "Mars", "source": "mars.md"})
    ]
    assert json.loads(stores["wiki"].calls.last.request.content)["query"]["multi_match"]["query"] == (
        "where is mars"
    )


async def test_a_failing_remote_store_never_falls_back_to_a_local_arm(
    client: Client, stores: respx.MockRouter
) -> None:
    stores["papers"].mock(return_value=httpx.Response(503, json={"status": {"error": "overloaded"}}))
    text = await error_of(client, collection="papers")
    assert "every `retrieve` provider failed" in text and "qdrant: unavailable" in text
    assert "bm25" not in text
    call = await last_call(client)
    assert call["status"] == "failed" and [a["provider"] for a in call["attempts"]] == ["qdrant"]
    assert call["decision"]["excluded"]["bm25"] == "does not serve collection 'papers'"


async def test_the_arms_of_one_collection_compete_and_fall_back_among_themselves(
    client: Client, stores: respx.MockRouter
) -> None:
    stores["shared-qdrant"].mock(return_value=httpx.Response(503, json={"status": {"error": "down"}}))
    for _ in range(3):
        data = await retrieve(client, collection="shared")
        assert data["provider"] == "es"
        call = await last_call(client)
        assert {a["provider"] for a in call["attempts"]} <= {"qdrant", "es"}
        assert "es" in call["decision"]["order"] and set(call["decision"]["order"]) <= {"qdrant", "es"}
    assert stores["shared-qdrant"].call_count >= 1  # it was tried: both arms of `shared` compete
    assert [p["id"] for p in data["passages"]] == ["mars-1", "cats-1"]


async def test_a_folder_collection_is_never_sent_to_a_remote_store(
    client: Client, stores: respx.MockRouter
) -> None:
    data = await retrieve(client, query="tomatoes sun watering", collection="notes", k=1)
    assert data["provider"] == "bm25" and data["passages"][0]["id"] == "garden.md#0"
    excluded = (await last_call(client))["decision"]["excluded"]
    assert {arm for arm, why in excluded.items() if why == "does not serve collection 'notes'"} == REMOTE_ARMS
    assert all(route.call_count == 0 for route in stores.routes)


# ---------------------------------------------------------------------------------------------- names


async def test_no_collection_searches_the_first_folder_collection(
    client: Client, stores: respx.MockRouter
) -> None:
    data = await retrieve(client, query="Claude Desktop configuration")
    assert data["collection"] == "docs" and data["provider"] == "bm25"
    assert all(route.call_count == 0 for route in stores.routes)


async def test_the_configured_default_collection_may_be_remote(
    tmp_path: Path, notes_dir: Path, stores: respx.MockRouter
) -> None:
    async with serve(tmp_path, collections_config(notes_dir, 'default_collection = "papers"')) as client:
        data = await retrieve(client)
        assert data["collection"] == "papers" and data["provider"] == "qdrant"
        config = await read_json(client, "router://config")
    assert config["default_collection"] == "papers"


async def test_an_unknown_collection_lists_every_known_one_and_writes_nothing(
    client: Client, tmp_path: Path
) -> None:
    text = await error_of(client, collection="nope")
    assert text.endswith(
        "unknown collection 'nope'; use one of: docs, notes, papers, shared, kb, wiki, archive"
    )
    assert (await read_json(client, "router://calls/recent"))["calls"] == []


async def test_a_collection_whose_providers_are_all_off_says_why(client: Client) -> None:
    text = await error_of(client, collection="archive")
    assert text.endswith(
        "no enabled provider serves collection 'archive' "
        f"(qdrant-archive: environment variable {UNSET_KEY} is not set)"
    )
    assert (await read_json(client, "router://calls/recent"))["calls"] == []


async def test_router_config_lists_the_catalogue(client: Client) -> None:
    config = await read_json(client, "router://config")
    collections = config["collections"]
    assert list(collections) == ["docs", "notes", "papers", "shared", "kb", "wiki", "archive"]
    assert collections["notes"]["kind"] == "folder" and collections["notes"]["path"].endswith("notes")
    assert collections["shared"] == {
        "kind": "remote",
        "path": None,
        "providers": ["qdrant", "es"],
        "disabled_providers": [],
    }
    assert collections["archive"]["providers"] == [] and collections["archive"]["disabled_providers"] == [
        "qdrant-archive"
    ]
    assert config["default_collection"] == "docs"


async def test_the_tool_description_names_the_remote_stores(client: Client) -> None:
    tools = {t.name: t for t in (await client.list_tools()).tools}
    description = tools["retrieve"].description
    assert "remote stores" in description and "local folders" in description


# ---------------------------------------------------------------------------------------------- stats


async def test_stats_are_kept_per_collection_and_arm(client: Client, stores: respx.MockRouter) -> None:
    papers = await retrieve(client, collection="papers")
    await retrieve(client, collection="papers")
    await retrieve(client, query="sourdough", collection="notes")
    feedback = await client.call_tool("feedback", {"call_id": papers["call_id"], "score": 0.5})
    assert not feedback.is_error
    stats = await read_json(client, "router://stats/retrieve")
    collections = stats["collections"]
    assert list(collections) == ["docs", "notes", "papers", "shared", "kb", "wiki", "archive"]
    assert collections["papers"]["kind"] == "remote" and collections["notes"]["kind"] == "folder"
    qdrant = collections["papers"]["arms"]["qdrant"]
    assert (qdrant["calls"], qdrant["ok"], qdrant["success_rate"]) == (2, 2, 1.0)
    assert (qdrant["quality_mean"], qdrant["quality_n"]) == (0.5, 1)
    assert qdrant["latency_mean_s"] is not None and qdrant["latency_mean_s"] >= 0
    assert list(collections["papers"]["arms"]) == ["qdrant"]  # only its arms: bm25 never served it
    bm25 = collections["notes"]["arms"]["bm25"]
    assert (bm25["calls"], bm25["ok"], bm25["quality_n"], bm25["quality_mean"]) == (1, 1, 0, None)
    assert collections["docs"]["arms"] == {
        "bm25": {
            "calls": 0,
            "ok": 0,
            "success_rate": None,
            "latency_mean_s": None,
            "quality_mean": None,
            "quality_n": 0,
        }
    }
    assert list(collections["shared"]["arms"]) == ["qdrant", "es"]
    assert collections["archive"]["arms"] == {}
    assert stats["arms"]["qdrant"]["calls"] == 2  # the arm's totals over all its collections
    everything = await read_json(client, "router://stats")
    assert everything["tools"]["retrieve"]["collections"] == collections
