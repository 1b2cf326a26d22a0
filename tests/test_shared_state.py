"""Two real server processes on one SQLite file, over streamable HTTP: what one learns, the other's
router knows within a couple of seconds, each event counted once."""

from __future__ import annotations

import json
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client

from tests.conftest import wiki_provider
from tests.http_support import serve_http

pytestmark = [pytest.mark.slow, pytest.mark.anyio]
PROPAGATION_BOUND_S = 2.0


def shared_config(wiki_url: str, notes_dir: Path) -> str:
    """Search over two loopback wikis under LQM; nothing that loads a model."""
    return f"""
[collections.notes]
path = "{notes_dir}"

[tools.search]
max_attempts = 2
timeout_s = 10
[tools.search.lqm]
n_min = 2
{wiki_provider("wiki-a", wiki_url)}
{wiki_provider("wiki-b", wiki_url)}

[tools.retrieve]
[[tools.retrieve.providers]]
name = "bm25"
type = "bm25"

[tools.llm_complete]
[[tools.llm_complete.providers]]
name = "hosted"
type = "openai"
model = "gpt-test"
api_key_env = "MCP_ROUTER_TEST_KEY_NEVER_SET"

[judge]
enabled = false
"""


async def router_state(client: Client) -> dict[str, Any]:
    """Per arm: the score decomposition (û, width, β, τ, τ̃, n, m, V) of the router in that process."""
    stats = json.loads((await client.read_resource("router://stats/search")).contents[0].text)
    return {arm: s["router"]["score"] for arm, s in stats["arms"].items()}


async def test_what_one_process_learns_reaches_the_other_within_two_seconds(
    tmp_path: Path, wiki_url: str, notes_dir: Path
) -> None:
    config = tmp_path / "router.toml"
    config.write_text(shared_config(wiki_url, notes_dir))
    db = tmp_path / "shared.db"
    with ExitStack() as stack:
        url_a = stack.enter_context(serve_http(config, db, tmp_path / "a.log")).url
        url_b = stack.enter_context(serve_http(config, db, tmp_path / "b.log")).url
        async with Client(url_a, cache=None) as a, Client(url_b, cache=None) as b:
            before = await router_state(b)
            assert all(s["n"] == 0 for s in before.values())
            call_ids = []
            for query in ["bandits", "routing", "latency", "quality"]:
                result = await a.call_tool("search", {"query": query, "k": 1})
                assert not result.is_error
                call_ids.append(result.structured_content["call_id"])
            for n, call_id in enumerate(call_ids):
                assert not (await a.call_tool("feedback", {"call_id": call_id, "score": 0.2 * n})).is_error
            started = time.monotonic()
            with anyio.fail_after(10):
                while (state_b := await router_state(b)) != (state_a := await router_state(a)):
                    await anyio.sleep(0.05)
            delay = time.monotonic() - started
            assert delay <= PROPAGATION_BOUND_S, f"B caught up after {delay:.2f} s"
            assert sum(s["n"] for s in state_b.values()) == len(call_ids)  # each feedback once, not twice
            assert state_b != before

            # and back: B's calls and feedback reach A; both keep one copy of each event
            result = await b.call_tool("search", {"query": "exploration", "k": 1})
            await b.call_tool("feedback", {"call_id": result.structured_content["call_id"], "score": 1.0})
            with anyio.fail_after(PROPAGATION_BOUND_S + 1):
                while (state_a := await router_state(a)) != await router_state(b):
                    await anyio.sleep(0.05)
            assert sum(s["n"] for s in state_a.values()) == len(call_ids) + 1


def post(url: str, method: str, params: dict[str, Any], headers: dict[str, str] | None = None) -> Any:
    """One JSON-RPC request over streamable HTTP, as a handshake-era client sends it (a plain POST)."""
    import httpx

    return httpx.post(
        url,
        json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params},
        headers={"Accept": "application/json, text/event-stream", **(headers or {})},
        timeout=30,
    )


def payload(response: Any) -> dict[str, Any]:
    """The JSON-RPC message of a response, sent as JSON or as one SSE event."""
    assert response.status_code == 200, (response.status_code, response.text)
    data = next((line[5:] for line in response.text.splitlines() if line.startswith("data:")), response.text)
    return json.loads(data)


async def test_stateless_replicas_serve_each_others_clients(
    tmp_path: Path, wiki_url: str, notes_dir: Path
) -> None:
    """With --stateless, a client initialised on one replica is served by another (no sticky sessions);
    without it, the other replica does not know the client's MCP session."""
    config = tmp_path / "router.toml"
    config.write_text(shared_config(wiki_url, notes_dir))
    init = {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}
    call = {"name": "search", "arguments": {"query": "bandits", "k": 1}}
    for stateless in (True, False):
        flags = ("--stateless",) if stateless else ()
        db = tmp_path / f"stateless-{stateless}.db"
        with ExitStack() as stack:
            a, b = (
                stack.enter_context(serve_http(config, db, tmp_path / f"{name}.log", extra=flags)).url
                for name in ("a", "b")
            )
            opened = await anyio.to_thread.run_sync(post, a, "initialize", init)
            assert payload(opened)["result"]["serverInfo"]["name"] == "mcp-router"
            session = {k: v for k, v in opened.headers.items() if k.lower() == "mcp-session-id"}
            assert bool(session) is not stateless  # a stateful server names the session it keeps
            answer = await anyio.to_thread.run_sync(post, b, "tools/call", call, session)
            if stateless:
                assert payload(answer)["result"]["structuredContent"]["results"]
            else:
                assert answer.status_code == 404  # B has never seen A's session
