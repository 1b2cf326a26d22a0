"""The router configuration every server of `bench state` runs, and the arms the history is written for.

The generated history must name the arms the servers are configured with: an event of an arm the
router does not have is skipped by the fold, which would make a replay look cheaper than it is. So the
arm names live here, once, and both the config text and the history generator read them.

Three `searxng` arms and the two priced `openai` endpoints of `bench overhead` at the loopback stub,
two `bm25` arms over the packaged docs, LQM on every tool, MTRouter on its priors, the judge off.
Nothing loads a model, so start-up is the router's own cost.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from mcp_router.bench.overhead.setting import KEY_ENV, LQM_TOOL, Setup, searx_arms, stub_models
from mcp_router.bench.stubs import Stub, stub_process
from mcp_router.bench.toml_config import JUDGE_OFF, render, tool
from mcp_router.config import resolve_folder

SEARCH_ARMS = ("searx-a", "searx-b", "searx-c")
RETRIEVE_ARMS = ("bm25-a", "bm25-b")
COLLECTION = "docs"


def config_text(stub: Stub) -> str:
    """The server's config: every arm at the stub or the packaged docs, nothing that needs a key."""
    return render(
        {"auto_providers": False},
        [
            (f"[collections.{COLLECTION}]", {"path": "builtin:sample_docs"}),
            *tool("search", LQM_TOOL, searx_arms(stub, SEARCH_ARMS)),
            *tool(
                "retrieve",
                {**LQM_TOOL, "max_attempts": 2},
                [{"name": n, "type": "bm25"} for n in RETRIEVE_ARMS],
            ),
            *tool("llm_complete", {**LQM_TOOL, "max_attempts": 2, "timeout_s": 50}, stub_models(stub)),
            JUDGE_OFF,
        ],
    )


@contextlib.contextmanager
def state_setup() -> Iterator[Setup]:
    """The stub process and a scratch folder with the config, both gone when the block ends."""
    os.environ.setdefault(KEY_ENV, "bench")
    with tempfile.TemporaryDirectory(prefix="mcp-router-state-") as tmp, stub_process() as stub:
        workdir = Path(tmp)
        config = workdir / "router.toml"
        config.write_text(config_text(stub))
        yield Setup(stub, workdir, config, resolve_folder("builtin:sample_docs", workdir))
