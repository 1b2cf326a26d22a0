"""The setting every measurement shares: the stub providers, the router's config, the docs, the calls.

One place defines what "the same call" is (`tool_args`, `queries`), so the router, its floors, the
load generator and the probes all send the same requests to the same stub, and a figure of one can be
set beside a figure of another.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mcp_router.bench.stubs import Stub, stub_process
from mcp_router.bench.toml_config import JUDGE_OFF, openai_provider, render, tool
from mcp_router.config import resolve_folder

KEY_ENV = "MCP_ROUTER_BENCH_KEY"  # the stub's "API key" variable, named by the bench config
BUDGET_USD = 1.0
LQM_TOOL = {"router": "lqm", "max_attempts": 3, "timeout_s": 30}
MAX_TOKENS = 64
WORDS_TEXT = (
    "configure client routing provider search retrieve model budget latency claude desktop server "
    "config key environment collection document bm25 dense hybrid judge feedback quality bandit "
    "stdio http transport cursor vscode resource stats fallback timeout breaker cooldown price "
    "token session window checkpoint train router weather paris history science football music "
    "recipe garden python rust database index cache memory policy warm start arm score"
)
WORDS = tuple(WORDS_TEXT.split())


@dataclass(frozen=True)
class ModelRow:
    name: str
    endpoint: str
    input_cost: float
    output_cost: float
    prior: float


MODELS = (
    ModelRow("stub-large", "large-ep", 2.5e-6, 1.0e-5, 0.8),
    ModelRow("stub-small", "small-ep", 1.5e-7, 6.0e-7, 0.6),
)


def child_env() -> dict[str, str]:
    """What a benchmark's server and load-generator children need: offline models, the stub's key."""
    return {
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
        KEY_ENV: "bench",
    }


@dataclass(frozen=True)
class Setup:
    """What every measurement shares: the stub, the router config, the docs, the child environment."""

    stub: Stub
    workdir: Path
    config: Path
    docs: Path

    def env(self) -> dict[str, str]:
        """The environment of server children (the SDK's stdio client passes only a minimal one)."""
        return {**child_env(), "PATH": os.environ.get("PATH", "")}

    def db(self, name: str) -> Path:
        return self.workdir / f"{name}.db"


def stub_models(stub: Stub) -> list[dict[str, Any]]:
    """The two priced `openai` models at the stub."""
    return [
        openai_provider(
            m.endpoint,
            stub.openai_base,
            m.name,
            KEY_ENV,
            (m.input_cost, m.output_cost),
            quality_prior=m.prior,
            timeout_s=20,
        )
        for m in MODELS
    ]


def searx_arms(stub: Stub, names: Sequence[str]) -> list[dict[str, Any]]:
    return [{"name": n, "type": "searxng", "base_url": stub.searx_base, "timeout_s": 8} for n in names]


def config_text(
    stub: Stub,
    search_arms: Sequence[str] = ("searx-a", "searx-b"),
    retrieve_arms: Sequence[str] = ("bm25",),
    retrieve_attempts: int = 3,
) -> str:
    """`searxng` arms and two priced `openai` models at the stub, the packaged docs for bm25, MTRouter
    on its priors. The judge is off: it grades in the background, off the request path, and with the
    stub as its model it would only add load that the floors do not have."""
    return render(
        {"auto_providers": False},
        [
            ("[collections.docs]", {"path": "builtin:sample_docs"}),
            *tool("search", LQM_TOOL, searx_arms(stub, search_arms)),
            *tool(
                "retrieve",
                {**LQM_TOOL, "max_attempts": retrieve_attempts},
                [{"name": n, "type": "bm25"} for n in retrieve_arms],
            ),
            *tool("llm_complete", {**LQM_TOOL, "max_attempts": 2, "timeout_s": 50}, stub_models(stub)),
            JUDGE_OFF,
        ],
    )


@contextlib.contextmanager
def bench_setup(name: str = "overhead", text: Callable[[Stub], str] = config_text) -> Iterator[Setup]:
    """The stub process and a scratch folder with the router config `text` writes, both gone when the
    block ends."""
    os.environ.setdefault(KEY_ENV, "bench")
    with tempfile.TemporaryDirectory(prefix=f"mcp-router-{name}-") as tmp, stub_process() as stub:
        workdir = Path(tmp)
        config = workdir / "router.toml"
        config.write_text(text(stub))
        yield Setup(stub, workdir, config, resolve_folder("builtin:sample_docs", workdir))


def queries(n: int, seed: int) -> list[str]:
    """Varied short queries over words the packaged docs contain and words they do not."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        words = rng.choice(WORDS, size=int(rng.integers(2, 9)), replace=False)
        text = " ".join(words)
        out.append(text.capitalize() + ("?" if rng.random() < 0.4 else ""))
    return out


def tool_args(tool: str, query: str, floor: bool) -> dict[str, Any]:
    """The same call for the router and its floor (the floor has no budget to enforce)."""
    if tool in ("search", "retrieve"):
        return {"query": query, "k": 5}
    args: dict[str, Any] = {"messages": [{"role": "user", "content": query}], "max_tokens": MAX_TOKENS}
    return args if floor else {**args, "budget_usd": BUDGET_USD}
