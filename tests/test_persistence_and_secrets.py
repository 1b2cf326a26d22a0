"""Restart on the same database restores the statistics; API keys appear nowhere a user can see."""

from __future__ import annotations

import json
import logging
import sqlite3
from pathlib import Path

import pytest
from mcp import Client

from mcp_router.config import load_config
from mcp_router.serving.server import create_server
from tests.conftest import CLOSED_PORT_URL, router_config, warmed_up, wiki_provider

pytestmark = pytest.mark.anyio
SECRET = "sk-test-SECRET-9f8e7d6c5b4a"


async def stats_of(client: Client) -> dict:
    return json.loads((await client.read_resource("router://stats")).contents[0].text)


async def test_restart_restores_counts_and_rotation(config_file: Path, tmp_path: Path) -> None:
    db = tmp_path / "router.db"
    loaded = load_config(config_file)
    async with Client(create_server(loaded, db), cache=None) as client:
        await warmed_up(client)
        providers = []
        for query in ("sun", "flour", "water"):
            result = await client.call_tool("retrieve", {"query": query, "collection": "notes"})
            providers.append(result.structured_content["provider"])
        await client.call_tool("search", {"query": "x"})
        before = await stats_of(client)
    assert providers == ["bm25", "hybrid", "bm25"]

    async with Client(create_server(loaded, db), mode="legacy", cache=None) as client:
        await warmed_up(client)
        after = await stats_of(client)
        assert after == before
        # round-robin continues where it stopped: the fourth call goes to the second arm
        result = await client.call_tool("retrieve", {"query": "tomatoes", "collection": "notes"})
        assert result.structured_content["provider"] == "hybrid"
        assert (await stats_of(client))["tools"]["retrieve"]["arms"]["hybrid"]["calls"] == 2
    assert before["tools"]["search"]["arms"]["wiki-down"]["failures"] == 1
    assert before["tools"]["search"]["arms"]["wiki-local"]["ok"] == 1


async def test_api_key_never_reaches_output_resources_logs_or_database(
    tmp_path: Path,
    wiki_url: str,
    notes_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("TEST_LLM_KEY", SECRET)
    extra = f"""
[[tools.llm_complete.providers]]
name = "hosted"
type = "openai"
model = "gpt-test"
base_url = "{CLOSED_PORT_URL.removesuffix("/w/api.php")}/v1"
api_key_env = "TEST_LLM_KEY"
timeout_s = 2
quality_prior = 0.9
options = {{ organization_token = "{SECRET}" }}
"""
    config = tmp_path / "keyed.toml"
    config.write_text(router_config(wiki_url, notes_dir, extra))
    db = tmp_path / "router.db"
    seen: list[str] = []
    async with Client(create_server(load_config(config), db), cache=None) as client:
        for _ in range(2):  # MTRouter's prior prefers the hosted model, which fails over to smollm2
            result = await client.call_tool(
                "llm_complete", {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}
            )
            seen.append(result.model_dump_json())
        for uri in (
            "router://stats",
            "router://stats/llm_complete",
            "router://calls/recent",
            "router://models",
            "router://config",
        ):
            seen.append((await client.read_resource(uri)).contents[0].text)
    joined = "\n".join(seen)
    assert "hosted: unavailable" in joined  # the failure is reported ...
    assert SECRET not in joined  # ... without the key
    config_view = json.loads(seen[-1])["config"]["tools"]["llm_complete"]["providers"][1]
    assert config_view["api_key_present"] is True and config_view["options"]["organization_token"] == "***"
    with sqlite3.connect(db) as conn:
        dump = "\n".join(conn.iterdump())
    assert "hosted" in dump and SECRET not in dump
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "hosted" in logged and SECRET not in logged


async def test_all_providers_failing_names_each_failure(tmp_path: Path, notes_dir: Path) -> None:
    config = tmp_path / "dead.toml"
    config.write_text("[tools.search]\n" + wiki_provider("only-dead", CLOSED_PORT_URL, timeout_s=2))
    async with Client(create_server(load_config(config), tmp_path / "r.db"), cache=None) as client:
        result = await client.call_tool("search", {"query": "anything"})
        retrieve = await client.call_tool("retrieve", {"query": "anything"})
    text = result.content[0].text
    assert result.is_error and "every `search` provider failed" in text
    assert "only-dead: unavailable (cannot reach 127.0.0.1" in text
    assert retrieve.is_error and "no collection is configured" in retrieve.content[0].text


async def test_slow_provider_times_out_and_falls_back(tmp_path: Path, wiki_url: str) -> None:
    slow_url = wiki_url.replace("/w/api.php", "/slow/w/api.php")
    config = tmp_path / "slow.toml"
    config.write_text(
        "[tools.search]\n" + wiki_provider("slow", slow_url, timeout_s=0.5) + wiki_provider("fast", wiki_url)
    )
    async with Client(create_server(load_config(config), tmp_path / "r.db"), cache=None) as client:
        result = await client.call_tool("search", {"query": "q"})
        recent = json.loads((await client.read_resource("router://calls/recent")).contents[0].text)
    data = result.structured_content
    assert data["provider"] == "fast" and data["fallbacks"] == ["slow: timeout (no answer within 0.5 s)"]
    attempts = recent["calls"][0]["attempts"]
    assert [a["status"] for a in attempts] == ["timeout", "ok"]
    assert 0.45 <= attempts[0]["latency_s"] < 1.5
