"""Round-robin: the honest baseline that serves until LQM-ContextRoute lands, and stays as a baseline."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from mcp_router.routing.base import Decision, RouteContext, Router


class RoundRobinRouter(Router):
    """Each call starts at the next arm in config order; ineligible arms are skipped, the rest follow
    as fallbacks in the same cyclic order. Learns nothing from quality or latency."""

    name = "round-robin"

    def __init__(self, tool: str, arms: Sequence[str]) -> None:
        super().__init__(tool, arms)
        self.turn = 0

    def rank(self, eligible: Sequence[str], context: RouteContext) -> Decision:
        n = len(self.arms)
        start = self.turn % n if n else 0
        self.turn += 1
        cyclic = self.arms[start:] + self.arms[:start]
        allowed = set(eligible)
        order = [arm for arm in cyclic if arm in allowed]
        return Decision(order=order, scores={arm: {"rotation_index": i} for i, arm in enumerate(order)})

    def restore(self, decisions: int, arm_states: Mapping[str, Mapping[str, Any]]) -> None:
        self.turn = decisions
