"""Routers: given a tool's eligible arms and the request, decide which arm serves it (pure computation)."""

from mcp_router.routing.base import Decision, Outcome, RouteContext, Router
from mcp_router.routing.round_robin import RoundRobinRouter

ROUTERS: dict[str, type[Router]] = {RoundRobinRouter.name: RoundRobinRouter}

__all__ = ["ROUTERS", "Decision", "Outcome", "RoundRobinRouter", "RouteContext", "Router"]
