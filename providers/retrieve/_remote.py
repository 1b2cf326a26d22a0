"""Shared plumbing of the remote vector/lexical store adapters (Chroma, Qdrant, Elasticsearch, OpenSearch).

Remote stores do not embed: the query vector comes from the project's own embedder (MiniLM, 384 dims),
reached through `embed_texts`, a module-level indirection tests may replace with a deterministic function.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, ClassVar
from urllib.parse import quote

import anyio

from providers.base import Adapter
from providers.errors import BadRequest, Unavailable
from providers.http import request_json, require
from providers.types import Passage, RetrieveRequest


def embed_texts(texts: Sequence[str]) -> Any:
    """The project's query embedder (`providers.retrieve.embedder.embed_queries`, the same vectors the
    local dense arm ranks with); replaceable in tests."""
    from providers.retrieve import embedder

    return embedder.embed_queries(texts)


def segment(value: str) -> str:
    """One URL path segment: a collection or index name can never climb out of its path."""
    return quote(value, safe="")


class RemoteRetriever(Adapter[RetrieveRequest, list[Passage]]):
    tool = "retrieve"
    default_url: ClassVar[str] = ""
    target_option: ClassVar[str] = "collection"

    @property
    def base(self) -> str:
        return (self.spec.base_url or self.default_url).rstrip("/")

    def key(self) -> str | None:
        return self.spec.api_key.reveal() if self.spec.api_key else None

    def secrets(self) -> tuple[str, ...]:
        key = self.key()
        return (key,) if key else ()

    def target(self, request: RetrieveRequest) -> str:
        """The remote collection or index to search: the pinned option, else the store's name for
        the requested collection (config `collections = { ours = "theirs" }`)."""
        pinned = self.spec.options.get(self.target_option)
        name = pinned if pinned is not None else self.spec.remote_name(request.collection)
        if not isinstance(name, str) or not name:
            raise BadRequest(
                self.name, f"no remote {self.target_option} named (option `{self.target_option}`)"
            )
        return name

    def option(self, name: str, default: Any, kind: type | tuple[type, ...] = str) -> Any:
        value = self.spec.options.get(name, default)
        if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
            raise BadRequest(self.name, f"option `{name}` has the wrong type")
        return value

    async def query_vector(self, text: str) -> list[float]:
        failure: Unavailable | None = None
        try:
            vectors = await anyio.to_thread.run_sync(embed_texts, [text])
        except ImportError as exc:  # the embedder's optional dependencies are missing
            failure = Unavailable(self.name, f"embedder unavailable: {type(exc).__name__}")
        if failure is not None:
            raise failure
        return [float(x) for x in vectors[0]]

    async def send(
        self, method: str, url: str, *, headers: dict[str, str] | None = None, **kwargs: Any
    ) -> Any:
        all_headers = {"User-Agent": self.env.user_agent, "Accept": "application/json", **(headers or {})}
        return await request_json(
            self.spec,
            self.http,
            method,
            url,
            redact=self.secrets(),
            headers=all_headers,
            **kwargs,
        )

    # ---------------------------------------------------------------------------------- parse helpers

    def ident(self, value: Any) -> str:
        require(
            self.name, isinstance(value, (str, int)) and not isinstance(value, bool), "id is not a string"
        )
        return str(value)

    def number(self, value: Any, what: str = "score") -> float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        require(self.name, ok, f"{what} is not a finite number")
        return float(value)

    def passage(
        self, id_: Any, score: float, source: Any, text_field: str, drop: Sequence[str] = ()
    ) -> Passage:
        """A passage from a stored document: `text_field` of `source` is the text, the rest its metadata."""
        require(self.name, source is None or isinstance(source, dict), "document payload is not an object")
        source = source or {}
        text = source.get(text_field)
        metadata = {k: v for k, v in source.items() if k != text_field and k not in drop}
        return Passage(
            id=self.ident(id_),
            text=text if isinstance(text, str) else "",
            score=round(score, 6),
            metadata=metadata,
        )
