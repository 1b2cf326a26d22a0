"""The policies a benchmark runs: the project's routers (through `build_router`) plus two
benchmark-only references that read the gold labels, `best-fixed` and `oracle`.

The gold policies still go through the simulator like every other policy: their calls queue,
time out and fail the same way; only the choice is made in hindsight.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from mcp_router.routing.base import Decision, Outcome, RouteContext

GOLD_POLICIES = ("best-fixed", "oracle")
FIXED_PREFIX = "fixed:"
NO_CONTEXT_SUFFIX = "-nocontext"
ALL_POLICIES = (
    "lqm",
    "lqm" + NO_CONTEXT_SUFFIX,
    "lqm-noguards",
    "sw-ucb",
    "additive-0.3",
    "additive-0.5",
    "additive-0.7",
    "additive-0.9",
    "cooldown",
    "round-robin",
    "random",
    "latency-greedy",
    "linucb-quality",
    "best-fixed",
    "oracle",
)


def preference(gold_row: np.ndarray, latency: np.ndarray) -> list[int]:
    """Arm indices best first: higher gold quality, ties (to 1e-12) to the lower unloaded latency."""
    return sorted(range(len(gold_row)), key=lambda a: (-round(float(gold_row[a]), 12), latency[a], a))


class GoldPolicy:
    """Shared plumbing of the hindsight policies: learn nothing, rank by a precomputed preference."""

    name: ClassVar[str] = "gold"
    uses_features: ClassVar[bool] = False

    def __init__(self, arms: Sequence[str], gold: np.ndarray, latency: Mapping[str, float]) -> None:
        self.arms = list(arms)
        self.gold = np.asarray(gold, dtype=float)
        self.latency = np.array([latency[arm] for arm in self.arms], dtype=float)
        self.query = 0

    def see_query(self, query: int) -> None:
        self.query = query

    def order(self) -> list[int]:
        raise NotImplementedError

    def rank(self, context: RouteContext) -> Decision:
        return Decision(order=[self.arms[a] for a in self.order()], policy=self.name)

    def observe(self, outcome: Outcome) -> None:
        pass

    def observe_quality(self, arm: str, x: np.ndarray | None, reward: float, now: float) -> None:
        pass


class Fixed(GoldPolicy):
    """Always the same arm. `best-fixed` is the one of these with the best realized quality in
    hindsight: every arm is run fixed on the same streams, and the best is reported."""

    name = "fixed"

    def __init__(self, arms: Sequence[str], gold: np.ndarray, latency: Mapping[str, float], arm: str) -> None:
        super().__init__(arms, gold, latency)
        first = self.arms.index(arm)
        self._order = [first] + [a for a in range(len(self.arms)) if a != first]

    def order(self) -> list[int]:
        return self._order


class Oracle(GoldPolicy):
    """Per query, the arm with the best gold quality, ties to the lower median service time."""

    name = "oracle"

    def __init__(self, arms: Sequence[str], gold: np.ndarray, latency: Mapping[str, float]) -> None:
        super().__init__(arms, gold, latency)
        self._orders: dict[int, list[int]] = {}

    def order(self) -> list[int]:
        order = self._orders.get(self.query)
        if order is None:
            order = self._orders[self.query] = preference(self.gold[self.query], self.latency)
        return order


class WithoutContext:
    """A router that never sees the query's features: every request and every quality observation
    carries `x = None` (the bias alone). `lqm-nocontext` against `lqm` is how much of LQM's result
    comes from context; everything else (heads, windows, latency, guards) is the same router."""

    uses_features: ClassVar[bool] = False

    def __init__(self, router: Any) -> None:
        self.router = router
        self.name = router.name + NO_CONTEXT_SUFFIX

    def rank(self, context: RouteContext) -> Decision:
        return self.router.rank(dataclasses.replace(context, x=None))

    def observe(self, outcome: Outcome) -> None:
        self.router.observe(outcome)

    def observe_quality(self, arm: str, x: np.ndarray | None, reward: float, now: float) -> None:
        self.router.observe_quality(arm, None, reward, now)


def parse_variant(name: str) -> tuple[str, dict[str, Any]]:
    """`lqm:alpha=0.2,modulation=none` → ("lqm", {"alpha": 0.2, "modulation": "none"}): parameter
    variants of a router for ablations, named on the command line."""
    base, _, spec = name.partition(":")
    params: dict[str, Any] = {}
    for item in filter(None, spec.split(",")):
        key, _, raw = item.partition("=")
        value: Any = raw
        if raw.lower() in ("true", "false"):
            value = raw.lower() == "true"
        else:
            for cast in (int, float):
                try:
                    value = cast(raw)
                    break
                except ValueError:
                    pass
        params[key.strip()] = value
    return base, params


def make_policy(
    name: str,
    arms: Sequence[str],
    *,
    tool: str,
    l_ref_s: float,
    capacity: Mapping[str, int] | None,
    seed: int,
    gold: np.ndarray,
    queries: Sequence[int],
    latency: Mapping[str, float],
    extra: Mapping[str, Callable[[list[str], int], Any]] | None = None,
) -> Any:
    """A fresh policy for one (policy, seed) run. `latency` is each arm's unloaded latency (the gold
    policies' tie-break); `extra` maps further policy names to factories `(arms, seed) -> policy`."""
    if extra and name in extra:
        return extra[name](list(arms), seed)
    if name.startswith(FIXED_PREFIX) and name.removeprefix(FIXED_PREFIX) in arms:
        return Fixed(arms, gold, latency, name.removeprefix(FIXED_PREFIX))
    if name == "oracle":
        return Oracle(arms, gold, latency)
    blind = name.endswith(NO_CONTEXT_SUFFIX)  # `lqm-nocontext`, `lqm:alpha=0.1-nocontext`
    base, params = parse_variant(name.removesuffix(NO_CONTEXT_SUFFIX))
    try:
        from mcp_router.routing import build_router

        router = build_router(
            base, tool, list(arms), l_ref_s=l_ref_s, capacity=dict(capacity or {}), seed=seed, params=params
        )
    except Exception as exc:
        raise ValueError(f"cannot build policy {name!r}: {type(exc).__name__}: {exc}") from exc
    return WithoutContext(router) if blind else router
