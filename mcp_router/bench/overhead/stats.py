"""Latency samples summarised: nearest-rank percentiles, and rounding for the JSON.

Every row of the report is a `Dist`, so all of them are summarised the same way (seconds in, ms or µs
out) and a missing figure is `None`, never NaN, in the JSON.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Dist:
    """A latency sample summarised by nearest-rank percentiles (seconds in, ms or µs out)."""

    n: int
    p50_s: float
    p99_s: float
    mean_s: float

    @classmethod
    def of(cls, seconds: Sequence[float]) -> Dist:
        ordered = sorted(seconds)
        if not ordered:
            return cls(0, math.nan, math.nan, math.nan)
        return cls(
            len(ordered), quantile(ordered, 0.50), quantile(ordered, 0.99), sum(ordered) / len(ordered)
        )

    def ms(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "p50_ms": rounded(self.p50_s * 1e3),
            "p99_ms": rounded(self.p99_s * 1e3),
            "mean_ms": rounded(self.mean_s * 1e3),
        }

    def us(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "p50_us": rounded(self.p50_s * 1e6, 2),
            "p99_us": rounded(self.p99_s * 1e6, 2),
            "mean_us": rounded(self.mean_s * 1e6, 2),
        }


def quantile(ordered: Sequence[float], q: float) -> float:
    """Nearest-rank quantile of an ascending sample: the value that `q` of the sample does not exceed."""
    return float(ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))])


def missing(value: Any) -> bool:
    """Whether a figure was not measured: None, or NaN (the summary of an empty sample)."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def rounded(value: float | None, digits: int = 4) -> float | None:
    """`value` rounded for the JSON; None for a figure that was not measured."""
    return None if missing(value) else round(value, digits)
