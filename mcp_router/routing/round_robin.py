"""Round-robin: each call starts at the next arm in config order; the others follow as fallbacks."""

from __future__ import annotations

from collections.abc import Sequence

from mcp_router.routing.base import Choice, RouteContext, Router, cyclic_order


class RoundRobinRouter(Router):
    """Quality- and latency-blind; the honest baseline every learned router must beat."""

    name = "round-robin"

    def choose(self, eligible: Sequence[str], context: RouteContext) -> Choice:
        order = cyclic_order(self.arms, eligible, self.decisions % len(self.arms))
        return Choice(
            order=order, policy=self.name, scores={a: {"rotation_index": i} for i, a in enumerate(order)}
        )
