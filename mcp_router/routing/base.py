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

import hashlib
import json
from abc import ABC, abstractmethod
from collections.abc import Collection, Mapping, Sequence
from dataclasses import asdict
from typing import Any, ClassVar

import numpy as np

from mcp_router.routing.draws import Draws
from mcp_router.routing.guards import GuardParams, Guards
from mcp_router.routing.types import Choice, Decision, Outcome, RouteContext

__all__ = ["Choice", "Decision", "Outcome", "RouteContext", "Router", "cyclic_order"]


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

    def order_fallbacks(self, arms: Sequence[str], context: RouteContext) -> list[str]:
        """`arms` best first, for a fallback group (llm_complete's next model's endpoints). No
        decision is made: nothing is drawn, counted or dispatched, so replaying the events rebuilds
        the same router. Arms the guards exclude go last, in the given order."""
        eligible, _ = self.guards.eligible(arms, context.now, context.inflight)
        return self.score_order(eligible, context) + [a for a in arms if a not in eligible]

    def score_order(self, arms: Sequence[str], context: RouteContext) -> list[str]:
        """`arms` by the policy's current score, best first; a policy without one keeps their order."""
        return list(arms)

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

    # -- snapshots -------------------------------------------------------------------------------

    def get_state(self) -> dict[str, Any]:
        """What the router has learned, not how it is configured: `set_state` on a router of the same
        `fingerprint` restores it exactly."""
        return {"decisions": self.decisions, "guards": self.guards.get_state(), **self._learned()}

    def set_state(self, state: Mapping[str, Any]) -> None:
        self.decisions = int(state["decisions"])
        self.guards.set_state(state["guards"])
        self._restore(state)

    def fingerprint(self) -> str:
        """A digest of the configuration a state is valid for: policy, arms, parameters, seed."""
        config = {
            "policy": self.name,
            "arms": self.arms,
            "capacity": self.capacity,
            "guards": asdict(self.guards.params),
            "seed": self.seed,
            **self._config(),
        }
        return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:16]

    def _learned(self) -> dict[str, Any]:
        return {}

    def _restore(self, state: Mapping[str, Any]) -> None:  # noqa: B027
        """Subclasses restore what `_learned` returned."""

    def _config(self) -> dict[str, Any]:
        return {}


def cyclic_order(arms: Sequence[str], eligible: Sequence[str], start: int) -> list[str]:
    """`eligible` in the cyclic order of `arms` starting at position `start`."""
    n = len(arms)
    allowed = set(eligible)
    return [arms[(start + i) % n] for i in range(n) if arms[(start + i) % n] in allowed]
