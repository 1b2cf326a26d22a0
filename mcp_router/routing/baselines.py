"""Baseline routers behind the same interface as LQM-ContextRoute (reference §3)."""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from mcp_router.routing.base import Choice, Outcome, RouteContext, Router
from mcp_router.routing.guards import GuardParams
from mcp_router.routing.latency import LatencyWindow


class RandomRouter(Router):
    name = "random"

    def choose(self, eligible: Sequence[str], context: RouteContext) -> Choice:
        order = [eligible[i] for i in self.rng().permutation(len(eligible))]
        return Choice(order=order, policy=self.name)


class LatencyGreedyRouter(Router):
    """argmin of the windowed mean latency; untried arms first; random tie-break."""

    name = "latency-greedy"

    def __init__(
        self,
        tool: str,
        arms: Sequence[str],
        *,
        l_ref_s: float,
        window: int = 100,
        window_age_s: float = 300.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(tool, arms, **kwargs)
        self.latency = {a: LatencyWindow(window, window_age_s) for a in self.arms}

    def choose(self, eligible: Sequence[str], context: RouteContext) -> Choice:
        tiebreak = dict(zip(eligible, self.rng().random(len(eligible)), strict=True))
        means = {a: self.latency[a].mean(context.now) for a in eligible}
        order = sorted(eligible, key=lambda a: (means[a] is not None, means[a] or 0.0, tiebreak[a]))
        return Choice(order=order, policy=self.name, scores={a: {"tau_s": means[a]} for a in eligible})

    def observe(self, outcome: Outcome) -> None:
        super().observe(outcome)
        self.latency[outcome.arm].add(outcome.latency_s, outcome.now)

    def _learned(self) -> dict[str, Any]:
        return {"latency": {a: w.get_state() for a, w in self.latency.items()}}

    def _restore(self, state: Mapping[str, Any]) -> None:
        for arm, window in state["latency"].items():
            self.latency[arm].set_state(window)

    def _config(self) -> dict[str, Any]:
        window = next(iter(self.latency.values()), None)
        return {"window": (window.window, window.window_age_s) if window else None}


class SWUCBRouter(Router):
    """Sliding-window UCB (Garivier & Moulines 2011) on the additive reward α·u − (1−α)·τ̃ of each call.

    Non-contextual. The window holds the last W rewarded pulls of the tool; an arm with no pull in
    the window has an infinite index. τ̃ of a call is its own latency over L_ref (clipped), matched
    to its quality reward in completion order per arm."""

    name = "sw-ucb"

    def __init__(
        self,
        tool: str,
        arms: Sequence[str],
        *,
        l_ref_s: float,
        additive_alpha: float = 0.5,
        window: int = 500,
        xi: float = 0.6,
        bound: float = 1.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(tool, arms, **kwargs)
        self.l_ref_s, self.alpha, self.xi, self.bound = l_ref_s, additive_alpha, xi, bound
        self.pulls: deque[tuple[str, float]] = deque(maxlen=window)
        self.pending_tau: dict[str, deque[float]] = {a: deque() for a in self.arms}

    def choose(self, eligible: Sequence[str], context: RouteContext) -> Choice:
        t = max(self.decisions, 1)
        counts = {a: 0 for a in eligible}
        sums = {a: 0.0 for a in eligible}
        for arm, reward in self.pulls:
            if arm in counts:
                counts[arm] += 1
                sums[arm] += reward
        horizon = np.log(min(t, self.pulls.maxlen or t))
        index = {
            a: (sums[a] / counts[a] + self.bound * np.sqrt(self.xi * max(horizon, 0.0) / counts[a]))
            if counts[a]
            else float("inf")
            for a in eligible
        }
        tiebreak = dict(zip(eligible, self.rng().random(len(eligible)), strict=True))
        order = sorted(eligible, key=lambda a: (-index[a], tiebreak[a]))
        return Choice(
            order=order,
            policy=self.name,
            scores={a: {"index": index[a], "n": counts[a]} for a in eligible},
            sample_quality=True,
        )

    def observe(self, outcome: Outcome) -> None:
        super().observe(outcome)
        self.pending_tau[outcome.arm].append(min(outcome.latency_s / self.l_ref_s, 1.0))

    def observe_quality(self, arm: str, x: np.ndarray | None, reward: float, now: float) -> None:
        tau_t = self.pending_tau[arm].popleft() if self.pending_tau[arm] else 0.0
        self.pulls.append((arm, self.alpha * reward - (1.0 - self.alpha) * tau_t))

    def _learned(self) -> dict[str, Any]:
        return {"pulls": self.pulls, "pending_tau": self.pending_tau}

    def _restore(self, state: Mapping[str, Any]) -> None:
        self.pulls = deque(state["pulls"], maxlen=self.pulls.maxlen)
        for arm, pending in state["pending_tau"].items():
            self.pending_tau[arm] = deque(pending)

    def _config(self) -> dict[str, Any]:
        return {"sw": [self.l_ref_s, self.alpha, self.xi, self.bound, self.pulls.maxlen]}


class CooldownRouter(Router):
    """Gateway-style reactive cooldown, quality-blind: uniform random among arms not cooling down.

    An arm cools down for `cooldown_s` after ≥ `failures` failures (errors, timeouts) within
    `failure_window_s`, or for Retry-After (else `cooldown_s`) after a 429. If every arm cools,
    the one whose cooldown ends first serves. It brings its own health logic, so the shared guards
    are off."""

    name = "cooldown"

    def __init__(
        self,
        tool: str,
        arms: Sequence[str],
        *,
        l_ref_s: float,
        cooldown_s: float = 30.0,
        failures: int = 3,
        failure_window_s: float = 60.0,
        **kwargs: Any,
    ) -> None:
        kwargs["guards"] = GuardParams(enabled=False)
        super().__init__(tool, arms, **kwargs)
        self.cooldown_s, self.failures, self.failure_window_s = cooldown_s, failures, failure_window_s
        self.until = {a: 0.0 for a in self.arms}
        self.recent_failures: dict[str, deque[float]] = {a: deque() for a in self.arms}

    def choose(self, eligible: Sequence[str], context: RouteContext) -> Choice:
        now = context.now
        healthy = [a for a in eligible if self.until[a] <= now]
        rng = self.rng()
        if healthy:
            order = [healthy[i] for i in rng.permutation(len(healthy))]
            order += sorted((a for a in eligible if a not in healthy), key=lambda a: self.until[a])
        else:
            order = sorted(eligible, key=lambda a: self.until[a])
        return Choice(
            order=order,
            policy=self.name,
            scores={a: {"cooling_s": max(0.0, self.until[a] - now)} for a in eligible},
        )

    def observe(self, outcome: Outcome) -> None:
        super().observe(outcome)
        arm, now = outcome.arm, outcome.now
        if outcome.status == "rate_limited":
            wait = outcome.retry_after if outcome.retry_after is not None else self.cooldown_s
            self.until[arm] = max(self.until[arm], now + wait)
        elif outcome.status != "ok":
            window = self.recent_failures[arm]
            window.append(now)
            while window and window[0] < now - self.failure_window_s:
                window.popleft()
            if len(window) >= self.failures:
                self.until[arm] = max(self.until[arm], now + self.cooldown_s)
                window.clear()

    def _learned(self) -> dict[str, Any]:
        return {"until": self.until, "recent_failures": self.recent_failures}

    def _restore(self, state: Mapping[str, Any]) -> None:
        self.until.update(state["until"])
        for arm, window in state["recent_failures"].items():
            self.recent_failures[arm] = deque(window)

    def _config(self) -> dict[str, Any]:
        return {"cooldown": [self.cooldown_s, self.failures, self.failure_window_s]}
