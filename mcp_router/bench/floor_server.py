"""The bare-SDK floor that `bench overhead` subtracts: what any MCP server pays for the same work.

A plain `MCPServer` with no router, no store and no features:

- `echo(text)`: the SDK's own cost of a tool call on this transport;
- `search`, `llm_complete`: the same HTTP request the router's `searxng` / `openai` adapters send to the
  same provider, through one shared `httpx.AsyncClient`, parsed into the same fields;
- `retrieve`: the router's own `bm25` adapter called directly (no HTTP there: the same ranking, the
  same thread-or-inline choice the adapter makes) over the same folder the router's `bm25` arm serves.

So "router minus floor" on one transport is what routing adds, and nothing else. It runs in process
(`create_floor_server`) or as `python -m mcp_router.bench.floor_server --transport stdio|http ...`,
exactly like `mcp-router serve`. Nothing here writes to stdout: on stdio that is the protocol channel.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import anyio
import httpx
from mcp.server.mcpserver import Context, MCPServer
from pydantic import BaseModel

from providers import Adapter, ProviderEnv, ProviderSpec, create_adapter
from providers.retrieve.collections import CollectionLibrary
from providers.types import RetrieveRequest

COLLECTION = "docs"


class Hit(BaseModel):
    title: str
    url: str
    snippet: str
    source: str


class SearchOut(BaseModel):
    results: list[Hit]


class PassageOut(BaseModel):
    id: str
    text: str
    score: float
    metadata: dict[str, Any]


class RetrieveOut(BaseModel):
    passages: list[PassageOut]


class Message(BaseModel):
    role: Literal["system", "user", "assistant"]
    content: str


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int


class CompletionOut(BaseModel):
    text: str
    model: str
    usage: Usage
    finish_reason: str | None


@dataclass
class FloorState:
    http: httpx.AsyncClient
    bm25: Adapter


@dataclass(frozen=True)
class FloorConfig:
    stub_url: str  # the provider stub, http://127.0.0.1:PORT
    docs: Path  # the folder the router's bm25 arm indexes
    model: str = "stub-large"  # the model the floor asks the chat endpoint for


def _hits(body: dict, k: int) -> list[Hit]:
    return [
        Hit(title=r["title"], url=r["url"], snippet=r.get("content", ""), source="searxng")
        for r in body["results"][:k]
    ]


def create_floor_server(config: FloorConfig) -> MCPServer:
    @asynccontextmanager
    async def lifespan(server: MCPServer) -> AsyncIterator[FloorState]:
        async with httpx.AsyncClient(timeout=20.0) as http:
            env = ProviderEnv(
                http=http, collections=CollectionLibrary([(COLLECTION, config.docs)], embed=None)
            )
            await anyio.to_thread.run_sync(env.collections.refresh)
            bm25 = create_adapter(ProviderSpec(name="bm25", type="bm25"), env)
            try:
                yield FloorState(http=http, bm25=bm25)
            finally:
                await bm25.aclose()

    mcp = MCPServer("floor", lifespan=lifespan)

    @mcp.tool()
    async def echo(text: str) -> str:
        """Return the text: the transport's own cost."""
        return text

    @mcp.tool()
    async def search(query: str, ctx: Context, k: int = 5) -> SearchOut:
        """The SearXNG request of the router's `searxng` adapter, parsed."""
        state: FloorState = ctx.request_context.lifespan_context
        response = await state.http.get(
            f"{config.stub_url}/search",
            params={"q": query, "format": "json"},
            headers={"Accept": "application/json"},
        )
        response.raise_for_status()
        return SearchOut(results=_hits(response.json(), k))

    @mcp.tool()
    async def retrieve(query: str, ctx: Context, k: int = 5) -> RetrieveOut:
        """The router's `bm25` adapter, without the router."""
        state: FloorState = ctx.request_context.lifespan_context
        passages = await state.bm25.call(RetrieveRequest(query=query, collection=COLLECTION, k=k))
        return RetrieveOut(
            passages=[PassageOut(id=p.id, text=p.text, score=p.score, metadata=p.metadata) for p in passages]
        )

    @mcp.tool()
    async def llm_complete(messages: list[Message], ctx: Context, max_tokens: int = 256) -> CompletionOut:
        """The router's `openai` adapter's chat request, parsed."""
        state: FloorState = ctx.request_context.lifespan_context
        response = await state.http.post(
            f"{config.stub_url}/v1/chat/completions",
            json={
                "model": config.model,
                "messages": [m.model_dump() for m in messages],
                "max_tokens": max_tokens,
                "temperature": 0.0,
            },
            headers={"Accept": "application/json", "Authorization": "Bearer bench"},
        )
        response.raise_for_status()
        body = response.json()
        choice = body["choices"][0]
        usage = body["usage"]
        return CompletionOut(
            text=choice["message"]["content"] or "",
            model=body["model"],
            usage=Usage(prompt_tokens=usage["prompt_tokens"], completion_tokens=usage["completion_tokens"]),
            finish_reason=choice.get("finish_reason"),
        )

    return mcp


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="bare-SDK floor server for `mcp-router bench overhead`")
    parser.add_argument("--transport", choices=["stdio", "http"], default="stdio")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--stub", required=True, help="provider stub base URL")
    parser.add_argument("--docs", required=True, help="folder the bm25 floor ranks")
    args = parser.parse_args(argv)
    # The same logging as `mcp-router serve` at its default level, so both pay the same for it.
    logging.basicConfig(
        stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    for noisy in ("httpx", "httpcore", "bm25s"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    server = create_floor_server(FloorConfig(stub_url=args.stub, docs=Path(args.docs)))
    if args.transport == "http":
        server.run("streamable-http", host="127.0.0.1", port=args.port)
    else:
        server.run()


if __name__ == "__main__":
    main()
