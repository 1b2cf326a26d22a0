"""`mcp-router demo`: the server as a real MCP client sees it.

Starts `mcp-router serve` as a stdio subprocess on a fresh database, connects `mcp.Client`, routes
a few `retrieve` calls, a three-turn `llm_complete` conversation (one session, with a budget) and
`search` calls, rates one, and prints every decision, the `router://stats` resource and the session's
spend from `router://models`. It needs no key and no network; `search` offline ends in a clear message.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from typing import Any

import anyio
from mcp import Client, StdioServerParameters

from mcp_router.report import stats_table

RETRIEVE_QUERIES = [
    "How do I register mcp-router in Claude Desktop?",
    "Where are API keys configured?",
    "what happens when a provider fails",
    "how does the router pick a provider",
]
CHATS = [
    "What is the capital of France? Answer in one sentence.",
    "Name three primary colors.",
    "Explain in one sentence what a router does.",
]
SEARCH_QUERIES = ["Model Context Protocol", "reciprocal rank fusion"]
DEMO_SESSION = "demo-conversation"


def _text(result: Any) -> str:
    return " ".join(getattr(block, "text", "") for block in result.content).strip()


def _summary(tool: str, data: dict[str, Any]) -> str:
    if tool == "retrieve":
        top = data["passages"][0] if data["passages"] else None
        return f"{len(data['passages'])} passages; top: {top['id']}" if top else "no passage matched"
    if tool == "search":
        return (
            f"{len(data['results'])} results; top: {data['results'][0]['url']}"
            if data["results"]
            else "0 results"
        )
    choice = data.get("model_choice") or {}
    picked = f" [{choice['chosen']}: {choice['policy']}, p={choice['propensity']:.2f}]" if choice else ""
    return json.dumps(data["text"][:60]) + f" ({data['usage']['completion_tokens']} tokens){picked}"


def _row(cells: list[Any]) -> str:
    widths = (13, 20, 7, 22)
    return "".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=False)) + str(cells[-1])


async def still_loading(client: Client) -> list[str]:
    """The arms still loading a model (`tool/arm`) and the folder collections still being indexed
    (`collection NAME`), as the server's resources report them."""
    stats = json.loads((await client.read_resource("router://stats")).contents[0].text)
    listed = json.loads((await client.read_resource("router://collections")).contents[0].text)
    arms = [
        f"{tool}/{name}"
        for tool, entry in stats["tools"].items()
        for name, arm in entry["arms"].items()
        if arm.get("warmed_up") is False
    ]
    folders = [
        f"collection {name}"
        for name, entry in listed["collections"].items()
        if entry["kind"] == "folder" and entry["indexing"]["phase"] != "idle"
    ]
    return arms + folders


async def _wait_for_warm_up(client: Client, limit_s: float = 120.0) -> None:
    """The server loads models and indexes in the background and routes around arms still loading;
    the demo waits for them so that every arm shows up in its table."""
    started = time.monotonic()
    while time.monotonic() - started < limit_s:
        loading = await still_loading(client)
        if not loading:
            print(f"models and indexes loaded in the background in {time.monotonic() - started:.1f} s\n")
            return
        await anyio.sleep(0.5)
    print(f"still loading after {limit_s:.0f} s: {', '.join(loading)}; arms that are ready serve meanwhile\n")


async def _demo(server_args: list[str]) -> int:
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "mcp_router", *server_args], env=dict(os.environ)
    )
    rows: list[list[Any]] = []
    async with Client(params, read_timeout_seconds=120) as client:
        tools = await client.list_tools()
        print(
            f"connected over stdio; protocol {client.protocol_version}; tools: "
            f"{', '.join(t.name for t in tools.tools)}\n"
        )
        await _wait_for_warm_up(client)
        calls = [("retrieve", {"query": q, "k": 3}) for q in RETRIEVE_QUERIES]
        calls += [("llm_complete", {"content": c}) for c in CHATS]
        calls += [("search", {"query": q, "k": 3}) for q in SEARCH_QUERIES]
        first_ok: str | None = None
        conversation: list[dict[str, str]] = []
        print(_row(["tool", "provider", "wall_s", "outcome", "result"]))
        for tool, arguments in calls:
            if tool == "llm_complete":  # one conversation: each turn carries the history so far
                conversation.append({"role": "user", "content": arguments["content"]})
                arguments = {
                    "messages": conversation,
                    "max_tokens": 48,
                    "session_id": DEMO_SESSION,
                    "budget_usd": 0.01,
                }
            t0 = time.perf_counter()
            result = await client.call_tool(tool, arguments)
            wall = time.perf_counter() - t0
            if result.is_error:
                line = [tool, "-", f"{wall:.2f}", "error", _text(result)]
            else:
                data = result.structured_content
                first_ok = first_ok or data["call_id"]
                fallbacks = f" after {len(data['fallbacks'])} fallback(s)" if data["fallbacks"] else ""
                line = [tool, data["provider"], f"{wall:.2f}", "ok" + fallbacks, _summary(tool, data)]
                if tool == "llm_complete":
                    conversation.append({"role": "assistant", "content": data["text"]})
            rows.append(line)
            print(_row(line), flush=True)
        if first_ok:
            rated = await client.call_tool("feedback", {"call_id": first_ok, "score": 0.8})
            print(f"\nfeedback on {first_ok}: {'error: ' + _text(rated) if rated.is_error else 'recorded'}")
        stats = json.loads((await client.read_resource("router://stats")).contents[0].text)
        models = json.loads((await client.read_resource("router://models")).contents[0].text)
    print("\nrouter://stats")
    print(stats_table(stats))
    print("\nrouter://models: session spend")
    for session in models["sessions"]:
        print(
            f"{session['session_id']}: {session['steps']} steps, ${session['spent_usd']:.6f} of "
            f"${session['budget_usd']:.2f}"
        )
    return 0 if all(r[3].startswith("ok") for r in rows if r[0] != "search") else 1


def run_demo(config: str | None, db: str | None, docs: list[str]) -> int:
    with tempfile.TemporaryDirectory(prefix="mcp-router-demo-") as scratch:
        args = ["serve", "--db", db or os.path.join(scratch, "demo.db")]
        if config:
            args += ["--config", config]
        for folder in docs:
            args += ["--docs", os.path.abspath(folder)]
        print(f"mcp-router demo: server `mcp-router {' '.join(args)}`")
        return anyio.run(_demo, args)
