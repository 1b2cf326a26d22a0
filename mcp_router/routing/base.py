"""The router interface: the dispatcher (and every benchmark) talks to routers only through it.

A router ranks a tool's arms for one request and learns from two streams of evidence: every
attempt's outcome (status, latency) and, later and only for sampled calls, a quality reward. It
keeps its own clock discipline: every method takes `now` (wall-clock seconds in the server,
simulated seconds in benchmarks), so the same class serves both and a replay rebuilds it exactly.

Hard guards (breaker, cooldown, in-flight cap, SLO) sit outside the score, in `guards.Guards`; the
base class applies them before `choose`, so every policy runs behind the same eligibility layer
unless it brings its own health logic.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from mcp_router.routing.draws import Draws
from mcp_router.routing.guards import GuardParams, Guards


@dataclass(frozen=True)
class RouteContext:
    """What a router may look at to rank arms for one request."""

    tool: str
    text: str  # the query, or the last user message for llm_complete
    now: float
    x: np.ndarray | None = None  # unit-norm query features (see features.py); None if the router ignores them
    inflight: Mapping[str, int] = field(default_factory=dict)  # calls in flight per arm right now


@dataclass(frozen=True)
class Decision:
    """Arms in the order to try them (first = the choice), why, and whether to judge the call."""

    order: list[str]
    policy: str  # the router's name, or warmup | forced | epsilon
    scores: dict[str, dict[str, Any]] = field(default_factory=dict)  # per-arm score decomposition
    excluded: dict[str, str] = field(default_factory=dict)  # arm -> why it was not eligible
    sample_quality: bool = False  # judge this call (always for warm-up calls)


@dataclass(frozen=True)
class Outcome:
    """One attempt on one arm.

    `status` is ok | timeout | rate_limited | unavailable | bad_response | bad_request.
    """

    arm: str
    status: str
    latency_s: float
    now: float
    retry_after: float | None = None


@dataclass
class Choice:
    """What a policy's `choose` returns: an order over the eligible arms and its reasons."""

    order: list[str]
    policy: str
    scores: dict[str, dict[str, Any]] = field(default_factory=dict)
    sample_quality: bool = False


class Router(ABC):
    """One instance per tool. `rank` runs on every call and must stay cheap."""

    name: ClassVar[str]
    uses_features: ClassVar[bool] = False

    def __init__(
        self,
        tool: str,
        arms: Sequence[str],
        *,
        capacity: Mapping[str, int] | None = None,
        guards: GuardParams | None = None,
        seed: int = 0,
    ) -> None:
        self.tool = tool
        self.arms = list(arms)
        self.capacity = dict(capacity or {})
        self.guards = Guards(self.arms, guards or GuardParams(), self.capacity)
        self.seed = seed
        self.decisions = 0  # decisions made so far; with the seed it fixes every random draw

    def rng(self) -> Draws:
        """The draws of the current decision: deterministic in (seed, decision index), so a
        rebuilt router draws exactly what the original would have drawn."""
        return Draws(self.seed, self.decisions)

    def rank(self, context: RouteContext, exclude: Collection[str] = ()) -> Decision:
        candidates = [a for a in self.arms if a not in exclude]
        eligible, excluded = self.guards.eligible(candidates, context.now, context.inflight)
        forced = not eligible
        choice = self.choose(eligible or candidates, context) if candidates else Choice([], self.name)
        self.decisions += 1
        if choice.order:
            self.guards.dispatched(choice.order[0], context.now)
        return Decision(
            order=choice.order,
            policy="forced" if forced and choice.order else choice.policy,
            scores=choice.scores,
            excluded=excluded,
            sample_quality=choice.sample_quality,
        )

    @abstractmethod
    def choose(self, eligible: Sequence[str], context: RouteContext) -> Choice:
        """Order the eligible arms (non-empty) for this request."""

    def observe(self, outcome: Outcome) -> None:
        """Every attempt: health guards here; subclasses add their latency/reward bookkeeping."""
        self.guards.record(outcome)

    def observe_quality(self, arm: str, x: np.ndarray | None, reward: float, now: float) -> None:  # noqa: B027
        """A quality reward in [0, 1] for an earlier call on `arm` (judge, feedback, or 0 for a failure)."""

    def forget_quality(self, arm: str, x: np.ndarray | None, reward: float, ts: float) -> None:  # noqa: B027
        """Take back a reward observed at `ts` (explicit feedback replaced the judge's)."""

    def arm_states(self, now: float, inflight: Mapping[str, int]) -> dict[str, dict[str, Any]]:
        """Per-arm router state for `router://stats/{tool}`: guards, and what the policy adds."""
        return {arm: {"guards": guard} for arm, guard in self.guards.state(now, inflight).items()}


def cyclic_order(arms: Sequence[str], eligible: Sequence[str], start: int) -> list[str]:
    """`eligible` in the cyclic order of `arms` starting at position `start`."""
    n = len(arms)
    allowed = set(eligible)
    return [arms[(start + i) % n] for i in range(n) if arms[(start + i) % n] in allowed]
