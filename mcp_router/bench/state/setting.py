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
from collections.abc import Iterator

from mcp_router.bench.overhead.setting import Setup, bench_setup
from mcp_router.bench.overhead.setting import config_text as overhead_config
from mcp_router.bench.stubs import Stub

SEARCH_ARMS = ("searx-a", "searx-b", "searx-c")
RETRIEVE_ARMS = ("bm25-a", "bm25-b")
COLLECTION = "docs"  # the collection of the shared config (overhead.setting.config_text)


def config_text(stub: Stub) -> str:
    """The server's config: every arm at the stub or the packaged docs, nothing that needs a key."""
    return overhead_config(stub, SEARCH_ARMS, RETRIEVE_ARMS, retrieve_attempts=2)


@contextlib.contextmanager
def state_setup() -> Iterator[Setup]:
    """The stub process and a scratch folder with the config, both gone when the block ends."""
    with bench_setup("state", config_text) as setup:
        yield setup
