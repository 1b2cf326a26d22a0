"""Per-arm latency window (by count and age) and the in-flight-corrected, L_ref-normalised cost τ̃."""

from __future__ import annotations

from collections import deque
from typing import Any


class LatencyWindow:
    """Samples arrive in time order, so while the oldest is inside the age window all are, and the
    mean is a cached sum over the window (it is read for every arm on every decision, written once
    per attempt)."""

    def __init__(self, window: int = 100, window_age_s: float = 300.0, fallback: int = 10) -> None:
        self.window, self.window_age_s, self.fallback = window, window_age_s, fallback
        self.samples: deque[tuple[float, float]] = deque(maxlen=window)
        self._sum: float | None = 0.0  # of the window's latencies; None after an add

    def add(self, latency_s: float, now: float) -> None:
        self.samples.append((now, latency_s))
        self._sum = None

    def get_state(self) -> dict[str, Any]:
        return {"samples": self.samples}

    def set_state(self, state: dict[str, Any]) -> None:
        self.samples = deque(state["samples"], maxlen=self.window)
        self._sum = None

    def mean(self, now: float) -> float | None:
        """Mean of the samples younger than the age window; when none is, of the newest `fallback`."""
        if not self.samples:
            return None
        if self.samples[0][0] >= now - self.window_age_s:
            if self._sum is None:
                self._sum = sum(x for _, x in self.samples)
            return self._sum / len(self.samples)
        recent = [x for t, x in self.samples if t >= now - self.window_age_s]
        if not recent:
            recent = [x for _, x in list(self.samples)[-self.fallback :]]
        return sum(recent) / len(recent)


def tau_tilde(
    tau_s: float | None, inflight: int, capacity: int | None, l_ref_s: float, clip: bool = True
) -> tuple[float, float]:
    """(τ_eff, τ̃): the windowed latency inflated by the live load, and its ratio to L_ref (clipped at 1).
    An arm never observed gets τ̃ = 0 (optimistic; warm-up covers it)."""
    if tau_s is None:
        return 0.0, 0.0
    effective = tau_s * (1.0 + inflight / capacity) if capacity else tau_s
    ratio = effective / l_ref_s
    return effective, min(ratio, 1.0) if clip else ratio
