"""One TOML file → the effective configuration: tools, their providers, collections, the database.

With no file the built-in `default_config.toml` applies. API keys are read only from environment
variables that the config names, so a config file can be shared and shown (`router://config`)
without exposing a secret.
"""

from __future__ import annotations

import os
import re
import sys
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from mcp_router.routing import ROUTER_NAMES, LQMParams
from mcp_router.routing.guards import GuardParams, from_mapping
from providers import ProviderSpec, Secret, adapter_class, known_types

ToolName = Literal["search", "retrieve", "llm_complete"]
TOOLS: tuple[ToolName, ...] = ("search", "retrieve", "llm_complete")
CONFIG_ENV = "MCP_ROUTER_CONFIG"
DB_ENV = "MCP_ROUTER_DB"
BUILTIN_PREFIX = "builtin:"
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SECRET_OPTION = re.compile(r"key|token|secret|password|auth", re.IGNORECASE)


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
    quality_prior: float | None = Field(default=None, ge=0, le=1)  # expected quality; picks the judge
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

    def spec(self) -> ProviderSpec:
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
        )


# Reference cycle time per tool (the tool's latency SLO): τ̃ = 1 at L_ref, so the penalty caps at ×0.5.
DEFAULT_L_REF_S: dict[str, float] = {"search": 1.5, "retrieve": 0.5, "llm_complete": 8.0}


class ToolConfig(_Strict):
    router: str = "lqm"
    l_ref_s: float | None = Field(default=None, gt=0, le=600)  # None: the tool's default
    max_attempts: int = Field(default=3, ge=1, le=10)
    timeout_s: float = Field(default=45.0, gt=0, le=600)
    seed: int = 0
    lqm: dict[str, Any] = Field(default_factory=dict)  # LQM-ContextRoute parameters (routing/lqm.py)
    guards: dict[str, Any] = Field(default_factory=dict)  # breaker, cooldown, SLO guard (routing/guards.py)
    providers: list[ProviderConfig] = Field(default_factory=list)

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


class JudgeConfig(_Strict):
    """The LLM-as-judge that turns sampled calls into quality signals, off the request path."""

    enabled: bool = True
    provider: str | None = None  # an llm_complete provider; default: the strongest enabled one
    rate: float = Field(default=0.2, ge=0, le=1)  # share of warm calls judged (warm-up calls always are)
    timeout_s: float = Field(default=30.0, gt=0, le=600)
    queue_size: int = Field(default=32, ge=1, le=10_000)
    max_tokens: int = Field(default=48, ge=8, le=1024)
    # A judge weaker than this grades noise: `mcp-router bench judge` measured the packaged 135M/270M
    # models at chance (AUC 0.50 on SciFact), so out of the box, with only them, nothing is judged.
    min_quality_prior: float = Field(default=0.5, ge=0, le=1)


class CollectionConfig(_Strict):
    path: str


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
        for name in self.collections:
            if not re.match(r"^[A-Za-z0-9_.\-]+$", name):
                raise ValueError(f"collection name {name!r} may only hold letters, digits, '.', '_' and '-'")
        return self

    def tool(self, name: ToolName) -> ToolConfig:
        return self.tools.get(name) or ToolConfig()

    def judge_provider(self) -> ProviderConfig | None:
        """The configured judge, else the enabled llm provider with the highest quality prior (then price)."""
        if not self.judge.enabled:
            return None
        pool = self.tool("llm_complete").enabled_providers()
        if self.judge.provider:  # named explicitly: the user's choice, whatever its prior
            return next((p for p in pool if p.name == self.judge.provider), None)
        ranked = sorted(pool, key=lambda p: (p.quality_prior or 0.0, p.output_cost_per_token), reverse=True)
        if not ranked or (ranked[0].quality_prior or 0.0) < self.judge.min_quality_prior:
            return None
        return ranked[0]

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
class LoadedConfig:
    config: Config
    source: str  # the file it came from, or "built-in default"
    base_dir: Path  # relative collection paths resolve against it

    def collection_folders(self) -> list[tuple[str, Path]]:
        return [(name, resolve_folder(c.path, self.base_dir)) for name, c in self.config.collections.items()]

    def database_path(self, override: str | None = None) -> Path:
        chosen = override or os.environ.get(DB_ENV) or self.config.database
        return Path(chosen).expanduser() if chosen else default_data_dir() / "router.db"


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
    """Put `--docs` folders first (the first becomes the default collection), named after the folder."""
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
    config = loaded.config.model_copy(update={"collections": added | rest})
    return LoadedConfig(config=config, source=loaded.source, base_dir=loaded.base_dir)
