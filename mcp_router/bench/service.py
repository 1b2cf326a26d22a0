"""How a simulated provider serves a call: the contract between the discrete-event simulator and
each benchmark's service model (a parametric load model for retrieval, trace replay for qa-pool)."""

from __future__ import annotations

from typing import Protocol

import numpy as np


class ServiceModel(Protocol):
    arms: list[str]

    def capacity(self, arm: str, progress: float) -> int:
        """Concurrent slots of `arm` at this point of the stream (`progress` in [0, 1))."""
        ...

    def service_time(
        self, arm: str, query: int, rng: np.random.Generator, progress: float
    ) -> tuple[float, bool]:
        """Seconds one call on `query` holds a slot of `arm`, and whether it fails (an error, not a
        timeout)."""
        ...

    def arrival_rate(self, progress: float) -> float:
        """Poisson arrival rate (calls per simulated second) at this point of the stream."""
        ...
