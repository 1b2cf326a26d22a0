"""A SIMULATED judge for the benchmarks: no model, no text, just the gold quality plus Gaussian noise.

It stands in for the LLM judge (`feedback.judge`) when the benchmarks need thousands of rewards per
second; `mcp-router bench judge` measures how far the real local judges are from this idealisation.
"""

from __future__ import annotations

import numpy as np


class SimulatedJudge:
    """Simulated judge: `grade(gold)` = clip(gold + N(0, noise), 0, 1). It never sees the query or the
    result, only the gold quality, so it is unbiased by construction, unlike any real judge.

    With `steps`, the noise of every step is drawn up front (`rng.normal(0, noise, steps)`), and
    `grade(gold, step=i)` uses step i's draw: call i gets the same noise whichever arm serves it and
    in whatever order outcomes arrive (common random numbers across policies). Without `step`, each
    `grade` draws afresh from `rng`. Noise 0 draws nothing."""

    def __init__(self, noise: float, rng: np.random.Generator, steps: int = 0) -> None:
        if not noise >= 0:
            raise ValueError(f"noise must be >= 0, got {noise!r}")
        self.noise = float(noise)
        self.rng = rng
        self._draws = rng.normal(0.0, self.noise, steps) if self.noise > 0 and steps > 0 else None

    def grade(self, gold: float, step: int | None = None) -> float:
        """The simulated reward for a call of true quality `gold`."""
        if self.noise == 0:
            eps = 0.0
        elif step is not None:
            if self._draws is None:
                raise ValueError("grade(step=...) needs a judge built with steps > 0")
            eps = float(self._draws[step])
        else:
            eps = float(self.rng.normal(0.0, self.noise))
        return min(1.0, max(0.0, float(gold) + eps))
