"""The router interface the dispatcher talks to; LQM-ContextRoute and every baseline implement it."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar


@dataclass(frozen=True)
class RouteContext:
    """What a router may look at to rank arms for one request."""

    tool: str
    text: str  # the query, or the last user message for llm_complete


@dataclass(frozen=True)
class Decision:
    """Arms in the order to try them (first = the choice), and why, per arm, for the call log."""

    order: list[str]
    scores: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class Outcome:
    """What happened on one attempt; `quality` arrives later (judge, feedback) or not at all."""

    arm: str
    status: str
    latency_s: float
    quality: float | None = None


class Router(ABC):
    """One instance per tool. `rank` must be cheap: it runs on every call, on the event loop."""

    name: ClassVar[str]

    def __init__(self, tool: str, arms: Sequence[str]) -> None:
        self.tool = tool
        self.arms = list(arms)

    @abstractmethod
    def rank(self, eligible: Sequence[str], context: RouteContext) -> Decision: ...

    def observe(self, outcome: Outcome) -> None:  # noqa: B027 - baselines may ignore feedback
        """Learn from one attempt's outcome."""

    def restore(self, decisions: int, arm_states: Mapping[str, Mapping[str, Any]]) -> None:  # noqa: B027
        """Rebuild in-memory state from the store at start-up, so a restart continues where it stopped."""
