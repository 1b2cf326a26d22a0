"""The MCP face of mcp-router: four tools, the router resources, and the lifespan that owns the runtime.

`create_server` builds a fresh `MCPServer` for one configuration and database, so tests and the CLI
run exactly the same server. Tool bodies only translate: validated arguments in, a dispatch call,
a pydantic result or a `ToolError` out.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import json
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import anyio
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ResourceNotFoundError, ToolError
from mcp.types import ToolAnnotations

from mcp_router import __version__
from mcp_router.config import TOOLS, LoadedConfig
from mcp_router.schemas import (
    BudgetUsd,
    CallId,
    CollectionName,
    Comment,
    CompletionOutput,
    FeedbackOutput,
    Freshness,
    MaxTokens,
    Messages,
    ModelChoiceOut,
    PassageOut,
    Query,
    RetrieveOutput,
    Score,
    SearchOutput,
    SessionId,
    Task,
    Temperature,
    TopK,
    UsageOut,
    WebResult,
    unknown_arguments,
)
from mcp_router.serving.dispatch import Served
from mcp_router.serving.errors import DispatchError
from mcp_router.serving.planner import Plan
from mcp_router.serving.runtime import Runtime, open_runtime
from mcp_router.serving.sampling_judge import HostLink
from mcp_router.stats import all_stats, models_view, router_states, tool_stats
from mcp_router.store import DuplicateFeedback, UnknownCall
from mcp_router.store.retention import keep_pruned
from providers.types import ChatMessage, CompletionRequest, RetrieveRequest, SearchRequest

INSTRUCTIONS = (
    "`search` finds web pages, `retrieve` finds passages in the user's own document collections, "
    "`llm_complete` asks a language model. Each call is routed to the provider expected to serve it best; "
    "rate a result with `feedback(call_id, score)` so routing improves. Router state: router://stats."
)
JSON = "application/json"
LOOKUP = ToolAnnotations(
    read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=True
)
LOCAL_LOOKUP = ToolAnnotations(
    read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False
)
GENERATE = ToolAnnotations(
    read_only_hint=True, destructive_hint=False, idempotent_hint=False, open_world_hint=True
)
RATE = ToolAnnotations(
    read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=False
)
PROGRESS_INTERVAL_S = 1.0


async def _json_in_thread(read: Callable[..., Any], *args: Any) -> str:
    """A resource's view, read in a worker thread (it queries SQLite, which may wait on another
    process's write lock: never on the event loop), as indented JSON."""
    return json.dumps(await anyio.to_thread.run_sync(read, *args), indent=2)


def _fallbacks(served: Served) -> list[str]:
    return [f"{a.provider}: {a.status} ({a.error})" for a in served.attempts if a.status != "ok"]


def _routed(served: Served) -> dict[str, Any]:
    return {
        "call_id": served.call_id,
        "provider": served.provider,
        "latency_s": round(served.latency_s, 4),
        "fallbacks": _fallbacks(served),
    }


def _model_choice(plan: Plan | None, cost_usd: float) -> ModelChoiceOut | None:
    if plan is None:
        return None
    step = plan.step
    remaining = None if plan.remaining_usd is None else round(max(plan.remaining_usd - cost_usd, 0.0), 10)
    return ModelChoiceOut(
        chosen=step.chosen_model,
        policy=step.policy,
        propensity=round(step.propensity, 6),
        stage=step.stage,
        budget_remaining_usd=remaining,
    )


@functools.lru_cache(maxsize=64)
def _arguments_of(tool: Callable[..., Any]) -> tuple[str, ...]:
    """A tool's argument names, read from its signature once, not on every call."""
    return tuple(name for name in inspect.signature(tool).parameters if name != "ctx")


def _reject_unknown_arguments(ctx: Context, tool: Callable[..., Any]) -> None:
    """The SDK drops arguments a tool does not take; refuse them instead, before anything is written,
    so that a caller who wrote `top_k` for `k` learns it rather than silently getting the default."""
    arguments = (ctx.request_context.params or {}).get("arguments") or {}
    if error := unknown_arguments(tool.__name__, arguments, _arguments_of(tool)):
        raise ToolError(error)


class Progress:
    """Monotonic progress notifications for one request; a no-op when the client sent no progress token."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.step = 0

    async def report(self, message: str) -> None:
        self.step += 1
        await self.ctx.report_progress(self.step, None, message)

    @contextmanager
    def heartbeat(self, what: str) -> Iterator[None]:
        """Report every PROGRESS_INTERVAL_S while the block runs, which keeps progress-aware host
        timeouts alive during a slow generation. Nothing is spawned for a call that ends within the
        first interval: a timer starts the reporting task only when it is due."""
        loop = asyncio.get_running_loop()
        started = time.monotonic()
        task: asyncio.Task[None] | None = None

        async def beat() -> None:
            while True:
                await self.report(f"{what} ({time.monotonic() - started:.0f} s)")
                await asyncio.sleep(PROGRESS_INTERVAL_S)

        def start() -> None:
            nonlocal task
            task = loop.create_task(beat())

        timer = loop.call_later(PROGRESS_INTERVAL_S, start)
        try:
            yield
        finally:
            timer.cancel()
            if task is not None:
                task.cancel()


def create_server(loaded: LoadedConfig, database: Path | str) -> MCPServer:
    holder: dict[str, Runtime] = {}

    def runtime() -> Runtime:
        # Static resources cannot receive a Context (SDK pitfall P4): they read the lifespan's runtime here.
        if "rt" not in holder:
            raise ResourceError("the server is not ready yet")
        return holder["rt"]

    @asynccontextmanager
    async def lifespan(server: MCPServer) -> AsyncIterator[Runtime]:
        rt = open_runtime(loaded, database)
        rt.warm_up()
        holder["rt"] = rt
        try:
            async with anyio.create_task_group() as background:
                background.start_soon(rt.dispatcher.learning.follow)
                retention = rt.loaded.config.retention
                background.start_soon(keep_pruned, rt.store, retention.policy(), retention.prune_every_s)
                if rt.dispatcher.judge_queue is not None:
                    background.start_soon(rt.dispatcher.judge_queue.serve)
                if rt.planner is not None:
                    background.start_soon(rt.planner.keep_current)
                try:
                    yield rt
                finally:
                    background.cancel_scope.cancel()
        finally:
            holder.pop("rt", None)
            with anyio.CancelScope(shield=True):
                await rt.aclose()

    mcp = MCPServer("mcp-router", version=__version__, instructions=INSTRUCTIONS, lifespan=lifespan)
    host_judge = loaded.config.sampling_judge()  # judge jobs then keep a link to the calling client

    async def dispatch(
        tool: str,
        request: Any,
        text: str,
        summary: dict[str, Any],
        progress: Progress,
        plan: Plan | None = None,
    ) -> Served:
        rt = runtime()

        async def on_attempt(provider: str, n: int) -> None:
            await progress.report(f"attempt {n}: {provider}")

        origin = HostLink.of(progress.ctx) if host_judge else None
        try:
            return await rt.dispatcher.run(tool, request, text, summary, on_attempt, plan, origin)
        except DispatchError as exc:
            raise ToolError(str(exc)) from None

    @mcp.tool(title="Web search", annotations=LOOKUP)
    async def search(query: Query, ctx: Context, k: TopK = 5, freshness: Freshness = None) -> SearchOutput:
        """Search the web. Returns up to k results (title, url, snippet, source) from the provider the
        router picks; if it fails, the next provider is tried."""
        _reject_unknown_arguments(ctx, search)
        served = await dispatch(
            "search",
            SearchRequest(query=query, k=k, freshness=freshness),
            query,
            {"query": query, "k": k, "freshness": freshness},
            Progress(ctx),
        )
        results = [
            WebResult(title=h.title, url=h.url, snippet=h.snippet, source=h.source) for h in served.result
        ]
        return SearchOutput(results=results[:k], **_routed(served))

    default_collection = loaded.config.default_collection()

    def chosen_collection(collection: str | None) -> str:
        """The collection a `retrieve` call searches: the named one, else the default; a ToolError,
        before anything is written, for a name no provider is configured to serve."""
        route = runtime().dispatcher.routes["retrieve"]
        name = collection or default_collection
        if name is None:
            raise ToolError(
                'no collection is configured; add [collections.NAME] path = "FOLDER" to the config, '
                'or a remote retrieve provider with collections = ["NAME"]'
            )
        entry = route.collections.get(name)
        if entry is None:
            raise ToolError(f"unknown collection {name!r}; use one of: {', '.join(route.collections)}")
        if not entry.arms:
            why = "; ".join(f"{a}: {route.disabled.get(a, 'off')}" for a in entry.disabled_arms)
            raise ToolError(f"no enabled provider serves collection {name!r}" + (f" ({why})" if why else ""))
        return name

    @mcp.tool(title="Retrieve passages", annotations=LOCAL_LOOKUP)
    async def retrieve(
        query: Query, ctx: Context, k: TopK = 5, collection: CollectionName = None
    ) -> RetrieveOutput:
        """Find passages in the user's own document collections: local folders (indexed by BM25 and
        dense embeddings) and remote stores (pgvector, Qdrant, Chroma, Elasticsearch, OpenSearch) named
        in the config. `collection` picks one (router://config lists them); omitted, the default one.
        Returns up to k passages with id, text, score and metadata (for a folder: path, title)."""
        _reject_unknown_arguments(ctx, retrieve)
        name = chosen_collection(collection)
        served = await dispatch(
            "retrieve",
            RetrieveRequest(query=query, collection=name, k=k),
            query,
            {"query": query, "k": k, "collection": name},
            Progress(ctx),
        )
        passages = [
            PassageOut(id=p.id, text=p.text, score=p.score, metadata=p.metadata) for p in served.result
        ]
        return RetrieveOutput(collection=name, passages=passages[:k], **_routed(served))

    @mcp.tool(title="LLM completion", annotations=GENERATE)
    async def llm_complete(
        messages: Messages,
        ctx: Context,
        max_tokens: MaxTokens = 256,
        temperature: Temperature = 0.0,
        session_id: SessionId = None,
        budget_usd: BudgetUsd = None,
        task: Task = None,
    ) -> CompletionOutput:
        """Answer a conversation with a language model. The router picks the model for each turn from
        the conversation so far and what the session may still spend (local models by default, hosted
        ones when their API keys are set). Pass session_id on every turn of one conversation, and
        budget_usd to cap its spending. Reports progress while it generates."""
        _reject_unknown_arguments(ctx, llm_complete)
        rt = runtime()
        chat = tuple(ChatMessage(role=m.role, content=m.content) for m in messages)
        last_user = next(m.content for m in reversed(chat) if m.role == "user")
        request = CompletionRequest(messages=chat, max_tokens=max_tokens, temperature=temperature)
        summary = {
            "messages": len(chat),
            "last_user": last_user[:1000],
            "max_tokens": max_tokens,
            "temperature": temperature,
            "session_id": session_id,
            "budget_usd": budget_usd,
        }
        if session_id:
            await rt.dispatcher.session_turn(session_id, last_user)
        progress = Progress(ctx)
        async with AsyncExitStack() as stack:
            plan = None
            if rt.planner is not None:
                try:
                    plan = await stack.enter_async_context(
                        rt.planner.plan(request, session_id, budget_usd, task)
                    )
                except DispatchError as exc:
                    raise ToolError(str(exc)) from None
            with progress.heartbeat("generating"):
                served = await dispatch("llm_complete", request, last_user, summary, progress, plan)
        done = served.result
        return CompletionOutput(
            text=done.text,
            model=done.model,
            cost_usd=served.cost_usd,  # charged: the reply's usage, else its worst case, plus billed failures
            finish_reason=done.finish_reason,
            usage=UsageOut(
                prompt_tokens=done.usage.prompt_tokens, completion_tokens=done.usage.completion_tokens
            ),
            model_choice=_model_choice(plan, served.cost_usd),
            **_routed(served),
        )

    @mcp.tool(title="Rate a result", annotations=RATE)
    async def feedback(
        call_id: CallId, score: Score, ctx: Context, comment: Comment = None
    ) -> FeedbackOutput:
        """Rate an earlier result of search, retrieve or llm_complete (0 = useless, 1 = perfect). The
        router learns from it which provider serves best; your rating replaces the automatic judge's
        for that call. Each call can be rated once."""
        _reject_unknown_arguments(ctx, feedback)
        try:
            obs = await runtime().dispatcher.feedback(call_id, score, comment)
        except UnknownCall:
            raise ToolError(
                f"unknown call_id {call_id!r}: no successful call with that id; "
                "use the call_id returned by search, retrieve or llm_complete"
            ) from None
        except DuplicateFeedback:
            raise ToolError(f"call {call_id} already has feedback; each call can be rated once") from None
        return FeedbackOutput(call_id=call_id, score=score, tool=obs.tool, provider=obs.provider)

    @mcp.resource(
        "router://stats",
        name="router-stats",
        title="Router statistics",
        mime_type=JSON,
        description="Per tool and per provider: calls, share, success, latency mean/p95, quality.",
    )
    async def stats_all() -> str:
        rt = runtime()
        routes = rt.dispatcher.routes
        routers = {tool: router_states(route) for tool, route in routes.items()}
        return await _json_in_thread(all_stats, rt.store, routes, routers)

    @mcp.resource(
        "router://stats/{tool}",
        name="router-tool-stats",
        title="Router statistics for one tool",
        mime_type=JSON,
        description="Statistics of one tool: search, retrieve or llm_complete.",
    )
    async def stats_tool(tool: str) -> str:
        rt = runtime()
        if tool not in rt.dispatcher.routes:
            raise ResourceNotFoundError(f"unknown tool {tool!r}; use one of: {', '.join(TOOLS)}")
        route = rt.dispatcher.routes[tool]
        return await _json_in_thread(tool_stats, rt.store, route, router_states(route))

    @mcp.resource(
        "router://calls/recent",
        name="router-recent-calls",
        title="Recent routing decisions",
        mime_type=JSON,
        description="The last 20 calls: tool, order tried, attempts, outcome.",
    )
    async def recent_calls() -> str:
        rt = runtime()
        return await _json_in_thread(lambda: {"calls": rt.store.recent_calls(20)})

    @mcp.resource(
        "router://models",
        name="router-models",
        title="llm_complete model pool",
        mime_type=JSON,
        description="MTRouter's model pool (prices, windows, priors, endpoints), its checkpoint, and the "
        "spend of recent sessions.",
    )
    async def models_resource() -> str:
        rt = runtime()
        return await _json_in_thread(models_view, rt.loaded.config, rt.store, rt.planner)

    @mcp.resource(
        "router://collections",
        name="router-collections",
        title="retrieve's collections",
        mime_type=JSON,
        description="Every collection `retrieve` can search: its kind, the providers serving it, and for "
        "folders the files, passages, index state and age, and indexing progress.",
    )
    async def collections_resource() -> str:
        rt = runtime()
        return json.dumps({"default": default_collection, "collections": collections_view(rt)}, indent=2)

    @mcp.resource(
        "router://config",
        name="router-config",
        title="Effective configuration",
        mime_type=JSON,
        description="The configuration in force, with secrets redacted.",
    )
    async def config_resource() -> str:
        rt = runtime()
        return json.dumps(
            {
                "source": rt.loaded.source,
                "database": rt.store.display,
                "default_collection": default_collection,
                "collections": {
                    name: entry.view() for name, entry in rt.dispatcher.routes["retrieve"].collections.items()
                },
                "config": rt.loaded.config.redacted(),
            },
            indent=2,
        )

    return mcp


def collections_view(rt: Runtime) -> dict[str, Any]:
    """The catalogue of `retrieve`'s collections, each folder with its live index status."""
    view: dict[str, Any] = {}
    for name, entry in rt.dispatcher.routes["retrieve"].collections.items():
        folder = rt.collections.get(name) if entry.kind == "folder" else None
        view[name] = {**entry.view(), **(folder.status() if folder else {})}
    return view
