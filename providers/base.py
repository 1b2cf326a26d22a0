"""The adapter protocol: what every provider implements, and what it is given to do so."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Literal, TypeVar

import httpx

from providers.http import new_client

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
    max_connections: int = 16  # the provider's own HTTP pool: a slow provider cannot starve the others
    pool_timeout_s: float = 5.0  # waiting for a free connection of that pool, then `Unavailable`
    # retrieve: the collections this arm serves, our name -> the name its store knows (config resolves
    # it); None serves any request, as search and llm_complete arms do
    collections: Mapping[str, str] | None = None

    def remote_name(self, collection: str) -> str:
        """The store's own name for our `collection` (its table, index or collection): the mapped
        name, else the same name."""
        return (self.collections or {}).get(collection, collection)


@dataclass
class ProviderEnv:
    """Resources shared by all adapters of one process: one HTTP pool per provider, the local collections.

    Each provider gets its own `httpx.AsyncClient` (built on first use, with the spec's
    `max_connections`), so a provider whose connections are all held by slow calls makes only its own
    calls wait; `aclose` closes them all. `http`, when given, is one client that every provider shares
    instead (tests and tools that bring their own; its owner closes it): no spec's limit applies then.
    """

    collections: CollectionLibrary
    user_agent: str = "mcp-router/0.1 (+https://github.com/mcp-router/mcp-router)"
    http: httpx.AsyncClient | None = None
    _clients: dict[str, httpx.AsyncClient] = field(default_factory=dict, init=False, repr=False)

    def client(self, spec: ProviderSpec) -> httpx.AsyncClient:
        """The HTTP client of the provider named by `spec`: the same one for every call and adapter."""
        if self.http is not None:
            return self.http
        client = self._clients.get(spec.name)
        if client is None:
            client = self._clients[spec.name] = new_client(spec.max_connections)
        return client

    async def aclose(self) -> None:
        """Close every provider's client (not a shared `http`: its owner closes that)."""
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await client.aclose()


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

    @property
    def http(self) -> httpx.AsyncClient:
        """This provider's HTTP client, with its own connection limit (see `ProviderEnv.client`)."""
        return self.env.client(self.spec)

    @abstractmethod
    async def call(self, request: RequestT) -> ResultT: ...

    def serves(self, request: RequestT) -> bool:
        """Whether this arm can answer `request` at all. A retrieve arm serves only its collections:
        a local arm and a remote store search different corpora, so they never compete for one call."""
        collections = self.spec.collections
        return collections is None or getattr(request, "collection", None) in collections

    @property
    def running(self) -> int:
        """Work this provider is doing for calls, including work a cancelled call left behind (a local
        model still reading a long prompt after its call stopped waiting). Remote providers: none."""
        return 0

    def ready(self, request: RequestT) -> bool:
        """Whether `call` can serve `request` without first loading a model or building an index.
        An arm that is not ready is passed over while another one is; `prepare` makes it ready."""
        return True

    def prepare(self) -> None:
        """Blocking: load what `call` needs (models, indexes). The server runs it in a background
        thread at start-up, so no call waits for it while another arm can serve."""

    async def aclose(self) -> None:
        """Release what the adapter holds beyond the shared environment (models, sessions)."""
