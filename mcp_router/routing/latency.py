"""Per-arm latency window (by count and age) and the in-flight-corrected, L_ref-normalised cost τ̃."""

from __future__ import annotations

from collections import deque
from typing import Any


class LatencyWindow:
    """Samples arrive in time order, so while the oldest is inside the age window all are, and the
    mean is a running sum over the window: it is read for every arm on every decision and written
    once per attempt, so neither may walk the window (recomputed exactly every `window` adds, so
    rounding cannot drift)."""

    def __init__(self, window: int = 100, window_age_s: float = 300.0, fallback: int = 10) -> None:
        self.window, self.window_age_s, self.fallback = window, window_age_s, fallback
        self.samples: deque[tuple[float, float]] = deque(maxlen=window)
        self._sum = 0.0  # of the window's latencies
        self._adds = 0

    def add(self, latency_s: float, now: float) -> None:
        if len(self.samples) == self.window:
            self._sum -= self.samples[0][1]
        self.samples.append((now, latency_s))
        self._sum += latency_s
        self._adds += 1
        if self._adds % self.window == 0:
            self._sum = sum(x for _, x in self.samples)

    def get_state(self) -> dict[str, Any]:
        return {"samples": self.samples}

    def set_state(self, state: dict[str, Any]) -> None:
        self.samples = deque(state["samples"], maxlen=self.window)
        self._sum = sum(x for _, x in self.samples)

    def mean(self, now: float) -> float | None:
        """Mean of the samples younger than the age window; when none is, of the newest `fallback`."""
        if not self.samples:
            return None
        if self.samples[0][0] >= now - self.window_age_s:
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
