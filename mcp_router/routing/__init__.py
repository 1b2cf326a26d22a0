"""Routers: given a tool's arms and a request, decide which arm serves it (pure computation).

`build_router` is the one factory the server and the benchmarks share, so a benchmark measures
exactly the class the server runs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from mcp_router.routing.base import Decision, Outcome, RouteContext, Router
from mcp_router.routing.baselines import CooldownRouter, LatencyGreedyRouter, RandomRouter, SWUCBRouter
from mcp_router.routing.guards import GuardParams, from_mapping
from mcp_router.routing.lqm import AdditiveRouter, LinUCBQualityRouter, LQMParams, LQMRouter
from mcp_router.routing.round_robin import RoundRobinRouter

ADDITIVE_ALPHAS = (0.3, 0.5, 0.7, 0.9)
ROUTER_NAMES = (
    "lqm",
    "lqm-noguards",
    "sw-ucb",
    *(f"additive-{a}" for a in ADDITIVE_ALPHAS),
    "cooldown",
    "round-robin",
    "random",
    "latency-greedy",
    "linucb-quality",
)


def build_router(
    name: str,
    tool: str,
    arms: Sequence[str],
    *,
    l_ref_s: float,
    capacity: Mapping[str, int] | None = None,
    seed: int = 0,
    params: Mapping[str, Any] | None = None,
    guards: Mapping[str, Any] | None = None,
) -> Router:
    """A router by its policy name. `params` overrides `LQMParams` fields for the LQM family and
    `guards` overrides `GuardParams`; every policy but `cooldown` (its own health logic) and
    `lqm-noguards` (the ablation) runs behind the same guards."""
    lqm_params: LQMParams = from_mapping(LQMParams, {**(params or {}), "l_ref_s": l_ref_s})
    guard_params: GuardParams = from_mapping(GuardParams, {"l_ref_s": l_ref_s, **(guards or {})})
    common: dict[str, Any] = {"capacity": capacity, "seed": seed, "guards": guard_params}
    if name == "lqm":
        return LQMRouter(tool, arms, params=lqm_params, **common)
    if name == "lqm-noguards":
        return LQMRouter(
            tool, arms, params=lqm_params, **{**common, "guards": replace(guard_params, enabled=False)}
        )
    if name == "linucb-quality":
        return LinUCBQualityRouter(tool, arms, params=lqm_params, **common)
    if name.startswith("additive-") and name in ROUTER_NAMES:
        router = AdditiveRouter(
            tool,
            arms,
            params=replace(lqm_params, additive_alpha=float(name.removeprefix("additive-"))),
            **common,
        )
        router.name = name  # type: ignore[misc]
        return router
    if name == "sw-ucb":
        return SWUCBRouter(tool, arms, l_ref_s=l_ref_s, **common)
    if name == "cooldown":
        return CooldownRouter(tool, arms, l_ref_s=l_ref_s, capacity=capacity, seed=seed)
    if name == "latency-greedy":
        return LatencyGreedyRouter(tool, arms, l_ref_s=l_ref_s, **common)
    if name == "round-robin":
        return RoundRobinRouter(tool, arms, **common)
    if name == "random":
        return RandomRouter(tool, arms, **common)
    raise ValueError(f"unknown router {name!r}; use one of: {', '.join(ROUTER_NAMES)}")


__all__ = [
    "ROUTER_NAMES",
    "Decision",
    "LQMParams",
    "LQMRouter",
    "Outcome",
    "RouteContext",
    "Router",
    "build_router",
]
