"""`mcp-router doctor`: one line per configured provider — serving or why not, key present (never
shown), and, unless told not to, a real probe call with its latency or its error."""

from __future__ import annotations

import time
from typing import Any

import anyio

from mcp_router.config import TOOLS, Config, LoadedConfig, ProviderConfig
from mcp_router.report import table
from mcp_router.serving.runtime import collection_library
from providers import ProviderEnv, ProviderError, create_adapter
from providers.types import ChatMessage, CompletionRequest, RetrieveRequest, SearchRequest


def probe_request(tool: str, collection: str | None) -> Any:
    """The smallest real call of each tool: one search hit, one passage (from the first collection
    the provider serves), one generated token."""
    if tool == "search":
        return SearchRequest(query="model context protocol", k=1)
    if tool == "retrieve":
        return RetrieveRequest(query="configuration", collection=collection or "", k=1)
    return CompletionRequest(messages=(ChatMessage("user", "Say OK."),), max_tokens=1, temperature=0.0)


def key_state(provider: ProviderConfig) -> str:
    if provider.api_key_env:
        return f"{provider.api_key_env} set" if provider.key_present() else f"{provider.api_key_env} missing"
    return "no key needed"


async def probe(
    provider: ProviderConfig, tool: str, env: ProviderEnv, timeout_s: float, config: Config
) -> str:
    collections = config.collections_of(provider)
    adapter = create_adapter(provider.spec(collections), env)
    request = probe_request(tool, next(iter(collections or {}), None))
    started = time.perf_counter()
    try:
        with anyio.fail_after(timeout_s):
            while not adapter.ready(request) and env.collections.get(getattr(request, "collection", "")):
                await anyio.sleep(0.05)  # a folder collection's index is being built (or loaded)
            await adapter.call(request)
    except TimeoutError:
        return f"no answer within {timeout_s:g} s"
    except ProviderError as exc:
        return f"error: {exc.kind}: {exc.message}"
    finally:
        await adapter.aclose()
    return f"ok in {(time.perf_counter() - started) * 1000:.0f} ms"


async def diagnose(loaded: LoadedConfig, probe_calls: bool, timeout_s: float) -> list[list[str]]:
    env = ProviderEnv(collections=collection_library(loaded))
    rows = []
    try:
        for tool in TOOLS:
            for provider in loaded.config.tool(tool).providers:
                why = provider.disabled_reason()
                if why is not None:
                    result = "-"
                elif probe_calls:
                    result = await probe(provider, tool, env, timeout_s, loaded.config)
                else:
                    result = "not probed"
                rows.append(
                    [
                        tool,
                        provider.name,
                        provider.type,
                        "serving" if why is None else f"off: {why}",
                        key_state(provider),
                        result,
                    ]
                )
    finally:
        await env.aclose()
    return rows


def run_doctor(loaded: LoadedConfig, probe_calls: bool = True, timeout_s: float = 20.0) -> int:
    """Print the report; exit status 1 when a serving provider failed its probe."""
    print(f"config: {loaded.source}")
    rows = anyio.run(diagnose, loaded, probe_calls, timeout_s)
    print(table(["tool", "provider", "type", "state", "key", "probe"], rows))
    return 1 if any(r[5].startswith(("error", "no answer")) for r in rows) else 0
