"""Everything one server process holds while it runs, built from the config and closed on shutdown."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path

import anyio

from mcp_router.config import TOOLS, LoadedConfig
from mcp_router.routing import build_router
from mcp_router.routing.features import Featurizer
from mcp_router.routing.mtrouter.router import ModelParams, ModelRouter
from mcp_router.serving.dispatch import Arm, Dispatcher, JudgeSetup, ToolRoute
from mcp_router.serving.planner import BudgetPolicy, Planner
from mcp_router.store import Store
from mcp_router.store.model_log import ModelLog
from providers import Adapter, ProviderEnv, create_adapter
from providers.retrieve import embedder
from providers.retrieve.collections import CollectionLibrary
from providers.retrieve.local import DENSE_TYPES

log = logging.getLogger("mcp_router")


@dataclass
class Runtime:
    loaded: LoadedConfig
    store: Store
    env: ProviderEnv
    dispatcher: Dispatcher
    planner: Planner | None  # MTRouter's model choice for llm_complete; None when disabled
    _warm_up: WarmUp | None = None

    def warm_up(self) -> None:
        """Start the collections' indexer thread, and load models in another background thread,
        retrieval first, so the tools that need none serve at once and no call waits for a load while
        another arm can serve it."""
        self.env.collections.start()
        arms = [
            arm
            for tool in ("retrieve", "llm_complete", "search")
            for arm in self.dispatcher.routes[tool].arms.values()
        ]
        self._warm_up = WarmUp(arms)
        self._warm_up.start()

    @property
    def collections(self) -> CollectionLibrary:
        return self.env.collections

    async def aclose(self) -> None:
        if self._warm_up is not None:  # a process must not exit while a thread is inside llama.cpp
            await anyio.to_thread.run_sync(self._warm_up.stop)
        await anyio.to_thread.run_sync(self.env.collections.stop)  # saves what it embedded so far
        self.dispatcher.close()
        for route in self.dispatcher.routes.values():
            for arm in route.arms.values():
                await arm.adapter.aclose()
        await self.env.aclose()
        self.store.close()


class WarmUp:
    """The start-up thread that runs every arm's `prepare`, one after another. `stop` lets the load
    under way finish and skips the rest: shutdown never leaves a thread inside a model load."""

    def __init__(self, arms: list[Arm]) -> None:
        self.arms = arms
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="arm-warm-up", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join()

    def _run(self) -> None:
        for arm in self.arms:  # nothing to load: warm from the start
            arm.warmed = type(arm.adapter).prepare is Adapter.prepare
        for arm in self.arms:
            if arm.warmed:
                continue
            if self._stopping.is_set():
                return
            try:
                arm.adapter.prepare()
            except Exception:  # a warm-up failure is the first call's to report, with its own error
                log.warning("warm-up of %s failed", arm.name, exc_info=True)
            arm.warmed = True


def build_routes(loaded: LoadedConfig, env: ProviderEnv) -> dict[str, ToolRoute]:
    routes: dict[str, ToolRoute] = {}
    config = loaded.config
    for tool in TOOLS:
        tool_config = config.tool(tool)
        arms = {
            p.name: Arm(create_adapter(p.spec(config.collections_of(p)), env), p.timeout_s)
            for p in tool_config.enabled_providers()
        }
        disabled = {p.name: why for p in tool_config.providers if (why := p.disabled_reason())}
        router = build_router(
            tool_config.router,
            tool,
            list(arms),
            l_ref_s=loaded.config.l_ref_s(tool),
            seed=tool_config.seed,
            params={"judge_rate": loaded.config.judge.rate, **tool_config.lqm},
            guards=tool_config.guards,
            capacity={p.name: p.max_inflight for p in tool_config.enabled_providers() if p.max_inflight},
        )
        routes[tool] = ToolRoute(
            tool=tool,
            arms=arms,
            router=router,
            max_attempts=tool_config.max_attempts,
            deadline_s=tool_config.timeout_s,
            disabled=disabled,
            collections=loaded.catalogue() if tool == "retrieve" else {},
        )
        log.info(
            "%s: router %s over %s%s",
            tool,
            router.name,
            list(arms) or "no provider",
            f"; disabled {disabled}" if disabled else "",
        )
    return routes


def collection_library(loaded: LoadedConfig) -> CollectionLibrary:
    """The folder collections, with vectors only when an enabled arm ranks by them."""
    retrieve = loaded.config.tool("retrieve").enabled_providers()
    dense = any(p.type in DENSE_TYPES for p in retrieve)
    indexing = loaded.config.indexing
    return CollectionLibrary(
        loaded.collection_folders(),
        index_root=loaded.base_dir / Path(indexing.dir).expanduser() if indexing.dir else None,
        rescan_every_s=indexing.rescan_every_s,
        embed=embedder.embed_passages if dense else None,
    )


def open_runtime(loaded: LoadedConfig, database: Path | str) -> Runtime:
    env = ProviderEnv(collections=collection_library(loaded))
    store = Store(database)
    routes = build_routes(loaded, env)
    dispatcher = judged_dispatcher(loaded, routes, store)
    planner = model_planner(loaded, store, dispatcher)
    return Runtime(loaded=loaded, store=store, env=env, dispatcher=dispatcher, planner=planner)


def model_params(loaded: LoadedConfig) -> ModelParams:
    mt = loaded.config.tool("llm_complete").mtrouter
    return ModelParams(
        lam=mt.lambda_,
        beta=mt.beta,
        stay_bonus=mt.stay_bonus,
        typical_cost_usd=mt.typical_conversation_cost_usd,
        fallback_model=mt.fallback_model,
        embedder=mt.embedder,
        packing=mt.packing,
        seed=mt.seed,
    )


def model_router(loaded: LoadedConfig, store: Store) -> ModelRouter | None:
    """MTRouter over the serving pool, with the database as checkpoint registry and embedding cache;
    None when it is disabled or no model can serve."""
    mt = loaded.config.tool("llm_complete").mtrouter
    pool = loaded.config.serving_pool()
    if not mt.enabled or not pool:
        return None
    model_log = ModelLog(store)
    return ModelRouter(
        pool, model_params(loaded), promoted=model_log.promoted, cache=model_log, minilm=embedder.load_model
    )


def model_planner(loaded: LoadedConfig, store: Store, dispatcher: Dispatcher) -> Planner | None:
    router = model_router(loaded, store)
    if router is None:
        return None
    log.info("llm_complete: MTRouter over models %s", [m.name for m in router.pool])
    mt = loaded.config.tool("llm_complete").mtrouter
    deadline_s = dispatcher.routes["llm_complete"].deadline_s
    budgets = BudgetPolicy(mt.default_budget_usd, mt.max_budget_usd)
    return Planner(router, ModelLog(store), budgets, dispatcher.writer, 2 * deadline_s + 60.0)


def judge_setup(loaded: LoadedConfig, routes: dict[str, ToolRoute]) -> JudgeSetup | None:
    """The LLM judge. It runs on an arm of `llm_complete`, the same object, so its in-flight calls
    count there. With the local judge on, it judges only `llm_complete` calls."""
    provider = loaded.config.judge_provider()
    local = loaded.config.local_judge()
    if loaded.config.sampling_judge():
        log.info(
            "judge: the client's own model through MCP sampling, for clients that declared it on a "
            "handshake (legacy) session; otherwise the local judge for search and retrieve, and "
            "llm_complete is not judged"
        )
        return None
    if provider is None:
        if local:
            log.info("judge: local judge for search and retrieve; llm_complete is not judged (no LLM judge)")
        else:
            log.info("judge: off (disabled, or the named judge is not an enabled llm_complete provider)")
        return None
    judge = loaded.config.judge
    log.info(
        "judge: %s, rate %.2f",
        f"local judge for search and retrieve, {provider.name} for llm_complete" if local else provider.name,
        judge.rate,
    )
    return JudgeSetup(
        routes["llm_complete"].arms[provider.name], judge.max_tokens, judge.queue_size, judge.timeout_s
    )


def judged_dispatcher(loaded: LoadedConfig, routes: dict[str, ToolRoute], store: Store) -> Dispatcher:
    """The dispatcher with its judges (see `config.local_judge`): the LLM judge alone, or the local
    judge for search and retrieve on the same queue, with the LLM judge (if any) for llm_complete;
    or, opted into, the client's model through MCP sampling with the local judge as its fallback."""
    dispatcher = Dispatcher(routes, store, Featurizer.default(), judge=judge_setup(loaded, routes))
    if not loaded.config.local_judge():
        return dispatcher
    from mcp_router.feedback.local_judge import LocalJudge

    judge = loaded.config.judge
    if loaded.config.sampling_judge():
        from mcp_router.serving.sampling_judge import attach_sampling_judge

        attach_sampling_judge(dispatcher, LocalJudge(), judge)
    else:
        from mcp_router.serving.local_judging import attach_local_judge

        attach_local_judge(dispatcher, LocalJudge(), judge.queue_size, judge.timeout_s)
    return dispatcher
