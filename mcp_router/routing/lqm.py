"""LQM-ContextRoute: rank a tool's arms by expected answer quality per service cycle.

    V_i(x) = min(1, û_i(x) + m_i(x)·β_i(x)) / (1 + τ̃_i),   τ̃_i = min(τ_i / L_ref, 1)

û and β come from a sliding-window LinUCB quality head per arm (β = α·width), τ from a sliding
latency window corrected by the calls in flight, m modulates the exploration bonus of dominated
arms. Arms with fewer than N_min quality observations in their window are warmed up round-robin
first. Hard guards (breaker, cooldown, in-flight cap, SLO) run before scoring, in the base class.
See the team reference `lqm-contextroute.md` §2 for what is the paper's and what is reconstruction.

The additive-reward and quality-only LinUCB baselines share everything here but the score, so
the benchmark compares exactly the combination rule.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from mcp_router.routing.base import Choice, Outcome, RouteContext, Router, cyclic_order
from mcp_router.routing.features import PROJ_DIM, TEXT_FEATURES, bias_vector
from mcp_router.routing.guards import GuardParams
from mcp_router.routing.latency import LatencyWindow, tau_tilde
from mcp_router.routing.linucb import SlidingLinUCB, StackedHeads

FEATURE_DIM = TEXT_FEATURES + PROJ_DIM


@dataclass(frozen=True)
class LQMParams:
    """Per-tool parameters with the reference's defaults (`[tools.<tool>.lqm]` in config)."""

    l_ref_s: float = 1.5
    alpha: float = 0.5  # LinUCB exploration bonus β = alpha · width
    ridge: float = 1.0
    modulation: str = "bonus"  # bonus | sharpen | none
    lambda_mod: float = 1.0
    m_floor: float = 0.1
    n_min: int = 10  # warm-up pulls per arm, counted in the current quality window
    window: int = 500
    window_age_s: float = 86_400.0
    latency_window: int = 100
    latency_window_age_s: float = 300.0
    epsilon: float = 0.0
    judge_rate: float = 1.0  # share of warm calls sampled for quality (warm-up calls always are)
    clip: bool = True  # τ̃ = min(τ/L_ref, 1); False is an ablation
    rebuild_every: int = 1000
    additive_alpha: float = 0.5  # only for the additive baseline: α·quality − (1−α)·τ̃


class LQMRouter(Router):
    name = "lqm"
    uses_features = True

    def __init__(
        self,
        tool: str,
        arms: Sequence[str],
        *,
        params: LQMParams | None = None,
        capacity: Mapping[str, int] | None = None,
        guards: GuardParams | None = None,
        seed: int = 0,
        dim: int = FEATURE_DIM,
    ) -> None:
        self.params = params or LQMParams()
        super().__init__(
            tool,
            arms,
            capacity=capacity,
            guards=guards or GuardParams(l_ref_s=self.params.l_ref_s),
            seed=seed,
        )
        p = self.params
        self.dim = dim
        self.heads = {
            a: SlidingLinUCB(dim, p.ridge, p.window, p.window_age_s, p.rebuild_every) for a in self.arms
        }
        self.latency = {a: LatencyWindow(p.latency_window, p.latency_window_age_s) for a in self.arms}
        self._stacked = StackedHeads()
        self._bias = bias_vector(dim)

    # -- scoring ---------------------------------------------------------------------------------

    def score(self, u: float, beta: float, m: float, tau_t: float) -> float:
        optimistic = min(1.0, u + m * beta)
        if self.params.modulation == "sharpen":
            optimistic = optimistic ** (1.0 + self.params.lambda_mod)
        return optimistic / (1.0 + tau_t)

    def modulation(self, u: float, u_max: float) -> float:
        p = self.params
        if p.modulation != "bonus" or u_max <= 0.0:
            return 1.0
        return max(u / u_max, p.m_floor) ** p.lambda_mod

    def decompose(self, eligible: Sequence[str], context: RouteContext) -> dict[str, dict[str, Any]]:
        x = context.x if context.x is not None else self._bias
        now, p = context.now, self.params
        u_all, width_all = self._stacked.predict([self.heads[a] for a in eligible], x, now)
        parts: dict[str, dict[str, Any]] = {}
        for arm, u, width in zip(eligible, u_all.tolist(), width_all.tolist(), strict=True):
            tau, tau_t = tau_tilde(
                self.latency[arm].mean(now),
                context.inflight.get(arm, 0),
                self.capacity.get(arm),
                p.l_ref_s,
                p.clip,
            )
            parts[arm] = {
                "u_hat": u,
                "width": width,
                "beta": p.alpha * width,
                "tau_s": tau,
                "tau_tilde": tau_t,
                "n": self.heads[arm].count(now),
            }
        u_max = max(u_all.tolist(), default=0.0)
        for part in parts.values():
            part["m"] = self.modulation(part["u_hat"], u_max)
            part["V"] = self.score(part["u_hat"], part["beta"], part["m"], part["tau_tilde"])
        return parts

    def score_order(self, arms: Sequence[str], context: RouteContext) -> list[str]:
        """By V (then û, then τ), as `choose` ranks them, without its draws or warm-up rotation."""
        parts = self.decompose(arms, context)
        position = {a: i for i, a in enumerate(arms)}
        return sorted(
            arms, key=lambda a: (-parts[a]["V"], -parts[a]["u_hat"], parts[a]["tau_s"], position[a])
        )

    def choose(self, eligible: Sequence[str], context: RouteContext) -> Choice:
        p = self.params
        rng = self.rng()
        parts = self.decompose(eligible, context)
        tiebreak = dict(zip(eligible, rng.random(len(eligible)), strict=True))
        ranked = sorted(
            eligible, key=lambda a: (-parts[a]["V"], -parts[a]["u_hat"], parts[a]["tau_s"], tiebreak[a])
        )
        cold = [a for a in eligible if self.heads[a].count(context.now) < p.n_min]
        policy = self.name
        if cold:
            first = cyclic_order(self.arms, cold, self.decisions)[0]
            ranked = [first] + [a for a in ranked if a != first]
            policy = "warmup"
        elif p.epsilon > 0 and rng.random() < p.epsilon:
            first = eligible[int(rng.integers(len(eligible)))]
            ranked = [first] + [a for a in ranked if a != first]
            policy = "epsilon"
        sampled = bool(cold) or rng.random() < p.judge_rate
        return Choice(order=ranked, policy=policy, scores=parts, sample_quality=sampled)

    # -- learning --------------------------------------------------------------------------------

    def observe(self, outcome: Outcome) -> None:
        super().observe(outcome)
        self.latency[outcome.arm].add(outcome.latency_s, outcome.now)

    def observe_quality(self, arm: str, x: np.ndarray | None, reward: float, now: float) -> None:
        self.heads[arm].add(
            x if x is not None else bias_vector(self.dim), float(np.clip(reward, 0.0, 1.0)), now
        )

    def forget_quality(self, arm: str, x: np.ndarray | None, reward: float, ts: float) -> None:
        x = x if x is not None else bias_vector(self.dim)
        self.heads[arm].remove(ts, x, float(np.clip(reward, 0.0, 1.0)))

    def _learned(self) -> dict[str, Any]:
        return {
            "heads": {a: h.get_state() for a, h in self.heads.items()},
            "latency": {a: w.get_state() for a, w in self.latency.items()},
        }

    def _restore(self, state: Mapping[str, Any]) -> None:
        for arm, head in state["heads"].items():
            self.heads[arm].set_state(head)
        for arm, window in state["latency"].items():
            self.latency[arm].set_state(window)

    def _config(self) -> dict[str, Any]:
        return {"params": asdict(self.params), "dim": self.dim}

    def arm_states(self, now: float, inflight: Mapping[str, int]) -> dict[str, dict[str, Any]]:
        """Guards plus the score decomposition for a context-free request (bias features only)."""
        states = super().arm_states(now, inflight)
        parts = self.decompose(self.arms, RouteContext(self.tool, "", now, None, inflight))
        for arm in self.arms:
            states[arm]["score"] = {
                k: (round(v, 4) if isinstance(v, float) else v) for k, v in parts[arm].items()
            }
        return states


class LinUCBQualityRouter(LQMRouter):
    """Same head, features, bonus and windows as LQM, no latency term and no modulation: argmax û + β."""

    name = "linucb-quality"

    def modulation(self, u: float, u_max: float) -> float:
        return 1.0

    def score(self, u: float, beta: float, m: float, tau_t: float) -> float:
        return u + beta


class AdditiveRouter(LQMRouter):
    """The additive latency–quality reward on LQM's own estimates: α·min(1, û + β) − (1 − α)·τ̃.

    This is the project's reading of contextual "ContextRoute"; only the combination rule differs
    from LQM, so the benchmark isolates it."""

    name = "additive"

    def modulation(self, u: float, u_max: float) -> float:
        return 1.0

    def score(self, u: float, beta: float, m: float, tau_t: float) -> float:
        a = self.params.additive_alpha
        return a * min(1.0, u + beta) - (1.0 - a) * tau_t
