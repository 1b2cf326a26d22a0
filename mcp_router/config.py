"""One TOML file → the effective configuration: tools, their providers, collections, the database
and what it keeps.

With no file the built-in `default_config.toml` applies. API keys are read only from environment
variables that the config names, so a config file can be shared and shown (`router://config`)
without exposing a secret.
"""

from __future__ import annotations

import os
import re
import sys
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from mcp_router.routing import ROUTER_NAMES, LQMParams
from mcp_router.routing.guards import GuardParams, from_mapping
from mcp_router.routing.mtrouter.pool import ModelSpec
from mcp_router.schemas import COLLECTION_CHARS, COLLECTION_MAX_CHARS, COLLECTION_PATTERN
from mcp_router.store.retention import RetentionPolicy
from providers import ProviderSpec, Secret, adapter_class, known_types

ToolName = Literal["search", "retrieve", "llm_complete"]
TOOLS: tuple[ToolName, ...] = ("search", "retrieve", "llm_complete")
CONFIG_ENV = "MCP_ROUTER_CONFIG"
DB_ENV = "MCP_ROUTER_DB"
BUILTIN_PREFIX = "builtin:"
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SECRET_OPTION = re.compile(r"key|token|secret|password|auth", re.IGNORECASE)
# Retrieve types that search the folder collections ([collections.NAME]); every other retrieve type is a
# remote store, whose adapter names the option that pins its remote collection (`target_option`).
LOCAL_RETRIEVE_TYPES = frozenset({"bm25", "dense", "hybrid"})


class ConfigError(Exception):
    """An invalid configuration; the message names the file, the key path and, when found, the line."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ProviderConfig(_Strict):
    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.\-]+$")
    type: str
    enabled: bool | None = None  # None: enabled when its `api_key_env` is set, or when it needs no key
    timeout_s: float = Field(default=20.0, gt=0, le=600)
    base_url: str | None = None
    model: str | None = None
    api_key_env: str | None = None
    base_url_env: str | None = None  # a variable holding the base URL (SEARXNG_URL, OLLAMA_HOST)
    input_cost_per_token: float = Field(default=0.0, ge=0)
    output_cost_per_token: float = Field(default=0.0, ge=0)
    max_inflight: int | None = Field(default=None, ge=1)  # in-flight cap; also the router's capacity c_i
    max_connections: int = Field(default=16, ge=1, le=1024)  # this provider's own HTTP connection pool
    pool_timeout_s: float = Field(default=5.0, gt=0, le=600)  # wait for a free connection, then unavailable
    quality_prior: float | None = Field(default=None, ge=0, le=1)  # expected quality; picks the judge
    context_window: int | None = Field(default=None, ge=1)  # input tokens the model accepts (llm only)
    # retrieve only: the collections it serves, as names or as {our name = "remote name"}
    collections: list[str] | dict[str, str] | None = None
    options: dict[str, Any] = Field(default_factory=dict)

    @field_validator("type")
    @classmethod
    def _known_type(cls, value: str) -> str:
        if value not in known_types():
            raise ValueError(f"unknown provider type {value!r}; use one of: {', '.join(known_types())}")
        return value

    @field_validator("api_key_env", "base_url_env")
    @classmethod
    def _env_name(cls, value: str | None) -> str | None:
        # Never echo the value: a user may have pasted the key itself here.
        if value is not None and not _ENV_NAME.match(value):
            raise ValueError("must be the NAME of an environment variable (e.g. OPENAI_API_KEY), not the key")
        return value

    def key_present(self) -> bool:
        return bool(self.api_key_env and os.environ.get(self.api_key_env))

    def disabled_reason(self) -> str | None:
        """Why this provider is off, or None when it serves."""
        if self.enabled is False:
            return "disabled in config"
        if self.api_key_env and not self.key_present():
            return f"environment variable {self.api_key_env} is not set"
        if self.base_url_env and not os.environ.get(self.base_url_env):
            return f"environment variable {self.base_url_env} is not set"
        return None

    def spec(self, collections: Mapping[str, str] | None = None) -> ProviderSpec:
        """The adapter's spec; `collections` is what `Config.collections_of` resolved for it (None:
        it serves any request, as every search and llm_complete provider does)."""
        key = os.environ.get(self.api_key_env) if self.api_key_env else None
        return ProviderSpec(
            name=self.name,
            type=self.type,
            timeout_s=self.timeout_s,
            base_url=os.environ.get(self.base_url_env) if self.base_url_env else self.base_url,
            model=self.model,
            api_key=Secret(key) if key else None,
            input_cost_per_token=self.input_cost_per_token,
            output_cost_per_token=self.output_cost_per_token,
            options=dict(self.options),
            max_connections=self.max_connections,
            pool_timeout_s=self.pool_timeout_s,
            collections=None if collections is None else dict(collections),
        )


# Reference cycle time per tool (the tool's latency SLO): τ̃ = 1 at L_ref, so the penalty caps at ×0.5.
DEFAULT_L_REF_S: dict[str, float] = {"search": 1.5, "retrieve": 0.5, "llm_complete": 8.0}


class ModelConfig(_Strict):
    """One model of the `llm_complete` pool: what MTRouter chooses between. The providers in
    `endpoints` serve it, and LQM-ContextRoute picks among them. Its price is the dearest of its own
    and its endpoints' prices, and its window the smallest, so a budget or context check holds
    whichever endpoint serves the call."""

    name: str = Field(min_length=1, max_length=200)
    endpoints: list[str] = Field(min_length=1)
    input_cost_per_token: float | None = Field(default=None, ge=0)
    output_cost_per_token: float | None = Field(default=None, ge=0)
    context_window: int | None = Field(default=None, ge=1)
    max_output_tokens: int | None = Field(default=None, ge=1)
    knowledge_cutoff: str | None = Field(default=None, pattern=r"^\d{4}-\d{2}-\d{2}$")
    quality_prior: float | None = Field(default=None, ge=0, le=1)
    metadata: dict[str, Any] = Field(default_factory=dict)


class MTRouterConfig(_Strict):
    """How `llm_complete` picks its model (routing/mtrouter): Q = quality − λ·cost, β-greedy."""

    enabled: bool = True
    lambda_: float = Field(default=1.0, ge=0, alias="lambda")  # USD weight, per typical conversation cost
    beta: float = Field(default=0.9, ge=0, le=1)  # probability of the greedy model; the rest explores
    stay_bonus: float = Field(default=0.0, ge=0, le=0.1)  # favours the session's previous model
    typical_conversation_cost_usd: float = Field(default=0.002, gt=0)  # C̄₀: the prior's cost unit
    default_budget_usd: float | None = Field(default=None, gt=0)  # per session, when the call names none
    # the operator's cap per session: a call's budget_usd may lower it, never raise it
    max_budget_usd: float | None = Field(default=None, gt=0)
    fallback_model: str | None = None  # default: the model with the largest context window
    embedder: Literal["minilm", "hashing"] = "minilm"
    # history packing for training (a promoted checkpoint is served with its own); "turns" sees long ones
    packing: Literal["split", "single", "turns"] = "split"
    checkpoint_dir: str | None = None  # default: `checkpoints/` beside the database
    seed: int = 0


class ToolConfig(_Strict):
    router: str = "lqm"
    l_ref_s: float | None = Field(default=None, gt=0, le=600)  # None: the tool's default
    max_attempts: int = Field(default=3, ge=1, le=10)
    timeout_s: float = Field(default=45.0, gt=0, le=600)
    seed: int = 0
    lqm: dict[str, Any] = Field(default_factory=dict)  # LQM-ContextRoute parameters (routing/lqm.py)
    guards: dict[str, Any] = Field(default_factory=dict)  # breaker, cooldown, SLO guard (routing/guards.py)
    providers: list[ProviderConfig] = Field(default_factory=list)
    models: list[ModelConfig] = Field(default_factory=list)  # llm_complete only; default: one per `model`
    mtrouter: MTRouterConfig = Field(default_factory=MTRouterConfig)
    default_collection: str | None = None  # retrieve only; None: the first folder collection, else remote one

    @field_validator("router")
    @classmethod
    def _known_router(cls, value: str) -> str:
        if value not in ROUTER_NAMES:
            raise ValueError(f"unknown router {value!r}; use one of: {', '.join(ROUTER_NAMES)}")
        return value

    @field_validator("lqm")
    @classmethod
    def _known_lqm_parameters(cls, value: dict[str, Any]) -> dict[str, Any]:
        from_mapping(LQMParams, value)  # raises with the list of known parameters
        return value

    @field_validator("guards")
    @classmethod
    def _known_guard_parameters(cls, value: dict[str, Any]) -> dict[str, Any]:
        from_mapping(GuardParams, value)
        return value

    def enabled_providers(self) -> list[ProviderConfig]:
        return [p for p in self.providers if p.disabled_reason() is None]


LOCAL_JUDGE = "local"  # `[judge] provider`: the local judge (feedback/local_judge.py), not an llm provider
# `[judge] provider`, opt-in: the connected client's own model through MCP sampling
# (serving/sampling_judge.py), with the local judge for search and retrieve where the client cannot
SAMPLING_JUDGE = "sampling"


class JudgeConfig(_Strict):
    """The judge that turns sampled calls into quality signals, off the request path: an LLM (a hosted
    model, or one named), for `search` and `retrieve` the local judge, which needs no key, or (opted
    into) the client's own model through MCP sampling."""

    enabled: bool = True
    # an llm_complete provider, "local" or "sampling"; default: the strongest enabled llm provider
    # reaching min_quality_prior, else the local judge (search and retrieve only)
    provider: str | None = None
    rate: float = Field(default=0.2, ge=0, le=1)  # share of warm calls judged (warm-up calls always are)
    timeout_s: float = Field(default=30.0, gt=0, le=600)
    queue_size: int = Field(default=32, ge=1, le=10_000)
    max_tokens: int = Field(default=48, ge=8, le=1024)
    # An LLM judge weaker than this grades noise: `mcp-router bench judge` measured the packaged
    # 135M/270M models at chance (AUC 0.50 on SciFact), so out of the box, with only them, the local
    # judge grades search and retrieve, and llm_complete is not judged.
    min_quality_prior: float = Field(default=0.5, ge=0, le=1)


class CollectionConfig(_Strict):
    path: str


class IndexingConfig(_Strict):
    """Folder collections' on-disk indexes (`providers/retrieve/collections.py`): a server loads them
    at start, builds what is missing in the background, and rescans the folders every
    `rescan_every_s` so edited files are indexed while it runs. `dir` defaults to
    `$MCP_ROUTER_INDEX_DIR`, else the user cache folder; indexes are derived data, safe to delete."""

    dir: str | None = None
    rescan_every_s: float = Field(default=30.0, gt=0, le=86_400)


class RetentionConfig(_Strict):
    """What the router database keeps (`store/retention.py`); a server prunes every `prune_every_s`,
    `mcp-router db prune` at once. Totals (router://stats, arm counters, session spend) survive."""

    max_age_days: float | None = Field(default=None, gt=0)  # calls older than this go; None: any age
    max_calls: int | None = Field(default=None, ge=1)  # only the newest N calls stay; None: any number
    embedding_cache_rows: int = Field(default=50_000, ge=1)  # MTRouter's history embeddings kept
    prune_every_s: float = Field(default=3600.0, gt=0)

    def policy(self, max_age_days: float | None = None, max_calls: int | None = None) -> RetentionPolicy:
        """The policy, with the limits given here (the command line's) in place of the configured."""
        return RetentionPolicy(
            max_age_days=self.max_age_days if max_age_days is None else max_age_days,
            max_calls=self.max_calls if max_calls is None else max_calls,
            embedding_cache_rows=self.embedding_cache_rows,
        )


# Providers that join their tool when their conventional environment variable is set, unless the
# config already has a provider of that name (configure it there, or set `enabled = false` to keep it
# out) or sets `auto_providers = false`. Models and per-token prices are defaults; override in config.
AUTO_PROVIDERS: tuple[tuple[ToolName, dict[str, Any]], ...] = (
    ("search", {"name": "brave", "type": "brave", "api_key_env": "BRAVE_API_KEY", "timeout_s": 8}),
    ("search", {"name": "tavily", "type": "tavily", "api_key_env": "TAVILY_API_KEY", "timeout_s": 10}),
    ("search", {"name": "exa", "type": "exa", "api_key_env": "EXA_API_KEY", "timeout_s": 10}),
    ("search", {"name": "serper", "type": "serper", "api_key_env": "SERPER_API_KEY", "timeout_s": 8}),
    ("search", {"name": "serpapi", "type": "serpapi", "api_key_env": "SERPAPI_API_KEY", "timeout_s": 10}),
    ("search", {"name": "jina", "type": "jina", "api_key_env": "JINA_API_KEY", "timeout_s": 10}),
    ("search", {"name": "kagi", "type": "kagi", "api_key_env": "KAGI_API_KEY", "timeout_s": 10}),
    ("search", {"name": "searxng", "type": "searxng", "base_url_env": "SEARXNG_URL", "timeout_s": 8}),
    (
        "llm_complete",
        {
            "name": "openai",
            "type": "openai",
            "api_key_env": "OPENAI_API_KEY",
            "model": "gpt-4o-mini",
            "input_cost_per_token": 1.5e-7,
            "output_cost_per_token": 6e-7,
            "quality_prior": 0.7,
            "context_window": 128000,
        },
    ),
    (
        "llm_complete",
        {
            "name": "anthropic",
            "type": "anthropic",
            "api_key_env": "ANTHROPIC_API_KEY",
            "model": "claude-3-5-haiku-latest",
            "input_cost_per_token": 8e-7,
            "output_cost_per_token": 4e-6,
            "quality_prior": 0.7,
            "context_window": 200000,
        },
    ),
    (
        "llm_complete",
        {
            "name": "gemini",
            "type": "gemini",
            "api_key_env": "GEMINI_API_KEY",
            "model": "gemini-2.0-flash",
            "input_cost_per_token": 1e-7,
            "output_cost_per_token": 4e-7,
            "quality_prior": 0.65,
            "context_window": 1048576,
        },
    ),
    (
        "llm_complete",
        {
            "name": "openrouter",
            "type": "openai",
            "api_key_env": "OPENROUTER_API_KEY",
            "base_url": "https://openrouter.ai/api/v1",
            "model": "openai/gpt-4o-mini",
            "input_cost_per_token": 1.5e-7,
            "output_cost_per_token": 6e-7,
            "quality_prior": 0.7,
            "context_window": 128000,
        },
    ),
    (
        "llm_complete",
        {
            "name": "groq",
            "type": "openai",
            "api_key_env": "GROQ_API_KEY",
            "base_url": "https://api.groq.com/openai/v1",
            "model": "llama-3.1-8b-instant",
            "input_cost_per_token": 5e-8,
            "output_cost_per_token": 8e-8,
            "quality_prior": 0.5,
            "context_window": 131072,
        },
    ),
    (
        "llm_complete",
        {
            "name": "ollama",
            "type": "ollama",
            "base_url_env": "OLLAMA_HOST",
            "model": "llama3.2",
            "quality_prior": 0.4,
        },
    ),
)


class Config(_Strict):
    database: str | None = None
    auto_providers: bool = True
    collections: dict[str, CollectionConfig] = Field(default_factory=dict)
    tools: dict[ToolName, ToolConfig] = Field(default_factory=dict)
    judge: JudgeConfig = Field(default_factory=JudgeConfig)
    retention: RetentionConfig = Field(default_factory=RetentionConfig)
    indexing: IndexingConfig = Field(default_factory=IndexingConfig)

    @model_validator(mode="after")
    def _add_auto_providers(self) -> Config:
        if not self.auto_providers:
            return self
        for tool, fields_ in AUTO_PROVIDERS:
            env = fields_.get("api_key_env") or fields_.get("base_url_env")
            tool_config = self.tools.setdefault(tool, ToolConfig())
            if os.environ.get(env) and all(p.name != fields_["name"] for p in tool_config.providers):
                tool_config.providers.append(ProviderConfig(**fields_))
        return self

    @model_validator(mode="after")
    def _providers_fit_their_tool(self) -> Config:
        for tool, tool_config in self.tools.items():
            seen: set[str] = set()
            for provider in tool_config.providers:
                served = adapter_class(provider.type).tool
                if served != tool:
                    raise ValueError(
                        f"provider {provider.name!r} of type {provider.type!r} serves "
                        f"`{served}`, not `{tool}`; move it under [tools.{served}]"
                    )
                if provider.name in seen:
                    raise ValueError(f"provider name {provider.name!r} appears twice under [tools.{tool}]")
                seen.add(provider.name)
                if provider.collections is not None and served != "retrieve":
                    raise ValueError(
                        f"provider {provider.name!r}: only retrieve providers serve `collections`; "
                        f"remove it from this `{served}` provider"
                    )
        for name in self.collections:
            _check_collection_name(name, "collection name")
        return self

    @model_validator(mode="after")
    def _collections_resolve(self) -> Config:
        """Every retrieve provider serves at least one collection it can name, a remote store never
        takes a folder collection's name (local and remote arms would compete over different
        corpora), and the default collection is one of them."""
        for tool, tool_config in self.tools.items():
            if tool_config.default_collection is not None and tool != "retrieve":
                raise ValueError(f"[tools.{tool}] default_collection: only retrieve has collections")
        for provider in self.tool("retrieve").providers:
            self.collections_of(provider)  # raises on a provider that names no collection it can serve
        default = self.tool("retrieve").default_collection
        if default is not None and default not in self.collection_names():
            raise ValueError(
                f"[tools.retrieve] default_collection {default!r} is not a collection; "
                f"use one of: {', '.join(self.collection_names()) or '(none configured)'}"
            )
        return self

    @model_validator(mode="after")
    def _models_name_their_endpoints(self) -> Config:
        for tool, tool_config in self.tools.items():
            if tool_config.models and tool != "llm_complete":
                raise ValueError(f"[[tools.{tool}.models]]: only llm_complete has a model pool")
        llm = self.tools.get("llm_complete")
        if llm is None:
            return self
        providers = {p.name for p in llm.providers}
        names: set[str] = set()
        for model in llm.models:
            if model.name in names:
                raise ValueError(f"model {model.name!r} appears twice under [[tools.llm_complete.models]]")
            names.add(model.name)
            unknown = [e for e in model.endpoints if e not in providers]
            if unknown:
                raise ValueError(
                    f"model {model.name!r}: endpoints {unknown} are not llm_complete providers; "
                    f"use provider names from: {', '.join(sorted(providers)) or '(none configured)'}"
                )
        fallback = llm.mtrouter.fallback_model
        if fallback and fallback not in {m.name for m in self.model_pool()}:
            raise ValueError(f"mtrouter.fallback_model {fallback!r} is not a model of the pool")
        return self

    def tool(self, name: ToolName) -> ToolConfig:
        return self.tools.get(name) or ToolConfig()

    def collections_of(self, provider: ProviderConfig) -> dict[str, str] | None:
        """The collections `provider` serves: our name → the name its store knows (a local arm's are
        the folder collections, under their own names). None for a search or llm_complete provider,
        which serves any request. Raises ValueError for a retrieve provider that names none."""
        if adapter_class(provider.type).tool != "retrieve":
            return None
        if provider.type in LOCAL_RETRIEVE_TYPES:
            return self._folder_collections_of(provider)
        served = _remote_collections_of(provider)
        for name in served:
            if name in self.collections:
                raise ValueError(
                    f"provider {provider.name!r}: {name!r} is a folder collection ([collections.{name}]), "
                    f"searched by the local providers; give the remote one its own name, e.g. "
                    f'collections = {{ {name}-{provider.type} = "{served[name]}" }}'
                )
        return served

    def _folder_collections_of(self, provider: ProviderConfig) -> dict[str, str]:
        """Every folder collection, or the listed ones, each under its own name."""
        listed = provider.collections
        if listed is None:
            return {name: name for name in self.collections}
        if isinstance(listed, dict):
            raise ValueError(
                f"provider {provider.name!r} ({provider.type}) searches folder collections under their "
                f'own names: list them, e.g. collections = ["{next(iter(listed), "docs")}"]'
            )
        folders = ", ".join(self.collections) or '(none; add [collections.NAME] path = "FOLDER")'
        for name in _listed(provider, listed):
            if name not in self.collections:
                raise ValueError(
                    f"provider {provider.name!r} ({provider.type}) lists {name!r}, which is not a folder "
                    f"collection; the folder collections are: {folders}"
                )
        return {name: name for name in listed}

    def collection_names(self) -> list[str]:
        """Every collection `retrieve` knows, served or not: the folders, then the remote ones in
        provider order."""
        names = dict.fromkeys(self.collections)
        for provider in self.tool("retrieve").providers:
            names.update(dict.fromkeys(self.collections_of(provider) or {}))
        return list(names)

    def default_collection(self) -> str | None:
        """`[tools.retrieve] default_collection`, else the first folder collection, else the first
        remote one; None when there is no collection at all."""
        return self.tool("retrieve").default_collection or next(iter(self.collection_names()), None)

    def model_pool(self) -> list[ModelSpec]:
        """Every configured model, serving or not, in config order (a checkpoint is tied to this order).

        With no `[[tools.llm_complete.models]]`, each distinct provider `model` is one model served by
        the providers naming it, so the built-in default pool is the two packaged local models plus
        the keyed ones whose keys are set."""
        llm = self.tool("llm_complete")
        providers = {p.name: p for p in llm.providers}
        models = llm.models or [
            ModelConfig(name=name, endpoints=[p.name for p in llm.providers if (p.model or p.name) == name])
            for name in dict.fromkeys(p.model or p.name for p in llm.providers)
        ]
        return [_model_spec(m, [providers[e] for e in m.endpoints]) for m in models]

    def serving_pool(self) -> list[ModelSpec]:
        """The models with at least one serving endpoint, each listing only its serving endpoints."""
        serving = {p.name for p in self.tool("llm_complete").enabled_providers()}
        pool = [
            replace(m, endpoints=tuple(e for e in m.endpoints if e in serving)) for m in self.model_pool()
        ]
        return [m for m in pool if m.endpoints]

    def judge_provider(self) -> ProviderConfig | None:
        """The LLM judge: the named provider, else the enabled llm provider with the highest quality
        prior (then price) if it reaches `min_quality_prior`. With `provider = "local"` that default
        pick still judges `llm_complete`, which the local judge cannot. With `provider = "sampling"`
        none: the client's model judges, and nothing is spent on a key when it cannot."""
        if not self.judge.enabled or self.judge.provider == SAMPLING_JUDGE:
            return None
        pool = self.tool("llm_complete").enabled_providers()
        if self.judge.provider not in (None, LOCAL_JUDGE):  # named: the user's choice, whatever its prior
            return next((p for p in pool if p.name == self.judge.provider), None)
        ranked = sorted(pool, key=lambda p: (p.quality_prior or 0.0, p.output_cost_per_token), reverse=True)
        if not ranked or (ranked[0].quality_prior or 0.0) < self.judge.min_quality_prior:
            return None
        return ranked[0]

    def local_judge(self) -> bool:
        """Whether the local judge grades `search` and `retrieve`: when named (`provider = "local"`),
        as the fallback of the sampling judge, and by default when no LLM judge is found (no hosted key,
        only the packaged models)."""
        if not self.judge.enabled:
            return False
        if self.judge.provider:
            return self.judge.provider in (LOCAL_JUDGE, SAMPLING_JUDGE)
        return self.judge_provider() is None

    def sampling_judge(self) -> bool:
        """Whether judge jobs go to the client's model through MCP sampling (`provider = "sampling"`)."""
        return self.judge.enabled and self.judge.provider == SAMPLING_JUDGE

    def l_ref_s(self, name: ToolName) -> float:
        return self.tool(name).l_ref_s or DEFAULT_L_REF_S[name]

    def redacted(self) -> dict[str, Any]:
        """The effective config for display: key presence instead of keys, secret-looking options masked."""
        data = self.model_dump(mode="json")
        for tool, tool_data in data["tools"].items():
            for provider_data, provider in zip(
                tool_data["providers"], self.tools[tool].providers, strict=True
            ):
                provider_data["api_key_present"] = provider.key_present()
                provider_data["serving"] = provider.disabled_reason() is None
                provider_data["disabled_reason"] = provider.disabled_reason()
                provider_data["options"] = {
                    k: ("***" if _SECRET_OPTION.search(k) else v) for k, v in provider_data["options"].items()
                }
                if provider_data.get("base_url"):
                    provider_data["base_url"] = re.sub(r"//[^/@]+@", "//***@", provider_data["base_url"])
        return data


@dataclass(frozen=True)
class CollectionEntry:
    """One collection `retrieve` can search: a folder of ours or a remote store's, and who serves it.
    Only the providers serving a collection compete for its calls."""

    name: str
    kind: Literal["folder", "remote"]
    path: Path | None  # a folder collection's folder
    arms: tuple[str, ...]  # the enabled providers serving it, in config order
    disabled_arms: tuple[str, ...] = ()  # configured to serve it, but off (shown, never routed to)

    def view(self) -> dict[str, Any]:
        """For `router://config` and the tool's errors: JSON-ready."""
        return {
            "kind": self.kind,
            "path": None if self.path is None else str(self.path),
            "providers": list(self.arms),
            "disabled_providers": list(self.disabled_arms),
        }


@dataclass(frozen=True)
class LoadedConfig:
    config: Config
    source: str  # the file it came from, or "built-in default"
    base_dir: Path  # relative collection paths resolve against it

    def collection_folders(self) -> list[tuple[str, Path]]:
        return [(name, resolve_folder(c.path, self.base_dir)) for name, c in self.config.collections.items()]

    def catalogue(self) -> dict[str, CollectionEntry]:
        """Every collection `retrieve` knows, in `Config.collection_names` order, with its kind, its
        folder and the providers serving it (enabled ones, and the configured ones that are off)."""
        folders = dict(self.collection_folders())
        providers = self.config.tool("retrieve").providers
        served = {p.name: self.config.collections_of(p) or {} for p in providers}

        def serving(name: str, enabled: bool) -> tuple[str, ...]:
            return tuple(
                p.name
                for p in providers
                if name in served[p.name] and (p.disabled_reason() is None) == enabled
            )

        return {
            name: CollectionEntry(
                name=name,
                kind="folder" if name in folders else "remote",
                path=folders.get(name),
                arms=serving(name, True),
                disabled_arms=serving(name, False),
            )
            for name in self.config.collection_names()
        }

    def database_path(self, override: str | None = None) -> Path | str:
        """A SQLite file's path, or a `postgresql://` URL as given (a URL is not a path)."""
        chosen = override or os.environ.get(DB_ENV) or self.config.database
        if chosen and "://" in chosen:
            return chosen
        return Path(chosen).expanduser() if chosen else default_data_dir() / "router.db"


def _check_collection_name(name: str, what: str) -> None:
    """Collection names follow the tool's own rule, so every configured one can be asked for."""
    if not name or not re.match(COLLECTION_PATTERN, name) or len(name) > COLLECTION_MAX_CHARS:
        raise ValueError(
            f"{what} {name!r} may only hold {COLLECTION_CHARS}, at most {COLLECTION_MAX_CHARS} of them"
        )


def _listed(provider: ProviderConfig, names: list[str]) -> list[str]:
    """A provider's `collections` names: not empty (that arm could never serve), no name twice."""
    if not names:
        raise ValueError(
            f"provider {provider.name!r}: `collections` is empty; list what it serves, or set enabled = false"
        )
    for name in names:
        if names.count(name) > 1:
            raise ValueError(f"provider {provider.name!r} lists collection {name!r} twice")
    return names


def _remote_collections_of(provider: ProviderConfig) -> dict[str, str]:
    """A remote store's collections, our name → its own: `collections` as names (the same on both
    sides) or as a table, else the one named by the adapter's pinned option (`table`, `index`,
    `collection`). A pinned option wins over the table's remote names, as the adapter does."""
    option = getattr(adapter_class(provider.type), "target_option", None) or "collection"
    pinned = provider.options.get(option)
    pinned = pinned if isinstance(pinned, str) and pinned else None
    listed = provider.collections
    if listed is None:
        if pinned is None:
            raise ValueError(
                f"provider {provider.name!r} ({provider.type}) names no collection: add "
                f'collections = ["NAME"] (NAME being the remote {option} too) or '
                f'collections = {{ NAME = "REMOTE_{option.upper()}" }}'
            )
        if not re.match(COLLECTION_PATTERN, pinned) or len(pinned) > COLLECTION_MAX_CHARS:
            raise ValueError(
                f"provider {provider.name!r}: its {option} {pinned!r} cannot be a collection name "
                f'({COLLECTION_CHARS}); name it: collections = {{ NAME = "{pinned}" }}'
            )
        return {pinned: pinned}
    _listed(provider, list(listed))
    mapping = dict(listed) if isinstance(listed, dict) else {name: name for name in listed}
    for name, remote in mapping.items():
        _check_collection_name(name, f"provider {provider.name!r}: collection")
        if not remote:
            raise ValueError(f"provider {provider.name!r}: collection {name!r} maps to an empty remote name")
    return {name: pinned or remote for name, remote in mapping.items()}


def _context_window(provider: ProviderConfig) -> int | None:
    if provider.context_window is not None:
        return provider.context_window
    if provider.type == "llamacpp":  # the adapter's n_ctx is the window
        return int(provider.options.get("n_ctx", 2048))
    return None


def _model_spec(model: ModelConfig, endpoints: list[ProviderConfig]) -> ModelSpec:
    windows = [w for e in endpoints if (w := _context_window(e)) is not None]
    priors = [e.quality_prior for e in endpoints if e.quality_prior is not None]
    return ModelSpec(
        name=model.name,
        input_cost_per_token=max(
            [model.input_cost_per_token or 0.0, *(e.input_cost_per_token for e in endpoints)]
        ),
        output_cost_per_token=max(
            [model.output_cost_per_token or 0.0, *(e.output_cost_per_token for e in endpoints)]
        ),
        context_window=model.context_window or (min(windows) if windows else None),
        max_output_tokens=model.max_output_tokens,
        knowledge_cutoff=model.knowledge_cutoff,
        quality_prior=model.quality_prior if model.quality_prior is not None else max(priors, default=None),
        endpoints=tuple(model.endpoints),
        metadata=dict(model.metadata),
    )


def default_data_dir() -> Path:
    """Where the user's data lives by platform convention (no extra dependency for three cases)."""
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / "mcp-router"
    if os.name == "nt":
        return Path(os.environ.get("APPDATA", Path.home())) / "mcp-router"
    return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / "mcp-router"


def resolve_folder(path: str, base_dir: Path) -> Path:
    if path.startswith(BUILTIN_PREFIX):
        return Path(str(resources.files("mcp_router") / path.removeprefix(BUILTIN_PREFIX)))
    folder = Path(path).expanduser()
    return folder if folder.is_absolute() else base_dir / folder


def default_config_text() -> str:
    return (resources.files("mcp_router") / "default_config.toml").read_text(encoding="utf-8")


def _line_of(text: str, key: str) -> int | None:
    pattern = re.compile(rf"^\s*\"?{re.escape(key)}\"?\s*=|\[[^\]]*\b{re.escape(key)}\]")
    for number, line in enumerate(text.splitlines(), start=1):
        if pattern.search(line):
            return number
    return None


def _describe(error: ValidationError, text: str, source: str) -> str:
    lines = [f"invalid config {source}:"]
    for item in error.errors():
        path = ".".join(str(p) for p in item["loc"])
        keys = [str(p) for p in item["loc"] if not isinstance(p, int)]
        line = _line_of(text, keys[-1]) if keys else None
        where = f" (line {line})" if line else ""
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown key; check its spelling against default_config.toml"
        lines.append(f"  {path or '<top>'}{where}: {message}")
    return "\n".join(lines)


def parse_config(text: str, source: str, base_dir: Path) -> LoadedConfig:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"invalid config {source}: TOML syntax error: {exc}") from None
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, text, source)) from None
    return LoadedConfig(config=config, source=source, base_dir=base_dir)


def load_config(path: str | os.PathLike[str] | None = None) -> LoadedConfig:
    """Load `path`, else `$MCP_ROUTER_CONFIG`, else the built-in default."""
    chosen = path or os.environ.get(CONFIG_ENV)
    if not chosen:
        return parse_config(default_config_text(), "built-in default", Path.cwd())
    file = Path(chosen).expanduser()
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config {file}: {exc.strerror or exc}") from None
    return parse_config(text, str(file), file.resolve().parent)


def with_docs(loaded: LoadedConfig, folders: list[str]) -> LoadedConfig:
    """Put `--docs` folders first, named after the folder; the first becomes the default collection,
    whatever the config's `default_collection` says (the command line is the later word)."""
    if not folders:
        return loaded
    added: dict[str, CollectionConfig] = {}
    for folder in folders:
        path = Path(folder).expanduser().resolve()
        if not path.is_dir():
            raise ConfigError(f"--docs {folder}: not a folder")
        name = re.sub(r"[^A-Za-z0-9_.\-]", "-", path.name) or "docs"
        added[name] = CollectionConfig(path=str(path))
    rest = {k: v for k, v in loaded.config.collections.items() if k not in added}
    retrieve = loaded.config.tool("retrieve").model_copy(update={"default_collection": next(iter(added))})
    config = loaded.config.model_copy(
        update={"collections": added | rest, "tools": {**loaded.config.tools, "retrieve": retrieve}}
    )
    try:  # a remote provider may already use a --docs folder's name
        for provider in retrieve.providers:
            config.collections_of(provider)
    except ValueError as exc:
        raise ConfigError(f"--docs: {exc}") from None
    return LoadedConfig(config=config, source=loaded.source, base_dir=loaded.base_dir)
