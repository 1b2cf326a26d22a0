"""LiteLLM's `Router.acompletion` against a raw httpx call to the same stub: a reference for the router.

What another router in Python adds to the same chat completion, measured like our full path (batches
alternating with the raw call). LiteLLM is optional (the `bench` extra, pinned); without it the row is
reported as skipped, with the install hint.
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Sequence
from typing import Any

import httpx

from mcp_router.bench.overhead.calls import alternate
from mcp_router.bench.overhead.machine import package_version
from mcp_router.bench.overhead.params import Params
from mcp_router.bench.overhead.servers import logs_to
from mcp_router.bench.overhead.setting import MAX_TOKENS, MODELS, Setup, queries
from mcp_router.bench.overhead.stats import Dist, rounded

LITELLM_VERSION = "1.81.16"  # the `bench` extra's pin


def litellm_environment() -> None:
    """LiteLLM offline: its packaged cost map instead of a download, no telemetry. Its logging keeps
    its defaults, as the router's does."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    os.environ.setdefault("LITELLM_TELEMETRY", "False")


async def bench_litellm(setup: Setup, params: Params) -> dict[str, Any]:
    """`litellm.Router.acompletion` (two deployments at the stub, latency-based routing) against a raw
    httpx POST of the same request to the same stub, in alternating batches."""
    litellm_environment()
    try:
        import litellm
    except ImportError:
        hint = f"pip install 'mcp-router[bench]' (litellm=={LITELLM_VERSION})"
        return {"installed": False, "skipped": f"litellm is not installed: {hint}"}
    litellm.telemetry = False
    litellm.suppress_debug_info = True
    deployments = [
        {
            "model_name": "stub",
            "litellm_params": {
                "model": f"openai/{m.name}",
                "api_base": setup.stub.openai_base,
                "api_key": "bench",
            },
        }
        for m in MODELS
    ]
    texts = queries(params.litellm_calls, seed=4)
    # Its responses trip a pydantic serializer warning inside LiteLLM (also from its callback threads,
    # hence a process-wide filter); it says nothing about timing.
    warnings.filterwarnings("ignore", message="Pydantic serializer warnings", category=UserWarning)
    # Its per-call INFO records go to a file, as the in-process router's do: same level, same cost.
    with logs_to(setup.workdir / "litellm.log"):
        router = litellm.Router(
            model_list=deployments, routing_strategy="latency-based-routing", num_retries=0
        )
        return await litellm_versus_raw(router, setup, params, texts)


async def litellm_versus_raw(
    router: Any, setup: Setup, params: Params, texts: Sequence[str]
) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=20.0) as http:

        async def via_litellm(i: int) -> float:
            started = time.perf_counter()
            await router.acompletion(
                model="stub", messages=[{"role": "user", "content": texts[i]}], max_tokens=MAX_TOKENS
            )
            return time.perf_counter() - started

        async def raw(i: int) -> float:
            started = time.perf_counter()
            response = await http.post(
                f"{setup.stub.openai_base}/chat/completions",
                json={
                    "model": MODELS[1].name,
                    "messages": [{"role": "user", "content": texts[i]}],
                    "max_tokens": MAX_TOKENS,
                },
                headers={"Authorization": "Bearer bench"},
            )
            response.raise_for_status()
            response.json()
            return time.perf_counter() - started

        for i in range(10):
            await via_litellm(i)
            await raw(i)
        samples = await alternate({"litellm": via_litellm, "raw": raw}, params.litellm_calls, params.batch)
    lite, base = Dist.of(samples["litellm"]), Dist.of(samples["raw"])
    return {
        "installed": True,
        "version": package_version("litellm"),
        "routing_strategy": "latency-based-routing",
        "litellm": lite.ms(),
        "raw_httpx": base.ms(),
        "added_p50_ms": rounded((lite.p50_s - base.p50_s) * 1e3),
        "added_p99_ms": rounded((lite.p99_s - base.p99_s) * 1e3),
    }
