"""The mixed pool under load: each tool has a faulty arm and a healthy arm on the fault server.

`search` has two SearXNG arms and `llm_complete` one model served by two OpenAI-compatible endpoints;
in each pair one arm sits behind the fault server's `mix` prefix (every `FAULT_EVERY`-th request it
receives fails, rotating through `faults.MIX_FAULTS`: 503, 429 with Retry-After, TCP reset, 500,
malformed JSON, 502, an HTML error page, 429 with an HTTP date, a 200 HTML page) and the other is
`ok`. Each faulty arm's prefix carries a tag (`mix5.search`, `mix5.llm`): a request counter of its
own, so each tool meets its own 10 %.

The share of calls that meet a fault is fixed by the setting, not learned away: the router is
`round-robin` with the guards off, so each call starts on the other arm than the last. Under `lqm`
with its guards (the default), the faulty arm is cooled down for the 2 s Retry-After of each rotating
429 (one in 22 of its requests) and learned to be worse, and it got ~5 % of the search attempts in a
trial run: 2 % of calls met a fault, too few to load the fallback path. The guards and LQM have
tests of their own; this benchmark loads the path a fault takes (attempt, fallback, record).

The mix holds no `timeout` or `slowloris`: each fault answers at once, so a call that falls back costs
one extra round trip, not a provider timeout, and the latency figures measure the router. Provider
timeouts are short (2 s) anyway, so a stall, if one ever happened, would show as a timeout attempt
rather than hold a worker for long. The judge is off: it would grade on the faulty endpoints too, in
the background, and muddy "which calls saw a fault".
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from mcp_router.bench.faults import FaultServer, fault_server
from mcp_router.bench.overhead.setting import KEY_ENV, child_env
from mcp_router.bench.toml_config import JUDGE_OFF, openai_provider, render, tool

# Every FAULT_EVERY-th request to a faulty arm fails; the router alternates the arms (below), so the
# faulty arm takes half of the first attempts and 1/(2·FAULT_EVERY) = 10 % of calls meet a fault.
# Each tool's faulty arm has a counter of its own (the `.tag` of its prefix), so each tool gets 10 %.
FAULT_EVERY = 5
FAULTY = f"mix{FAULT_EVERY}"
ROUTER = "round-robin"
HEALTHY = "ok"
PROVIDER_TIMEOUT_S = 2.0
TOOL_DEADLINE_S = 10.0
MODEL = "stub-model"
BUDGET_USD = 1.0  # per llm_complete session: far above what the load spends, so no call is refused
# arm name -> fault prefix, per tool
SEARCH_ARMS = {"searx-faulty": f"{FAULTY}.search", "searx-ok": HEALTHY}
LLM_ARMS = {"llm-faulty": f"{FAULTY}.llm", "llm-ok": HEALTHY}


@dataclass(frozen=True)
class LoadSetup:
    """The fault server, the scratch folder with the router config, and the database path."""

    faults: FaultServer
    workdir: Path
    config: Path
    db: Path

    def env(self) -> dict[str, str]:
        """What server and load-generator children add to this process's environment."""
        return child_env()

    def log(self, name: str) -> Path:
        return self.workdir / f"{name}.log"


def config_text(faults: FaultServer) -> str:
    """The router config: the two pairs above, short timeouts, no judge, no retrieve providers."""
    pool = {"timeout_s": PROVIDER_TIMEOUT_S, "max_connections": 64}
    search = [
        {"name": name, "type": "searxng", "base_url": faults.searx_base(prefix), **pool}
        for name, prefix in SEARCH_ARMS.items()
    ]
    llm = [
        openai_provider(
            name, faults.openai_base(prefix), MODEL, KEY_ENV, (1.5e-7, 6.0e-7), quality_prior=0.6, **pool
        )
        for name, prefix in LLM_ARMS.items()
    ]
    settings = {
        "router": ROUTER,
        "guards": {"enabled": False},
        "max_attempts": 3,
        "timeout_s": TOOL_DEADLINE_S,
    }
    return render(
        {"auto_providers": False},
        [*tool("search", settings, search), *tool("llm_complete", settings, llm), JUDGE_OFF],
    )


@contextlib.contextmanager
def load_setup() -> Iterator[LoadSetup]:
    """The fault server and a scratch folder (config, database, logs), both gone when the block ends."""
    os.environ.setdefault(KEY_ENV, "bench")
    with tempfile.TemporaryDirectory(prefix="mcp-router-load-") as tmp, fault_server() as faults:
        workdir = Path(tmp)
        config = workdir / "router.toml"
        config.write_text(config_text(faults))
        yield LoadSetup(faults, workdir, config, workdir / "router.db")
