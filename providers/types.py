"""Requests and results shared by every adapter of a tool, independent of any provider's wire format."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Role = Literal["system", "user", "assistant"]


@dataclass(frozen=True)
class SearchRequest:
    query: str
    k: int = 5
    freshness: Literal["day", "week", "month", "year"] | None = None


@dataclass(frozen=True)
class SearchHit:
    title: str
    url: str
    snippet: str
    source: str


@dataclass(frozen=True)
class RetrieveRequest:
    query: str
    collection: str
    k: int = 5


@dataclass(frozen=True)
class Passage:
    id: str
    text: str
    score: float
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ChatMessage:
    role: Role
    content: str


@dataclass(frozen=True)
class CompletionRequest:
    messages: tuple[ChatMessage, ...]
    max_tokens: int = 256
    temperature: float = 0.0


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int


@dataclass(frozen=True)
class Completion:
    text: str
    model: str
    usage: Usage
    cost_usd: float
    finish_reason: str | None = None
