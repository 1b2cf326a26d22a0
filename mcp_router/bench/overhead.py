"""`mcp-router bench overhead`: what the router adds to a tool call, measured against bare floors.

Everything runs in one invocation, side by side, against instant loopback providers served by a
separate process (`stubs.py`: an OpenAI-compatible chat endpoint and a SearXNG endpoint that answer
in tens of microseconds), so what is left is the caller's cost:

1. micro, no MCP: one LQM-ContextRoute decision over 8 warmed arms, the server's query features, and
   MTRouter's model decision on its priors and with a checkpoint (history embedding cached or not);
2. the full path of a routed `search`, `retrieve` (bm25) and `llm_complete` in process, over stdio and
   over streamable HTTP, each against a bare-SDK floor (`floor_server.py`) making the same provider
   call on the same transport; batches of router and floor calls alternate so machine noise hits
   both, and "added" is router minus floor;
3. LiteLLM's `Router.acompletion` against a raw httpx call to the same stub (if `litellm` is installed);
4. throughput over streamable HTTP at concurrency 1, 16 and 64, driven by a load generator in its own
   process, router against floor;
5. the RSS of a process serving routed calls in process, after a few and after many calls;
6. start-up: process start to the first served `search` / `retrieve` over stdio, router and floor.

The bars of the issue are evaluated at the end and reported pass/fail. They are only read, never
aimed at: nothing here tunes the server. `--quick` shrinks every count (a CI smoke run) but keeps
every row kind. Progress goes to stderr, the table to stdout, every figure to `--json`.

The load generator and the RSS probe are subcommands of this module run as child processes:
`python -m mcp_router.bench.overhead loadgen|rss ...`.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import importlib
import itertools
import json
import logging
import math
import os
import socket
import subprocess
import sys
import tempfile
import time
import warnings
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from types import ModuleType
from typing import Any

import anyio
import httpx
import numpy as np
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client

from mcp_router.bench.floor_server import FloorConfig, create_floor_server
from mcp_router.bench.stubs import Stub, stub_process, stub_stats
from mcp_router.config import load_config, resolve_folder
from mcp_router.routing import Outcome, RouteContext, build_router
from mcp_router.routing.features import Featurizer, text_features
from mcp_router.routing.lqm import FEATURE_DIM

KEY_ENV = "MCP_ROUTER_BENCH_KEY"  # the stub's "API key" variable, named by the bench config
BUDGET_USD = 1.0
MAX_TOKENS = 64
FEEDBACK_SCORE = 0.7
TRANSPORTS = ("in-process", "stdio", "http")
TOOLS = ("search", "retrieve", "llm_complete")
LQM_ARMS = 8
LOADGEN_SESSIONS = 8
CALL_TIMEOUT_S = 60.0
LITELLM_VERSION = "1.81.16"  # the `bench` extra's pin
WORDS_TEXT = (
    "configure client routing provider search retrieve model budget latency claude desktop server "
    "config key environment collection document bm25 dense hybrid judge feedback quality bandit "
    "stdio http transport cursor vscode resource stats fallback timeout breaker cooldown price "
    "token session window checkpoint train router weather paris history science football music "
    "recipe garden python rust database index cache memory policy warm start arm score"
)
WORDS = tuple(WORDS_TEXT.split())


# ------------------------------------------------------------------------------------------ statistics


@dataclass(frozen=True)
class Dist:
    """A latency sample summarised by nearest-rank percentiles (seconds in, ms or µs out)."""

    n: int
    p50_s: float
    p99_s: float
    mean_s: float

    @classmethod
    def of(cls, seconds: Sequence[float]) -> Dist:
        ordered = sorted(seconds)
        if not ordered:
            return cls(0, math.nan, math.nan, math.nan)
        return cls(
            len(ordered), quantile(ordered, 0.50), quantile(ordered, 0.99), sum(ordered) / len(ordered)
        )

    def ms(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "p50_ms": _round(self.p50_s * 1e3),
            "p99_ms": _round(self.p99_s * 1e3),
            "mean_ms": _round(self.mean_s * 1e3),
        }

    def us(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "p50_us": _round(self.p50_s * 1e6, 2),
            "p99_us": _round(self.p99_s * 1e6, 2),
            "mean_us": _round(self.mean_s * 1e6, 2),
        }


def quantile(ordered: Sequence[float], q: float) -> float:
    """Nearest-rank quantile of an ascending sample: the value that `q` of the sample does not exceed."""
    return float(ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))])


def _round(value: float, digits: int = 4) -> float | None:
    return None if value is None or math.isnan(value) else round(value, digits)


# ------------------------------------------------------------------------------------------ parameters


@dataclass(frozen=True)
class Params:
    """Every count of one run; `FULL` is the benchmark, `QUICK` the CI smoke run (same row kinds)."""

    quick: bool
    lqm_decisions: int
    feature_queries: int
    mt_prior_decisions: int
    mt_checkpoint_decisions: int
    path_calls: int  # per (tool, transport): this many router calls, and as many of each floor
    batch: int  # calls per alternating batch
    warmup_calls: int  # router calls (each rated with `feedback`) before measuring, per tool
    litellm_calls: int
    throughput: dict[int, int]  # concurrency -> calls sent
    rss_points: tuple[int, ...]  # routed calls after which RSS is read
    startup_reps: int

    def describe(self) -> dict[str, Any]:
        return {k: (dict(v) if isinstance(v, dict) else v) for k, v in asdict(self).items()}


FULL = Params(
    quick=False,
    lqm_decisions=20_000,
    feature_queries=5_000,
    mt_prior_decisions=5_000,
    mt_checkpoint_decisions=300,
    path_calls=1_000,
    batch=50,
    warmup_calls=40,
    litellm_calls=1_000,
    throughput={1: 500, 16: 2_000, 64: 4_000},
    rss_points=(1_000, 100_000),
    startup_reps=3,
)
QUICK = Params(
    quick=True,
    lqm_decisions=2_000,
    feature_queries=300,
    mt_prior_decisions=300,
    mt_checkpoint_decisions=10,
    path_calls=40,
    batch=20,
    warmup_calls=25,
    litellm_calls=40,
    throughput={1: 20, 16: 64, 64: 128},
    rss_points=(200, 1_000),
    startup_reps=1,
)


_CLOCK = {"started": time.monotonic()}


def progress(message: str) -> None:
    """One line on stderr, stamped with the seconds since the run began: the table owns stdout."""
    print(f"[overhead {time.monotonic() - _CLOCK['started']:6.1f}s] {message}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------- the setting


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


@dataclass(frozen=True)
class Setup:
    """What every measurement shares: the stub, the router config, the docs, the child environment."""

    stub: Stub
    workdir: Path
    config: Path
    docs: Path

    def env(self) -> dict[str, str]:
        """The environment of server children (the SDK's stdio client passes only a minimal one)."""
        return {
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "TOKENIZERS_PARALLELISM": "false",
            KEY_ENV: "bench",
            "PATH": os.environ.get("PATH", ""),
        }

    def db(self, name: str) -> Path:
        return self.workdir / f"{name}.db"


def config_text(stub: Stub) -> str:
    """Two `searxng` arms and two priced `openai` models at the stub, the packaged docs for bm25, MTRouter
    on its priors. The judge is off: it grades in the background, off the request path, and with the
    stub as its model it would only add load that the floors do not have."""
    llm = "".join(
        f"""
[[tools.llm_complete.providers]]
name = "{m.endpoint}"
type = "openai"
base_url = "{stub.openai_base}"
model = "{m.name}"
api_key_env = "{KEY_ENV}"
input_cost_per_token = {m.input_cost}
output_cost_per_token = {m.output_cost}
quality_prior = {m.prior}
context_window = 128000
timeout_s = 20
"""
        for m in MODELS
    )
    search = "".join(
        f'\n[[tools.search.providers]]\nname = "{name}"\ntype = "searxng"\nbase_url = "{stub.searx_base}"\n'
        "timeout_s = 8\n"
        for name in ("searx-a", "searx-b")
    )
    return f"""auto_providers = false

[collections.docs]
path = "builtin:sample_docs"

[tools.search]
router = "lqm"
max_attempts = 3
timeout_s = 30
{search}
[tools.retrieve]
router = "lqm"
max_attempts = 3
timeout_s = 30

[[tools.retrieve.providers]]
name = "bm25"
type = "bm25"

[tools.llm_complete]
router = "lqm"
max_attempts = 2
timeout_s = 50
{llm}
[judge]
enabled = false
"""


@contextlib.contextmanager
def bench_setup() -> Iterator[Setup]:
    """The stub process and a scratch folder, both gone when the block ends."""
    os.environ.setdefault(KEY_ENV, "bench")
    with tempfile.TemporaryDirectory(prefix="mcp-router-overhead-") as tmp, stub_process() as stub:
        workdir = Path(tmp)
        config = workdir / "router.toml"
        config.write_text(config_text(stub))
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


# ------------------------------------------------------------------------ seams into the serving code


def first_module(*names: str) -> ModuleType:
    """The first of `names` that exists. The serving modules moved (mcp_router/*.py ->
    mcp_router/serving/) in the hot-path rewrite; the bench imports either so it runs on both sides."""
    for name in names:
        try:
            return importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name is None or not name.startswith(exc.name):
                raise  # the module exists but one of its own imports is missing: a real error
    raise ModuleNotFoundError(f"none of {names}")


def router_server(config: Path, db: Path) -> Any:
    """`create_server(load_config(config), db)`: exactly what `mcp-router serve` runs."""
    server = first_module("mcp_router.serving.server", "mcp_router.server")
    return server.create_server(load_config(config), db)


def runtime_module() -> ModuleType:
    return first_module("mcp_router.serving.runtime", "mcp_router.runtime")


def server_featurizer() -> Callable[[str], np.ndarray]:
    """The featurizer the server builds: the runtime's factory if it has one, else what `open_runtime`
    constructs."""
    runtime = runtime_module()
    if hasattr(runtime, "featurizer"):
        return runtime.featurizer()
    if hasattr(Featurizer, "default"):
        return Featurizer.default()
    from providers.retrieve.embedder import embed

    return Featurizer(embed=embed)  # type: ignore[call-arg]


@contextlib.contextmanager
def open_store(db: Path) -> Iterator[Any]:
    """The server's `Store` over `db`, closed after."""
    store = first_module("mcp_router.store").Store(db)
    try:
        yield store
    finally:
        store.close()


def promote_checkpoint(db: Path, row: dict[str, Any]) -> None:
    """Register `row` as the promoted checkpoint of `db`, as `mcp-router train --from-db` does."""
    with open_store(db) as store:
        log = first_module("mcp_router.store.model_log", "mcp_router.model_log").ModelLog(store)
        log.register_checkpoint({**row, "status": "candidate"})
        log.promote(row["checkpoint_id"])


# ------------------------------------------------------------------------------------------- micro


def bench_lqm(params: Params) -> dict[str, Any]:
    """One LQM decision over 8 arms, each past warm-up (n_min quality observations with features and
    latency outcomes), so the timed path is the scored one, not the round-robin warm-up."""
    arms = [f"arm-{i}" for i in range(LQM_ARMS)]
    router = build_router("lqm", "search", arms, l_ref_s=1.0)
    dim = int(getattr(router, "dim", FEATURE_DIM))
    rng = np.random.default_rng(0)
    xs = rng.normal(size=(256, dim))
    xs /= np.linalg.norm(xs, axis=1, keepdims=True)
    now = time.time()
    for i, arm in enumerate(arms):
        for j in range(3 * router.params.n_min):
            router.observe_quality(arm, xs[(i + j) % len(xs)], float(rng.uniform(0.2, 0.9)), now)
            router.observe(Outcome(arm, "ok", float(rng.uniform(0.05, 0.6)), now))
    samples, policies = [], Counter()
    for i in range(params.lqm_decisions):
        t = now + 1e-3 * i
        started = time.perf_counter()
        decision = router.rank(RouteContext(tool="search", text="q", now=t, x=xs[i % len(xs)]))
        samples.append(time.perf_counter() - started)
        policies[decision.policy] += 1
    return {"arms": LQM_ARMS, "dim": dim, "policies": dict(policies), **Dist.of(samples).us()}


def bench_features(params: Params) -> dict[str, Any]:
    """The server's featurizer on varied queries, after a warm-up call has loaded what it needs."""
    featurize = server_featurizer()
    texts = queries(params.feature_queries, seed=1)
    for text in texts[:20]:
        featurize(text)
    total, cheap = [], []
    for text in texts:
        started = time.perf_counter()
        featurize(text)
        total.append(time.perf_counter() - started)
        started = time.perf_counter()
        text_features(text)
        cheap.append(time.perf_counter() - started)
    return {
        "featurizer": type(featurize).__name__,
        **Dist.of(total).us(),
        "text_features_only": Dist.of(cheap).us(),
    }


@contextlib.contextmanager
def server_model_router(config: Path, db: Path) -> Iterator[Any]:
    """The `ModelRouter` the server builds (`runtime.model_planner`): its pool, parameters, MiniLM
    loader, and its database as checkpoint registry and embedding cache."""
    with open_store(db) as store:
        planner = runtime_module().model_planner(load_config(config), store)
        if planner is None:
            raise RuntimeError("the bench config has no MTRouter pool")
        yield planner.router


def write_checkpoint(pool: Sequence[Any], model_params: Any, folder: Path) -> dict[str, Any]:
    """A randomly initialised MTRouter checkpoint for `pool`, written with `Checkpoint.save` and
    described as a registry row. Timing only: its predictions mean nothing."""
    import torch

    from mcp_router.routing.mtrouter.checkpoint import Checkpoint
    from mcp_router.routing.mtrouter.network import MTRouterNet
    from mcp_router.routing.mtrouter.pool import MetaNorm, meta_features, spec_to_dict
    from mcp_router.routing.mtrouter.router import build_encoder
    from providers.retrieve.embedder import load_model

    encoder = build_encoder(model_params.embedder, model_params.packing, minilm=load_model)
    norm = MetaNorm.fit(pool)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        net = MTRouterNet(encoder.dim, norm.apply(np.stack([meta_features(s) for s in pool]))).eval()
    checkpoint = Checkpoint(
        net=net,
        pool=tuple(s.name for s in pool),
        meta={
            "encoder_id": encoder.encoder_id,
            "meta_norm": norm.to_dict(),
            "specs": [spec_to_dict(s) for s in pool],
            "c_bar": 0.002,
            "source": "bench overhead (random weights)",
        },
    )
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "mtrouter-bench.pt"
    checkpoint.save(path)
    return {
        "checkpoint_id": checkpoint.checkpoint_id,
        "path": str(path),
        "parent_id": None,
        "created_at": time.time(),
        "pool": [s.name for s in pool],
        "encoder_id": encoder.encoder_id,
        "meta": {"c_bar": 0.002},
        "validation": {},
    }


def time_decisions(router: Any, histories: Sequence[list[dict[str, str]]]) -> tuple[Dist, Counter]:
    samples, stages = [], Counter()
    for messages in histories:
        started = time.perf_counter()
        decision = router.decide(messages, MAX_TOKENS, BUDGET_USD)
        samples.append(time.perf_counter() - started)
        stages[decision.stage] += 1
    return Dist.of(samples), stages


def conversation(turn: str) -> list[dict[str, str]]:
    return [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "Plan a three-day trip to Lisbon."},
        {
            "role": "assistant",
            "content": "Day one: Alfama and the castle. Day two: Belém. Day three: Sintra.",
        },
        {"role": "user", "content": turn},
    ]


def bench_mtrouter(params: Params, setup: Setup) -> tuple[dict[str, Any], dict[str, Any]]:
    """The server's MTRouter deciding on its priors (on the calling thread, as the server does), then,
    once a checkpoint is promoted, on a history whose embedding is cached (the same conversation
    again) or not (a turn never seen). Returns the report and the checkpoint's registry row."""
    db = setup.db("mtrouter-micro")
    with server_model_router(setup.config, db) as router:
        fixed = [conversation("And on a rainy day?")] * params.mt_prior_decisions
        prior, prior_stages = time_decisions(router, fixed)
        row = write_checkpoint(router.pool, router.params, setup.workdir / "checkpoints")
        promote_checkpoint(db, row)
        router.refresh()
        if router.checkpoint is None:
            raise RuntimeError("the bench checkpoint did not load; see the log above")
        fresh = [
            conversation(f"{q} (turn {i})") for i, q in enumerate(queries(params.mt_checkpoint_decisions, 2))
        ]
        cached, cached_stages, uncached, uncached_stages = time_in_worker(router, fixed[0], fresh)
    report = {
        "pool": [s.name for s in router.pool],
        "embedder": router.params.embedder,
        "packing": router.params.packing,
        "embedding_cache": "the server's (its database, through ModelLog)",
        "prior": {**prior.us(), "stages": dict(prior_stages)},
        "checkpoint_cached": {**cached.us(), "stages": dict(cached_stages)},
        "checkpoint_uncached": {**uncached.us(), "stages": dict(uncached_stages)},
        "history_embedding_p50_us": _round((uncached.p50_s - cached.p50_s) * 1e6, 1),
    }
    return report, row


def time_in_worker(
    router: Any, same: list[dict[str, str]], fresh: Sequence[list[dict[str, str]]]
) -> tuple[Dist, Counter, Dist, Counter]:
    """Cached then uncached decisions, timed in one worker thread: the server runs an embedding
    decision in a worker thread (`ModelRouter.embeds`), and torch's intra-op threading behaves
    differently on the main thread (25x slower there on a busy 2-core machine, measured)."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="mtrouter-decide") as worker:
        worker.submit(router.decide, same, MAX_TOKENS, BUDGET_USD).result()  # later calls: cached
        cached = worker.submit(time_decisions, router, [same] * len(fresh)).result()
        uncached = worker.submit(time_decisions, router, fresh).result()
    return (*cached, *uncached)


# --------------------------------------------------------------------------------------- full path


@dataclass(frozen=True)
class PathRow:
    """One routed tool on one transport, beside the floor that makes the same provider call."""

    tool: str
    transport: str
    variant: str  # "", or for llm_complete: priors | checkpoint, uncached | cached history
    router: Dist
    floor: Dist
    echo: Dist
    stages: dict[str, int] = field(default_factory=dict)  # llm_complete: MTRouter stages seen
    policies: dict[str, Any] = field(default_factory=dict)  # LQM policies of the last calls

    @property
    def added_p50_ms(self) -> float:
        return (self.router.p50_s - self.floor.p50_s) * 1e3

    @property
    def added_p99_ms(self) -> float:
        return (self.router.p99_s - self.floor.p99_s) * 1e3

    def to_json(self) -> dict[str, Any]:
        return {
            "tool": self.tool,
            "transport": self.transport,
            "variant": self.variant,
            "router": self.router.ms(),
            "floor_same_call": self.floor.ms(),
            "floor_echo": self.echo.ms(),
            "added_p50_ms": _round(self.added_p50_ms),
            "added_p99_ms": _round(self.added_p99_ms),
            "stages": self.stages,
            "policies": self.policies,
        }


class CallFailed(RuntimeError):
    """A measured call returned an error: the setting is broken, and a timing of it would mean nothing."""


async def timed_call(client: Any, tool: str, args: dict[str, Any]) -> tuple[float, Any]:
    """(seconds, result) of one tool call seen from the client; an error result raises `CallFailed`."""
    started = time.perf_counter()
    result = await client.call_tool(tool, args)
    elapsed = time.perf_counter() - started
    if result.is_error:
        text = result.content[0].text if result.content else "(no text)"
        raise CallFailed(f"{tool} failed: {text[:500]}")
    return elapsed, result


Caller = Callable[[int], Awaitable[float]]


async def alternate(callers: dict[str, Caller], calls: int, batch: int) -> dict[str, list[float]]:
    """`calls` calls of each caller in batches, the order of the callers reversed every round, so slow
    phases of the machine land on all of them alike."""
    samples: dict[str, list[float]] = {name: [] for name in callers}
    names = list(callers)
    for round_ in range(math.ceil(calls / batch)):
        for name in names if round_ % 2 == 0 else names[::-1]:
            for i in range(round_ * batch, min(calls, (round_ + 1) * batch)):
                samples[name].append(await callers[name](i))
    return samples


async def warm_router(client: Any, tool: str, calls: int, history: Callable[[int], str]) -> None:
    """Calls rated through `feedback`, so every arm leaves LQM's warm-up before anything is timed."""
    for i in range(calls):
        _, result = await timed_call(client, tool, tool_args(tool, history(i), floor=False))
        rating = {"call_id": result.structured_content["call_id"], "score": FEEDBACK_SCORE}
        await timed_call(client, "feedback", rating)


async def recent_policies(client: Any) -> dict[str, Any]:
    """The LQM policy of the server's last calls (`router://calls/recent`), to show that the timed calls
    were past warm-up. Diagnostics only: the resource's shape is the server's business."""
    try:
        body = json.loads((await client.read_resource("router://calls/recent")).contents[0].text)
        return dict(Counter(str(c.get("decision", {}).get("policy")) for c in body.get("calls", [])))
    except Exception as exc:  # a missing or reshaped resource must not end the run
        return {"unavailable": type(exc).__name__}


async def measure_tool(
    router: Any,
    floor: Any,
    tool: str,
    transport: str,
    params: Params,
    variant: str = "",
    history: Callable[[int], str] | None = None,
) -> PathRow:
    """Warm both sides, then alternate batches of router, same-call floor and echo floor calls. Warm-up
    calls use texts past the measured ones, so no measured call repeats one (a cached history would)."""
    calls = params.path_calls
    texts = queries(calls + params.warmup_calls, seed=10 * TOOLS.index(tool) + len(transport))
    pick = history or (lambda i: texts[i % len(texts)])
    await warm_router(router, tool, params.warmup_calls, lambda i: pick(calls + i))
    for i in range(calls, calls + 5):
        await timed_call(floor, tool, tool_args(tool, pick(i), floor=True))
        await timed_call(floor, "echo", {"text": pick(i)})
    stages: Counter = Counter()

    async def call_router(i: int) -> float:
        elapsed, result = await timed_call(router, tool, tool_args(tool, pick(i), floor=False))
        if tool == "llm_complete":
            stages[(result.structured_content.get("model_choice") or {}).get("stage")] += 1
        return elapsed

    async def call_floor(i: int) -> float:
        return (await timed_call(floor, tool, tool_args(tool, pick(i), floor=True)))[0]

    async def call_echo(i: int) -> float:
        return (await timed_call(floor, "echo", {"text": pick(i)}))[0]

    samples = await alternate(
        {"router": call_router, "floor": call_floor, "echo": call_echo}, calls, params.batch
    )
    return PathRow(
        tool=tool,
        transport=transport,
        variant=variant or ("priors" if tool == "llm_complete" else ""),
        router=Dist.of(samples["router"]),
        floor=Dist.of(samples["floor"]),
        echo=Dist.of(samples["echo"]),
        stages={str(k): v for k, v in stages.items()},
        policies=await recent_policies(router),
    )


def floor_config(setup: Setup) -> FloorConfig:
    return FloorConfig(stub_url=setup.stub.base_url, docs=setup.docs, model=MODELS[1].name)


def serve_args(setup: Setup, db: Path, *extra: str) -> list[str]:
    return ["-m", "mcp_router", "serve", "--config", str(setup.config), "--db", str(db), *extra]


def floor_args(setup: Setup, *extra: str) -> list[str]:
    return [
        "-m",
        "mcp_router.bench.floor_server",
        "--stub",
        setup.stub.base_url,
        "--docs",
        str(setup.docs),
        *extra,
    ]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def http_server(args: list[str], env: dict[str, str], log: Path) -> Iterator[str]:
    """A server child on a free loopback port; yields its MCP URL and stops it (by its pid) after."""
    port = free_port()
    with open(log, "ab") as sink:
        process = subprocess.Popen(
            [sys.executable, *args, "--transport", "http", "--port", str(port)],
            stdout=sink,
            stderr=subprocess.STDOUT,
            env={**os.environ, **env},
        )
        try:
            wait_for_port(process, port, log)
            yield f"http://127.0.0.1:{port}/mcp"
        finally:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def wait_for_port(process: subprocess.Popen, port: int, log: Path, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"server did not start; its log:\n{tail(log)}") from None
            time.sleep(0.05)


@contextlib.asynccontextmanager
async def explained(what: str, log: Path) -> AsyncIterator[None]:
    """Failures of a server child surface as a bare "Connection closed" (in an exception group): add
    the end of the servers' log, which says why."""
    try:
        yield
    except Exception as exc:
        raise RuntimeError(
            f"{what} failed ({type(exc).__name__}: {exc}); the log ends:\n{tail(log)}"
        ) from exc


def tail(path: Path, chars: int = 3000) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return "(no log)"


@contextlib.contextmanager
def logs_to(path: Path) -> Iterator[None]:
    """Send this process's log records to a file while an in-process server (or LiteLLM) runs: the
    same records, at the same levels, as a server child writes to its stderr, without flooding the
    progress lines. Loggers with handlers of their own (LiteLLM's) are redirected too."""
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    loggers = [logging.getLogger()] + [
        logger
        for logger in logging.root.manager.loggerDict.values()
        if isinstance(logger, logging.Logger) and logger.handlers
    ]
    saved = [logger.handlers[:] for logger in loggers]
    for logger in loggers:
        logger.handlers = [handler]
    try:
        yield
    finally:
        for logger, handlers in zip(loggers, saved, strict=True):
            logger.handlers = handlers
        handler.close()


def stdio_client_for(args: list[str], env: dict[str, str], log: Any) -> Any:
    params = StdioServerParameters(command=sys.executable, args=args, env=env)
    return Client(stdio_client(params, errlog=log), cache=None, read_timeout_seconds=CALL_TIMEOUT_S)


@dataclass(frozen=True)
class Pair:
    router: Any  # an open mcp.Client on the router
    floor: Any  # an open mcp.Client on the floor server
    urls: tuple[str, str] | None = None  # (router, floor) MCP URLs over http


@contextlib.asynccontextmanager
async def open_pair(transport: str, setup: Setup) -> AsyncIterator[Pair]:
    """Clients of the router and of its floor on `transport`; servers it starts are stopped on exit."""
    db = setup.db(f"router-{transport}")
    urls = None
    async with contextlib.AsyncExitStack() as stack:
        if transport == "in-process":
            stack.enter_context(logs_to(setup.workdir / "in-process.log"))
            router = Client(router_server(setup.config, db), cache=None, read_timeout_seconds=CALL_TIMEOUT_S)
            floor = Client(
                create_floor_server(floor_config(setup)), cache=None, read_timeout_seconds=CALL_TIMEOUT_S
            )
        elif transport == "stdio":
            log = stack.enter_context(open(setup.workdir / "stdio.log", "a"))  # noqa: SIM115
            router = stdio_client_for(serve_args(setup, db), setup.env(), log)
            floor = stdio_client_for(floor_args(setup, "--transport", "stdio"), setup.env(), log)
        else:
            log_path = setup.workdir / "http.log"
            urls = (
                stack.enter_context(http_server(serve_args(setup, db), setup.env(), log_path)),
                stack.enter_context(http_server(floor_args(setup), setup.env(), log_path)),
            )
            router = Client(urls[0], cache=None, read_timeout_seconds=CALL_TIMEOUT_S)
            floor = Client(urls[1], cache=None, read_timeout_seconds=CALL_TIMEOUT_S)
        yield Pair(await stack.enter_async_context(router), await stack.enter_async_context(floor), urls)


async def measure_transport(
    transport: str, setup: Setup, params: Params, report: dict[str, Any]
) -> list[PathRow]:
    """The three tools on one transport; over http, the throughput levels too, on the same servers."""
    rows = []
    log = setup.workdir / f"{transport}.log"
    async with explained(f"the {transport} measurement", log), open_pair(transport, setup) as pair:
        for tool in TOOLS:
            progress(f"full path: {tool} over {transport}")
            rows.append(await measure_tool(pair.router, pair.floor, tool, transport, params))
        if pair.urls is not None:
            progress("throughput over http (load generator process)")
            report["throughput"] = bench_throughput(setup, params, pair.urls)
    return rows


async def measure_checkpoint(setup: Setup, params: Params, row: dict[str, Any]) -> list[PathRow]:
    """`llm_complete` in process with a promoted checkpoint: a new turn every call (its history is
    embedded) and the same conversation every call (the embedding cache answers)."""
    db = setup.db("router-checkpoint")
    promote_checkpoint(db, row)
    texts = queries(params.path_calls + params.warmup_calls + 200, seed=3)
    rows = []
    with logs_to(setup.workdir / "in-process-checkpoint.log"):
        server = router_server(setup.config, db)
        async with (
            Client(server, cache=None, read_timeout_seconds=CALL_TIMEOUT_S) as router,
            Client(
                create_floor_server(floor_config(setup)), cache=None, read_timeout_seconds=CALL_TIMEOUT_S
            ) as floor,
        ):
            await wait_for_checkpoint(router)
            for variant, history in (
                ("checkpoint, uncached history", lambda i: f"{texts[i % len(texts)]} (turn {i})"),
                ("checkpoint, cached history", lambda i: "And what should I pack for it?"),
            ):
                progress(f"full path: llm_complete in-process, {variant}")
                rows.append(
                    await measure_tool(router, floor, "llm_complete", "in-process", params, variant, history)
                )
    return rows


async def wait_for_checkpoint(client: Any, timeout_s: float = 180.0) -> None:
    """The server loads a promoted checkpoint in the background: wait until decisions use it."""
    deadline = time.monotonic() + timeout_s
    i = 0
    while time.monotonic() < deadline:
        i += 1
        _, result = await timed_call(
            client, "llm_complete", tool_args("llm_complete", f"probe {i}", floor=False)
        )
        if (result.structured_content.get("model_choice") or {}).get("stage") == "checkpoint":
            return
        await anyio.sleep(0.2)
    raise RuntimeError(f"the server did not start using the promoted checkpoint within {timeout_s:.0f} s")


# ----------------------------------------------------------------------------------------- LiteLLM


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
        "version": _version("litellm"),
        "routing_strategy": "latency-based-routing",
        "litellm": lite.ms(),
        "raw_httpx": base.ms(),
        "added_p50_ms": _round((lite.p50_s - base.p50_s) * 1e3),
        "added_p99_ms": _round((lite.p99_s - base.p99_s) * 1e3),
    }


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


# -------------------------------------------------------------------------------------- throughput

THROUGHPUT_ROUNDS = 4  # each level alternates router and floor this many times


@dataclass
class Tally:
    """What one target's calls at one concurrency came to, summed over the rounds."""

    ok: int = 0
    errors: int = 0
    lost: int = 0
    wall_s: float = 0.0
    latencies: list[float] = field(default_factory=list)

    def to_json(self, target: str, concurrency: int) -> dict[str, Any]:
        answered = self.ok + self.errors
        return {
            "target": target,
            "concurrency": concurrency,
            "sent": answered + self.lost,
            "ok": self.ok,
            "errors": self.errors,
            "lost": self.lost,
            "wall_s": round(self.wall_s, 3),
            "calls_per_s": round(answered / self.wall_s, 1) if self.wall_s > 0 else 0.0,
            **Dist.of(self.latencies).ms(),
        }


async def drive(sessions: Sequence[Any], tool: str, concurrency: int, calls: int, tally: Tally) -> None:
    """`calls` calls from `concurrency` concurrent workers spread over `sessions`. A call that raises
    (timeout, dropped connection) is lost; an `is_error` result is answered, as an error."""
    texts = queries(256, seed=5)
    counter = itertools.count()

    async def worker(j: int) -> None:
        client = sessions[j % len(sessions)]
        while (i := next(counter)) < calls:
            started = time.perf_counter()
            try:
                result = await client.call_tool(tool, tool_args(tool, texts[i % len(texts)], floor=True))
            except Exception:
                tally.lost += 1
                continue
            tally.latencies.append(time.perf_counter() - started)
            if result.is_error:
                tally.errors += 1
            else:
                tally.ok += 1

    started = time.perf_counter()
    async with anyio.create_task_group() as group:
        for j in range(concurrency):
            group.start_soon(worker, j)
    tally.wall_s += time.perf_counter() - started


async def run_level(targets: dict[str, str], tool: str, concurrency: int, calls: int) -> list[dict[str, Any]]:
    """One concurrency level: up to 8 client sessions per target, connected and warmed first, then
    `calls` calls per target in rounds that alternate the targets, so a busy spell hits both."""
    tallies = {name: Tally() for name in targets}
    async with contextlib.AsyncExitStack() as stack:
        sessions = {
            name: [
                await stack.enter_async_context(Client(url, cache=None, read_timeout_seconds=CALL_TIMEOUT_S))
                for _ in range(min(concurrency, LOADGEN_SESSIONS))
            ]
            for name, url in targets.items()
        }
        for clients in sessions.values():
            for client in clients:
                await client.call_tool(tool, tool_args(tool, "warm up", floor=True))
        names = list(targets)
        for round_ in range(THROUGHPUT_ROUNDS):
            share = calls // THROUGHPUT_ROUNDS + (round_ < calls % THROUGHPUT_ROUNDS)
            for name in names if round_ % 2 == 0 else names[::-1]:
                await drive(sessions[name], tool, concurrency, share, tallies[name])
    return [tally.to_json(name, concurrency) for name, tally in tallies.items()]


async def loadgen(targets: dict[str, str], tool: str, levels: dict[int, int]) -> list[dict[str, Any]]:
    """Every level, in increasing concurrency, for every target."""
    rows = []
    for concurrency, calls in levels.items():
        rows += await run_level(targets, tool, concurrency, calls)
    return rows


def run_child(setup: Setup, name: str, *args: str, timeout_s: float = 7200) -> Any:
    """`python -m mcp_router.bench.overhead NAME ARGS` in its own process: JSON from its stdout, its
    stderr kept in the scratch folder and shown if it fails."""
    log = setup.workdir / f"{name}.log"
    with open(log, "ab") as sink:
        done = subprocess.run(
            [sys.executable, "-m", "mcp_router.bench.overhead", name, *args],
            stdout=subprocess.PIPE,
            stderr=sink,
            env={**os.environ, **setup.env()},
            timeout=timeout_s,
            check=False,
        )
    if done.returncode != 0:
        raise RuntimeError(f"`{name}` failed (exit {done.returncode}); its log:\n{tail(log)}")
    return json.loads(done.stdout)


def bench_throughput(setup: Setup, params: Params, urls: tuple[str, str]) -> list[dict[str, Any]]:
    """The load generator in its own process against the running HTTP router and floor (`search`)."""
    levels = ",".join(f"{c}:{n}" for c, n in params.throughput.items())
    rows = run_child(setup, "loadgen", "--router", urls[0], "--floor", urls[1], "--levels", levels)
    floor = {r["concurrency"]: r["calls_per_s"] for r in rows if r["target"] == "floor"}
    for r in rows:
        ratio = r["calls_per_s"] / floor[r["concurrency"]] if floor.get(r["concurrency"]) else None
        r["router_over_floor"] = round(ratio, 3) if r["target"] == "router" and ratio is not None else None
    return rows


# --------------------------------------------------------------------------------------------- RSS


def rss_mb() -> float:
    """This process's resident set: psutil if installed, else /proc/self/status."""
    try:
        import psutil

        return psutil.Process().memory_info().rss / 2**20
    except ImportError:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return math.nan


async def rss_probe(config: Path, db: Path, points: Sequence[int]) -> dict[str, Any]:
    """Routed `search` calls through an in-process server, RSS read after each of `points` calls."""
    texts = queries(1000, seed=6)
    readings = []
    async with Client(router_server(config, db), cache=None, read_timeout_seconds=CALL_TIMEOUT_S) as client:
        readings.append({"calls": 0, "rss_mb": round(rss_mb(), 1)})
        done = 0
        for point in sorted(points):
            for i in range(done, point):
                await timed_call(client, "search", tool_args("search", texts[i % len(texts)], floor=False))
                if (i + 1) % max(1, point // 10) == 0:
                    print(f"rss probe: {i + 1} calls", file=sys.stderr, flush=True)
            done = point
            gc.collect()
            readings.append({"calls": point, "rss_mb": round(rss_mb(), 1)})
    return {"readings": readings}


def bench_rss(setup: Setup, params: Params) -> dict[str, Any]:
    """The RSS probe in a fresh process, so nothing else this benchmark loaded is in its memory."""
    points = ",".join(str(p) for p in params.rss_points)
    result = run_child(
        setup, "rss", "--config", str(setup.config), "--db", str(setup.db("rss")), "--points", points
    )
    readings = result["readings"]
    first, last = readings[1], readings[-1]
    return {
        "tool": "search",
        "transport": "in-process",
        "readings": readings,
        "from_calls": first["calls"],
        "to_calls": last["calls"],
        "growth_mb": round(last["rss_mb"] - first["rss_mb"], 1),
    }


# ---------------------------------------------------------------------------------------- start-up


async def first_call_s(args: list[str], env: dict[str, str], tool: str, log: Path) -> float:
    """Seconds from spawning a stdio server to the answer of its first `tool` call."""
    with open(log, "a") as sink:
        async with explained(f"starting `{' '.join(args[:3])}`", log):
            started = time.perf_counter()
            async with stdio_client_for(args, env, sink) as client:
                await timed_call(
                    client, tool, tool_args(tool, "configure the claude desktop client", floor=True)
                )
                return time.perf_counter() - started


async def bench_startup(setup: Setup, params: Params) -> list[dict[str, Any]]:
    """Process start to first served `search` and `retrieve` (bm25), router (fresh database) and floor."""
    rows = []
    for tool in ("search", "retrieve"):
        for target in ("router", "floor"):
            samples = []
            for rep in range(params.startup_reps):
                args = (
                    serve_args(setup, setup.db(f"startup-{tool}-{rep}"))
                    if target == "router"
                    else floor_args(setup, "--transport", "stdio")
                )
                samples.append(await first_call_s(args, setup.env(), tool, setup.workdir / "startup.log"))
            rows.append(startup_row(target, tool, samples))
            progress(f"start-up: {target} {tool} {rows[-1]['median_s']} s")
    return rows


def startup_row(target: str, tool: str, samples: Sequence[float]) -> dict[str, Any]:
    return {
        "target": target,
        "tool": tool,
        "transport": "stdio",
        "samples_s": [round(s, 3) for s in samples],
        "median_s": round(float(np.median(samples)), 3),
        "max_s": round(max(samples), 3),
    }


# -------------------------------------------------------------------------------------------- bars


@dataclass(frozen=True)
class Bar:
    """One target of the issue: `value` against `limit` (`op` is <= or >=); None when not measured."""

    name: str
    value: float | None
    op: str
    limit: float
    unit: str
    note: str = ""

    @property
    def passed(self) -> bool | None:
        if self.value is None or (isinstance(self.value, float) and math.isnan(self.value)):
            return None
        return self.value <= self.limit if self.op == "<=" else self.value >= self.limit

    def to_json(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "value": _round(self.value) if self.value is not None else None,
            "pass": self.passed,
        }


def at_most(name: str, value: float | None, limit: float, unit: str, note: str = "") -> Bar:
    return Bar(name, value, "<=", limit, unit, note)


def at_least(name: str, value: float | None, limit: float, unit: str, note: str = "") -> Bar:
    return Bar(name, value, ">=", limit, unit, note)


def row_of(rows: Sequence[PathRow], tool: str, variant: str, transport: str = "in-process") -> PathRow | None:
    return next((r for r in rows if (r.tool, r.transport, r.variant) == (tool, transport, variant)), None)


def path_bars(rows: Sequence[PathRow]) -> list[Bar]:
    bars = []
    for tool, variant, label in (
        ("search", "", "search"),
        ("retrieve", "", "retrieve(bm25)"),
        ("llm_complete", "priors", "llm_complete(priors)"),
    ):
        row = row_of(rows, tool, variant)
        bars.append(at_most(f"in-process added p50, {label}", row and row.added_p50_ms, 1.0, "ms"))
        bars.append(at_most(f"in-process added p99, {label}", row and row.added_p99_ms, 3.0, "ms"))
    return bars


def checkpoint_bar(rows: Sequence[PathRow], micro: dict[str, Any]) -> Bar:
    """Judged on a new turn every call, whose history must be embedded: the realistic case."""
    uncached = row_of(rows, "llm_complete", "checkpoint, uncached history")
    cached = row_of(rows, "llm_complete", "checkpoint, cached history")
    full = (uncached.router.p50_s - cached.router.p50_s) * 1e3 if uncached and cached else math.nan
    alone = micro["mtrouter"]["history_embedding_p50_us"] / 1e3
    note = (
        f"a new turn every call; history embedding {alone:.2f} ms in the decision alone, "
        f"{full:.2f} ms on the full path (uncached − cached router p50)"
    )
    name = "in-process added p50, llm_complete(checkpoint)"
    return at_most(name, uncached and uncached.added_p50_ms, 10.0, "ms", note)


def litellm_bar(rows: Sequence[PathRow], lite: dict[str, Any]) -> Bar:
    name = "our added p50 / LiteLLM's added p50"
    ours = row_of(rows, "llm_complete", "priors")
    if not lite.get("installed") or ours is None or not lite.get("added_p50_ms"):
        return at_most(name, None, 0.1, "×", lite.get("skipped", "not measured"))
    theirs = lite["added_p50_ms"]
    note = f"ours {ours.added_p50_ms:.3f} ms (llm_complete in-process, priors), LiteLLM {theirs:.3f} ms"
    return at_most(name, ours.added_p50_ms / theirs, 0.1, "×", note)


def throughput_bars(rows: Sequence[dict[str, Any]]) -> list[Bar]:
    bars = []
    for concurrency in (16, 64):
        level = {r["target"]: r for r in rows if r["concurrency"] == concurrency}
        router, floor = level.get("router"), level.get("floor")
        lost = router["lost"] + floor["lost"] if router and floor else None
        ratio = router["router_over_floor"] if router else None
        bars.append(at_least(f"HTTP throughput router/floor, concurrency {concurrency}", ratio, 0.85, "×"))
        bars.append(at_most(f"HTTP calls lost (router + floor), concurrency {concurrency}", lost, 0, "calls"))
    return bars


def all_bars(report: dict[str, Any], rows: Sequence[PathRow]) -> list[Bar]:
    micro, rss = report["micro"], report["rss"]
    startup = {(r["target"], r["tool"]): r["median_s"] for r in report["startup"]}
    rss_note = f"{rss['from_calls']} → {rss['to_calls']} routed calls" + (
        " (quick: the bar is set for 1k → 100k)" if report["params"]["quick"] else ""
    )
    return [
        *path_bars(rows),
        checkpoint_bar(rows, micro),
        litellm_bar(rows, report["litellm"]),
        at_most("LQM decision p50", micro["lqm"]["p50_us"], 50.0, "µs", f"{LQM_ARMS} warmed arms"),
        at_most("query features p50", micro["features"]["p50_us"], 100.0, "µs"),
        *throughput_bars(report["throughput"]),
        at_most("RSS growth", rss["growth_mb"], 50.0, "MB", rss_note),
        *(
            at_most(f"start-up to first {tool}, router over stdio", startup.get(("router", tool)), 3.0, "s")
            for tool in ("search", "retrieve")
        ),
    ]


# ------------------------------------------------------------------------------------------ report

Column = tuple[str, Callable[[dict[str, Any]], Any]]


def fmt(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def table(columns: Sequence[Column], records: Sequence[dict[str, Any]]) -> str:
    """A plain-text table: text columns (the first, and a last `note`) left-aligned, figures right."""
    cells = [[h for h, _ in columns]] + [[fmt(get(r)) for _, get in columns] for r in records]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    left = {0, len(columns) - 1} if columns[-1][0] == "note" else {0}
    return "\n".join(
        "  ".join(
            c.ljust(w) if i in left else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in cells
    )


MICRO_ROWS = (
    (f"LQM decision, {LQM_ARMS} warmed arms", ("lqm",)),
    ("query features (the server's featurizer)", ("features",)),
    ("  of which text features only", ("features", "text_features_only")),
    ("MTRouter decide, priors", ("mtrouter", "prior")),
    ("MTRouter decide, checkpoint, cached history", ("mtrouter", "checkpoint_cached")),
    ("MTRouter decide, checkpoint, uncached history", ("mtrouter", "checkpoint_uncached")),
)
MICRO_COLUMNS: tuple[Column, ...] = (
    ("micro, no MCP", lambda r: r["label"]),
    ("n", lambda r: r["n"]),
    ("p50 µs", lambda r: r["p50_us"]),
    ("p99 µs", lambda r: r["p99_us"]),
)
PATH_COLUMNS: tuple[Column, ...] = (
    ("full path, ms", lambda r: r["tool"]),
    ("transport", lambda r: r["transport"]),
    ("variant", lambda r: r["variant"]),
    ("n", lambda r: r["router"]["n"]),
    ("router p50", lambda r: r["router"]["p50_ms"]),
    ("p99", lambda r: r["router"]["p99_ms"]),
    ("floor p50", lambda r: r["floor_same_call"]["p50_ms"]),
    ("p99", lambda r: r["floor_same_call"]["p99_ms"]),
    ("echo p50", lambda r: r["floor_echo"]["p50_ms"]),
    ("added p50", lambda r: r["added_p50_ms"]),
    ("added p99", lambda r: r["added_p99_ms"]),
)
THROUGHPUT_COLUMNS: tuple[Column, ...] = (
    ("HTTP throughput, search", lambda r: r["target"]),
    ("concurrency", lambda r: r["concurrency"]),
    *((name, (lambda key: lambda r: r[key])(name)) for name in ("sent", "ok", "errors", "lost")),
    ("calls/s", lambda r: r["calls_per_s"]),
    ("p50 ms", lambda r: r["p50_ms"]),
    ("p99 ms", lambda r: r["p99_ms"]),
    ("router/floor", lambda r: r.get("router_over_floor")),
)
STARTUP_COLUMNS: tuple[Column, ...] = (
    ("start-up over stdio, s", lambda r: r["target"]),
    ("first call", lambda r: r["tool"]),
    ("median", lambda r: r["median_s"]),
    ("max", lambda r: r["max_s"]),
    ("samples", lambda r: r["samples_s"]),
)
BAR_COLUMNS: tuple[Column, ...] = (
    ("bar", lambda b: b["name"]),
    ("value", lambda b: b["value"]),
    ("limit", lambda b: f"{b['op']} {b['limit']} {b['unit']}"),
    ("result", lambda b: {True: "pass", False: "FAIL", None: "n/a"}[b["pass"]]),
    ("note", lambda b: b["note"]),
)


def micro_records(micro: dict[str, Any]) -> list[dict[str, Any]]:
    records = []
    for label, path in MICRO_ROWS:
        entry = micro
        for key in path:
            entry = entry[key]
        records.append({"label": label, **entry})
    return records


def render(report: dict[str, Any]) -> str:
    m = report["machine"]
    rss = report["rss"]
    return "\n\n".join(
        [
            f"cores: {m['cores']}   python {m['python']}   mcp {m['mcp']}   load average at start "
            f"{m['load_average_at_start']}, at end {m['load_average_at_end']}\n"
            f"parameters: {json.dumps(report['params'])}\n"
            f"provider stub (own process, its handling time): {json.dumps(report['stub'])}",
            table(MICRO_COLUMNS, micro_records(report["micro"])),
            "router: mcp-router; floor: a bare MCPServer making the same provider call on the same "
            "transport; echo: that floor's echo tool\n" + table(PATH_COLUMNS, report["paths"]),
            render_litellm(report["litellm"]),
            table(THROUGHPUT_COLUMNS, report["throughput"]),
            f"RSS of an in-process server, routed search calls: {json.dumps(rss['readings'])}; "
            f"growth {rss['growth_mb']} MB from {rss['from_calls']} to {rss['to_calls']} calls",
            table(STARTUP_COLUMNS, report["startup"]),
            table(BAR_COLUMNS, report["bars"]) + f"\n\nwall time {report['wall_s']:.1f} s",
        ]
    )


def render_litellm(lite: dict[str, Any]) -> str:
    if not lite.get("installed"):
        return f"LiteLLM: skipped ({lite.get('skipped')})"
    a, b = lite["litellm"], lite["raw_httpx"]
    return (
        f"LiteLLM {lite['version']} Router.acompletion, {lite['routing_strategy']}: p50 {a['p50_ms']} ms, "
        f"p99 {a['p99_ms']} ms; raw httpx to the same stub: p50 {b['p50_ms']} ms, p99 {b['p99_ms']} ms; "
        f"LiteLLM adds p50 {lite['added_p50_ms']} ms, p99 {lite['added_p99_ms']} ms"
    )


# -------------------------------------------------------------------------------------------- run


def machine() -> dict[str, Any]:
    """What the figures depend on, including how busy the machine was (other work shares the cores)."""
    return {
        "cores": os.cpu_count(),
        "python": sys.version.split()[0],
        "mcp": _version("mcp"),
        "platform": sys.platform,
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


async def measure_paths(
    setup: Setup, params: Params, checkpoint_row: dict[str, Any], report: dict[str, Any]
) -> list[PathRow]:
    rows: list[PathRow] = []
    for transport in TRANSPORTS:
        rows += await measure_transport(transport, setup, params, report)
        if transport == "in-process":
            rows += await measure_checkpoint(setup, params, checkpoint_row)
    return rows


def bench_micro(params: Params, setup: Setup) -> tuple[dict[str, Any], dict[str, Any]]:
    """The three decisions without MCP; also returns the checkpoint row the full path reuses."""
    progress("micro: LQM decision")
    lqm = bench_lqm(params)
    progress("micro: query features")
    features = bench_features(params)
    progress("micro: MTRouter decision (priors, checkpoint)")
    mtrouter, checkpoint_row = bench_mtrouter(params, setup)
    return {"lqm": lqm, "features": features, "mtrouter": mtrouter}, checkpoint_row


async def run_all(params: Params) -> dict[str, Any]:
    """Every measurement, in an order that keeps the long ones (RSS, start-up) last."""
    started = _CLOCK["started"] = time.monotonic()
    report: dict[str, Any] = {"machine": machine(), "params": params.describe()}
    with bench_setup() as setup:
        report["micro"], checkpoint_row = bench_micro(params, setup)
        stub_stats(setup.stub)  # reset: the stub's own time is reported for the full paths on
        rows = await measure_paths(setup, params, checkpoint_row, report)
        report["paths"] = [r.to_json() for r in rows]
        report["stub"] = stub_stats(setup.stub)
        progress("LiteLLM")
        report["litellm"] = await bench_litellm(setup, params)
        progress(f"RSS after {', '.join(map(str, params.rss_points))} routed calls (separate process)")
        report["rss"] = bench_rss(setup, params)
        report["startup"] = await bench_startup(setup, params)
    report["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    report["bars"] = [b.to_json() for b in all_bars(report, rows)]
    report["wall_s"] = round(time.monotonic() - started, 1)
    return report


def main(args: argparse.Namespace) -> int:
    """`mcp-router bench overhead [--quick] [--json F]`."""
    params = QUICK if getattr(args, "quick", False) else FULL
    logging.getLogger("httpx2").setLevel(logging.WARNING)  # this process's MCP clients, one line per call
    report = anyio.run(run_all, params)
    print(render(report))
    if getattr(args, "json", None):
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
        progress(f"wrote {args.json}")
    return 0


# ------------------------------------------------------------------------------------- child entries


def _levels(text: str) -> dict[int, int]:
    return {int(c): int(n) for c, n in (part.split(":") for part in text.split(","))}


def worker_main(argv: Sequence[str] | None = None) -> None:
    """`loadgen` and `rss`: the parts that must run in a process of their own. JSON on stdout."""
    parser = argparse.ArgumentParser(prog="python -m mcp_router.bench.overhead")
    commands = parser.add_subparsers(dest="command", required=True)
    load = commands.add_parser("loadgen")
    load.add_argument("--router", required=True)
    load.add_argument("--floor", required=True)
    load.add_argument("--tool", default="search")
    load.add_argument("--levels", required=True, help="concurrency:calls,...")
    rss = commands.add_parser("rss")
    rss.add_argument("--config", required=True)
    rss.add_argument("--db", required=True)
    rss.add_argument("--points", required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(
        stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    for noisy in ("httpx", "httpcore", "httpx2"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    if args.command == "loadgen":
        targets = {"router": args.router, "floor": args.floor}
        result: Any = anyio.run(loadgen, targets, args.tool, _levels(args.levels))
    else:
        points = [int(p) for p in args.points.split(",")]
        result = anyio.run(rss_probe, Path(args.config), Path(args.db), points)
    print(json.dumps(result))


if __name__ == "__main__":
    worker_main()
