"""The counts of one run: `FULL` is the benchmark, `QUICK` the CI smoke run.

Kept apart so a count is changed in one place, and so the report can describe the run it comes from.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Params:
    """Every count of one run; `FULL` is the benchmark, `QUICK` the CI smoke run (same row kinds)."""

    quick: bool
    lqm_decisions: int
    feature_queries: int
    mt_prior_decisions: int
    mt_checkpoint_decisions: int
    path_calls: int  # per (tool, transport): this many router calls, and as many of each floor
    batch: int  # calls per alternating batch
    warmup_calls: int  # router calls (each rated with `feedback`) before measuring, per tool
    litellm_calls: int
    throughput: dict[int, int]  # concurrency -> calls sent
    rss_points: tuple[int, ...]  # routed calls after which RSS is read
    startup_reps: int

    def describe(self) -> dict[str, Any]:
        return {k: (dict(v) if isinstance(v, dict) else v) for k, v in asdict(self).items()}


FULL = Params(
    quick=False,
    lqm_decisions=20_000,
    feature_queries=5_000,
    mt_prior_decisions=5_000,
    mt_checkpoint_decisions=300,
    path_calls=1_000,
    batch=50,
    warmup_calls=40,
    litellm_calls=1_000,
    throughput={1: 500, 16: 2_000, 64: 4_000},
    rss_points=(1_000, 100_000),
    startup_reps=3,
)
QUICK = Params(
    quick=True,
    lqm_decisions=2_000,
    feature_queries=300,
    mt_prior_decisions=300,
    mt_checkpoint_decisions=10,
    path_calls=40,
    batch=20,
    warmup_calls=25,
    litellm_calls=40,
    throughput={1: 20, 16: 64, 64: 128},
    rss_points=(200, 1_000),
    startup_reps=1,
)
