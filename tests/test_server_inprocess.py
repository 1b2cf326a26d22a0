"""The server through a real in-process `mcp.Client`, in the modern (auto) and legacy (JSON-RPC) modes."""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from mcp import Client, MCPError

from mcp_router.config import load_config
from mcp_router.serving.server import create_server

pytestmark = pytest.mark.anyio
MODES = ["auto", "legacy"]


@pytest.fixture(params=MODES)
async def client(request: pytest.FixtureRequest, config_file: Path, tmp_path: Path) -> AsyncIterator[Client]:
    server = create_server(load_config(config_file), tmp_path / "router.db")
    async with Client(server, mode=request.param, cache=None) as c:
        yield c


def rows(db: Path, table: str) -> int:
    with sqlite3.connect(db) as conn:
        return conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]


def error_text(result) -> str:
    assert result.is_error, result
    return result.content[0].text


async def read_json(client: Client, uri: str) -> dict:
    return json.loads((await client.read_resource(uri)).contents[0].text)


async def test_tools_list_publishes_four_tools_with_schemas_and_annotations(client: Client) -> None:
    tools = {t.name: t for t in (await client.list_tools()).tools}
    assert set(tools) == {"search", "retrieve", "llm_complete", "feedback"}
    for tool in tools.values():
        assert tool.input_schema["type"] == "object" and tool.output_schema is not None
        assert tool.description
    assert tools["search"].input_schema["properties"]["k"]["maximum"] == 20
    assert tools["search"].input_schema["required"] == ["query"]
    assert set(tools["search"].output_schema["properties"]) >= {"results", "provider", "call_id"}
    assert set(tools["llm_complete"].output_schema["properties"]) >= {"text", "model", "usage", "cost_usd"}
    search_hints = tools["search"].annotations.model_dump(by_alias=True, exclude_none=True)
    assert search_hints["readOnlyHint"] is True and search_hints["openWorldHint"] is True
    assert tools["retrieve"].annotations.open_world_hint is False
    assert tools["feedback"].annotations.read_only_hint is False


async def test_retrieve_returns_passages_from_named_collection(client: Client) -> None:
    result = await client.call_tool(
        "retrieve", {"query": "tomatoes sun watering", "k": 2, "collection": "notes"}
    )
    assert not result.is_error, result
    data = result.structured_content
    assert data["collection"] == "notes" and data["provider"] in {"bm25", "hybrid"}
    assert data["passages"][0]["id"] == "garden.md#0"
    assert data["passages"][0]["metadata"]["title"] == "Garden"
    assert re.fullmatch(r"call_[0-9a-f]{16}", data["call_id"])


async def test_retrieve_default_collection_is_first_configured(client: Client) -> None:
    result = await client.call_tool("retrieve", {"query": "Claude Desktop configuration"})
    assert not result.is_error
    assert result.structured_content["collection"] == "docs"
    assert 1 <= len(result.structured_content["passages"]) <= 5


async def test_search_falls_back_from_dead_provider(client: Client, wiki_server) -> None:
    first = (await client.call_tool("search", {"query": "model context protocol", "k": 2})).structured_content
    assert first["provider"] == "wiki-local"
    assert len(first["fallbacks"]) == 1 and first["fallbacks"][0].startswith("wiki-down: unavailable")
    assert first["results"][0] == {
        "title": "Model Context Protocol",
        "url": "https://en.wikipedia.org/wiki/Model_Context_Protocol",
        "snippet": "The Model Context Protocol (MCP) is an open standard & framework",
        "source": "wikipedia",
    }
    assert len(first["results"]) == 2
    # round-robin: the next call starts at the second arm and needs no fallback
    second = (await client.call_tool("search", {"query": "bandits"})).structured_content
    assert second["provider"] == "wiki-local" and second["fallbacks"] == []
    assert wiki_server.requests[-1]["params"]["srsearch"] == ["bandits"]


async def test_llm_complete_reports_progress_and_usage(client: Client) -> None:
    progress: list[float] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append(value)

    result = await client.call_tool(
        "llm_complete",
        {"messages": [{"role": "user", "content": "What is the capital of France?"}], "max_tokens": 12},
        progress_callback=on_progress,
    )
    assert not result.is_error, result
    data = result.structured_content
    assert data["provider"] == "smollm2" and data["model"] == "smollm2-135m"
    assert data["text"] and data["usage"]["completion_tokens"] >= 1 and data["usage"]["prompt_tokens"] > 5
    assert data["cost_usd"] == 0.0
    assert progress and progress == sorted(progress)


async def test_feedback_records_quality_once(client: Client) -> None:
    served = (
        await client.call_tool("retrieve", {"query": "sourdough", "collection": "notes"})
    ).structured_content
    ok = await client.call_tool("feedback", {"call_id": served["call_id"], "score": 0.75, "comment": "good"})
    assert not ok.is_error and ok.structured_content["provider"] == served["provider"]
    stats = await read_json(client, "router://stats/retrieve")
    arm = stats["arms"][served["provider"]]
    assert arm["quality_n"] == 1 and arm["quality_mean"] == 0.75
    again = await client.call_tool("feedback", {"call_id": served["call_id"], "score": 0.1})
    assert "already has feedback" in error_text(again)
    unknown = await client.call_tool("feedback", {"call_id": "call_0000000000000000", "score": 0.5})
    assert "unknown call_id" in error_text(unknown)


@pytest.mark.parametrize(
    ("tool", "arguments", "expected"),
    [
        ("search", {"query": ""}, "query"),
        ("search", {"query": "   "}, "only whitespace"),
        ("search", {"query": "x", "k": 0}, "greater than or equal to 1"),
        ("retrieve", {"query": "x", "k": 21}, "less than or equal to 20"),
        (
            "retrieve",
            {"query": "x", "collection": "nope"},
            "unknown collection 'nope'; use one of: docs, notes",
        ),
        ("llm_complete", {"messages": []}, "at least 1 item"),
        (
            "llm_complete",
            {"messages": [{"role": "robot", "content": "hi"}]},
            "'system', 'user' or 'assistant'",
        ),
        ("llm_complete", {"messages": [{"role": "system", "content": "be brief"}]}, "role 'user'"),
        ("llm_complete", {"messages": "hello"}, "messages"),
        ("llm_complete", {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 0}, "max_tokens"),
        ("feedback", {"call_id": "42", "score": 0.5}, "call_id"),
        ("feedback", {"call_id": "call_0000000000000000", "score": 1.5}, "less than or equal to 1"),
    ],
)
async def test_bad_input_is_a_clear_error_and_writes_nothing(
    client: Client, tmp_path: Path, tool: str, arguments: dict, expected: str
) -> None:
    text = error_text(await client.call_tool(tool, arguments))
    assert expected in text
    assert rows(tmp_path / "router.db", "calls") == 0
    assert rows(tmp_path / "router.db", "feedback") == 0


async def test_unknown_tool_stats_resource_is_not_found(client: Client) -> None:
    with pytest.raises(MCPError) as info:
        await client.read_resource("router://stats/nope")
    assert info.value.code == -32602
    assert "unknown tool 'nope'; use one of: search, retrieve, llm_complete" in info.value.message


async def test_every_resource_reads_back_valid_json(client: Client) -> None:
    await client.call_tool("retrieve", {"query": "round-robin baseline"})
    listed = {str(r.uri) for r in (await client.list_resources()).resources}
    assert listed == {
        "router://stats",
        "router://calls/recent",
        "router://config",
        "router://models",
        "router://collections",
    }
    templates = {t.uri_template for t in (await client.list_resource_templates()).resource_templates}
    assert templates == {"router://stats/{tool}"}
    stats = await read_json(client, "router://stats")
    assert set(stats["tools"]) == {"search", "retrieve", "llm_complete"}
    assert stats["tools"]["retrieve"]["calls"] == 1 and stats["tools"]["retrieve"]["router"] == "lqm"
    for tool in ("search", "retrieve", "llm_complete"):
        assert (await read_json(client, f"router://stats/{tool}"))["tool"] == tool
    recent = await read_json(client, "router://calls/recent")
    assert recent["calls"][0]["tool"] == "retrieve"
    assert recent["calls"][0]["decision"]["order"][0] == recent["calls"][0]["attempts"][0]["provider"]
    collections = await read_json(client, "router://collections")
    assert collections["default"] == "docs" and set(collections["collections"]) == {"docs", "notes"}
    notes = collections["collections"]["notes"]
    assert notes["kind"] == "folder" and notes["providers"] == ["bm25", "hybrid"]
    assert notes["lexical"]["ready"] and notes["files"] >= 1 and notes["indexing"]["phase"] != "failed"
    config = await read_json(client, "router://config")
    assert config["collections"]["notes"]["path"].endswith("notes")
    assert config["collections"]["notes"]["kind"] == "folder"
    assert config["collections"]["notes"]["providers"] == ["bm25", "hybrid"]
    assert config["default_collection"] == "docs"
    assert [p["name"] for p in config["config"]["tools"]["search"]["providers"]] == [
        "wiki-down",
        "wiki-local",
    ]
