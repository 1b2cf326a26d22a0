"""Stand-ins for the benchmark tests: deterministic service models and scripted policies."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from mcp_router.routing.base import Decision, Outcome, RouteContext


@dataclass
class FixedService:
    """Deterministic service times per arm (optionally per query), fixed or progress-dependent capacity."""

    arms: list[str]
    seconds: Mapping[str, float]
    slots: Mapping[str, int]
    rate: float = 1.0
    fail: Callable[[str, int], bool] = lambda arm, query: False
    slots_after: Mapping[str, tuple[float, int]] = field(default_factory=dict)  # arm -> (progress, slots)
    per_query: Mapping[int, float] = field(default_factory=dict)  # query -> seconds, overrides `seconds`

    def capacity(self, arm: str, progress: float) -> int:
        if arm in self.slots_after and progress >= self.slots_after[arm][0]:
            return self.slots_after[arm][1]
        return self.slots[arm]

    def service_time(
        self, arm: str, query: int, rng: np.random.Generator, progress: float
    ) -> tuple[float, bool]:
        return self.per_query.get(query, self.seconds[arm]), self.fail(arm, query)

    def arrival_rate(self, progress: float) -> float:
        return self.rate


class Scripted:
    """Routes call i to script(i) (an arm name) and records everything it is told."""

    name = "scripted"
    uses_features = False

    def __init__(self, script: Callable[[int], str] | Sequence[str], arms: Sequence[str] = ()) -> None:
        self.script = script if callable(script) else (lambda i: script[i])
        self.arms = list(arms)
        self.contexts: list[RouteContext] = []
        self.outcomes: list[Outcome] = []
        self.rewards: list[tuple[str, float, float]] = []

    def rank(self, context: RouteContext) -> Decision:
        first = self.script(len(self.contexts))
        self.contexts.append(context)
        return Decision(order=[first] + [a for a in self.arms if a != first], policy=self.name)

    def observe(self, outcome: Outcome) -> None:
        self.outcomes.append(outcome)

    def observe_quality(self, arm: str, x: np.ndarray | None, reward: float, now: float) -> None:
        self.rewards.append((arm, reward, now))


def always_first(arms: list[str], seed: int) -> Scripted:
    return Scripted(lambda i: arms[0], arms)


def alternate(arms: list[str], seed: int) -> Scripted:
    return Scripted(lambda i: arms[i % len(arms)], arms)
