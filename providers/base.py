"""The adapter protocol: what every provider implements, and what it is given to do so."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Literal, TypeVar

import httpx

if TYPE_CHECKING:
    from providers.retrieve.collections import CollectionLibrary

ToolName = Literal["search", "retrieve", "llm_complete"]
RequestT = TypeVar("RequestT")
ResultT = TypeVar("ResultT")


class Secret:
    """An API key that cannot leak by accident: `str()`, `repr()` and f-strings show a mask."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __bool__(self) -> bool:
        return bool(self._value)


@dataclass(frozen=True)
class ProviderSpec:
    """One configured arm, as the adapter needs it; built by the server's config, never by hand."""

    name: str
    type: str
    timeout_s: float = 20.0
    base_url: str | None = None
    model: str | None = None
    api_key: Secret | None = None
    input_cost_per_token: float = 0.0
    output_cost_per_token: float = 0.0
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class ProviderEnv:
    """Resources shared by all adapters of one process: one HTTP pool, the local collections."""

    http: httpx.AsyncClient
    collections: CollectionLibrary
    user_agent: str = "mcp-router/0.1 (+https://github.com/mcp-router/mcp-router)"


class Adapter(ABC, Generic[RequestT, ResultT]):
    """One real provider. Subclasses set `tool` and `type` and implement `call`.

    `call` returns the tool's result type or raises one of the errors of `providers.errors`; any
    other exception is a bug in the adapter.
    """

    tool: ClassVar[ToolName]
    type: ClassVar[str]

    def __init__(self, spec: ProviderSpec, env: ProviderEnv) -> None:
        self.spec = spec
        self.env = env

    @property
    def name(self) -> str:
        return self.spec.name

    @abstractmethod
    async def call(self, request: RequestT) -> ResultT: ...

    def ready(self, request: RequestT) -> bool:
        """Whether `call` can serve `request` without first loading a model or building an index.
        An arm that is not ready is passed over while another one is; `prepare` makes it ready."""
        return True

    def prepare(self) -> None:
        """Blocking: load what `call` needs (models, indexes). The server runs it in a background
        thread at start-up, so no call waits for it while another arm can serve."""

    async def aclose(self) -> None:
        """Release what the adapter holds beyond the shared environment (models, sessions)."""
