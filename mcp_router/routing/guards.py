"""Hard guards that sit outside every router's score: circuit breaker, rate-limit cooldown,
in-flight cap and SLO guard.

LQM's latency term is clipped (an arm of twice the quality wins whatever its latency), so the
score alone never sheds load from a strong arm that is failing or overloaded; these guards do.
Deadlines are absolute times on the router's clock, so a replay of the same outcomes rebuilds
the same state.
"""

from __future__ import annotations

import math
import statistics
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

from mcp_router.routing.types import Outcome


@dataclass(frozen=True)
class GuardParams:
    enabled: bool = True
    breaker_failures: int = 5  # consecutive failures that open the breaker
    breaker_open_s: float = 30.0  # then one half-open probe
    cooldown_s: float = 10.0  # after a 429 without Retry-After
    l_ref_s: float | None = None  # SLO guard reference; None disables the guard
    slo_factor: float = 2.0  # exclude while the window median exceeds slo_factor * l_ref_s
    slo_min_samples: int = 5
    slo_backoff_s: float = 30.0  # first exclusion; doubles on each repeat ...
    slo_backoff_max_s: float = 120.0  # ... up to this
    window: int = 100  # latency samples the SLO guard looks at
    window_age_s: float = 300.0


def from_mapping(cls: type, values: Mapping[str, Any]) -> Any:
    """A parameter dataclass from config values; unknown keys are an error that lists the known ones."""
    known = {f.name for f in fields(cls)}
    unknown = set(values) - known
    if unknown:
        raise ValueError(f"unknown parameter(s) {sorted(unknown)}; known: {sorted(known)}")
    return cls(**values)


@dataclass
class ArmHealth:
    breaker: str = "closed"  # closed | open (half-open is derived from open_until, see `_breaker`)
    consecutive_failures: int = 0
    open_until: float = 0.0
    probe_pending: bool = False  # a half-open or SLO probe has been dispatched, not yet completed
    cooldown_until: float = 0.0
    slow_until: float = 0.0
    slow_backoff_s: float = 0.0
    slow_probe: bool = False  # the SLO exclusion expired: the next call on this arm is its probe
    latencies: deque[tuple[float, float]] = field(default_factory=deque)
    over_limit: int = 0  # of `latencies`, those above the SLO limit: the median is above it iff most are


class Guards:
    def __init__(self, arms: Sequence[str], params: GuardParams, capacity: Mapping[str, int]) -> None:
        self.params = params
        self.capacity = dict(capacity)
        self.health = {arm: ArmHealth() for arm in arms}

    @staticmethod
    def _breaker(h: ArmHealth, now: float) -> str:
        """The breaker's state at `now`: an open breaker whose time is up is half-open (derived, not
        stored, so looking at it changes nothing and a replay of outcomes rebuilds it exactly)."""
        return "half_open" if h.breaker == "open" and now >= h.open_until else h.breaker

    def _why_not(self, arm: str, now: float, inflight: int) -> str | None:
        h, p = self.health[arm], self.params
        breaker = self._breaker(h, now)
        if breaker == "open":
            return f"circuit breaker open for {h.open_until - now:.1f} s more"
        if breaker == "half_open" and h.probe_pending:
            return "circuit breaker half-open: its probe is in flight"
        if h.cooldown_until > now:
            return f"rate limited: cooling down {h.cooldown_until - now:.1f} s more"
        cap = self.capacity.get(arm)
        if cap is not None and inflight >= cap:
            return f"in-flight cap reached ({inflight}/{cap})"
        if h.slow_until > now:
            return f"SLO guard: median latency above {p.slo_factor:g}×L_ref; {h.slow_until - now:.1f} s more"
        if h.slow_probe and h.probe_pending:
            return "SLO guard: its probe is in flight"
        return None

    def eligible(
        self, candidates: Sequence[str], now: float, inflight: Mapping[str, int]
    ) -> tuple[list[str], dict[str, str]]:
        if not self.params.enabled:
            return list(candidates), {}
        eligible, excluded = [], {}
        for arm in candidates:
            why = self._why_not(arm, now, inflight.get(arm, 0))
            if why is None:
                eligible.append(arm)
            else:
                excluded[arm] = why
        return eligible, excluded

    def dispatched(self, arm: str, now: float) -> None:
        h = self.health[arm]
        if (
            self._breaker(h, now) == "half_open" or (h.slow_probe and h.slow_until <= now)
        ) and not h.probe_pending:
            h.probe_pending = True

    def abandoned(self, arm: str) -> None:
        """`dispatched(arm)` will get no outcome (its call was cancelled before the attempt ended):
        release its probe, or the arm would wait for that outcome for good."""
        if arm in self.health:
            self.health[arm].probe_pending = False

    def record(self, outcome: Outcome) -> None:
        h, p, now = self.health[outcome.arm], self.params, outcome.now
        failed = outcome.status != "ok"
        was_probe, h.probe_pending = h.probe_pending, False
        # breaker
        if failed:
            h.consecutive_failures += 1
            if self._breaker(h, now) == "half_open" or h.consecutive_failures >= p.breaker_failures:
                h.breaker, h.open_until = "open", now + p.breaker_open_s
        else:
            h.consecutive_failures = 0
            h.breaker = "closed"
        if outcome.status == "rate_limited":
            wait = outcome.retry_after if outcome.retry_after is not None else p.cooldown_s
            h.cooldown_until = max(h.cooldown_until, now + wait)
        # SLO guard
        limit = p.slo_factor * p.l_ref_s if p.l_ref_s is not None else math.inf
        h.latencies.append((now, outcome.latency_s))
        h.over_limit += outcome.latency_s > limit
        while len(h.latencies) > p.window or (h.latencies and h.latencies[0][0] < now - p.window_age_s):
            h.over_limit -= h.latencies.popleft()[1] > limit
        if p.l_ref_s is None:
            return
        if h.slow_probe and was_probe:
            h.slow_probe = False
            if outcome.latency_s <= limit:
                h.slow_backoff_s = 0.0
                h.latencies = deque([(now, outcome.latency_s)])
                h.over_limit = 0
                return
            self._exclude_slow(h, now)
            return
        # the median exceeds the limit iff more than half the window does (strictly: for an even
        # count the median is the mean of the middle two, so check it exactly when it is a tie)
        n = len(h.latencies)
        if n >= p.slo_min_samples and 2 * h.over_limit >= n and self._median(h) > limit:
            self._exclude_slow(h, now)

    @staticmethod
    def _median(h: ArmHealth) -> float:
        return statistics.median(x for _, x in h.latencies)

    def _exclude_slow(self, h: ArmHealth, now: float) -> None:
        p = self.params
        h.slow_backoff_s = min(
            p.slo_backoff_max_s, h.slow_backoff_s * 2 if h.slow_backoff_s else p.slo_backoff_s
        )
        h.slow_until = now + h.slow_backoff_s
        h.slow_probe = True

    def get_state(self) -> dict[str, Any]:
        """Each arm's health as a replay of its outcomes leaves it: a probe is pending only between a
        live dispatch and its outcome, which no replay sees."""
        return {
            arm: {**{f.name: getattr(h, f.name) for f in fields(h)}, "probe_pending": False}
            for arm, h in self.health.items()
        }

    def set_state(self, state: Mapping[str, Any]) -> None:
        for arm, values in state.items():
            if arm in self.health:
                self.health[arm] = ArmHealth(**{**values, "latencies": deque(values["latencies"])})

    def state(self, now: float, inflight: Mapping[str, int]) -> dict[str, dict[str, Any]]:
        return {
            arm: {
                "breaker": self._breaker(h, now),
                "consecutive_failures": h.consecutive_failures,
                "cooldown_s": round(max(0.0, h.cooldown_until - now), 3),
                "slo_excluded_s": round(max(0.0, h.slow_until - now), 3),
                "excluded_because": self._why_not(arm, now, inflight.get(arm, 0))
                if self.params.enabled
                else None,
            }
            for arm, h in self.health.items()
        }
