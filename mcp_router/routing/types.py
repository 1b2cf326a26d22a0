"""What routers exchange with their callers: the request context, the decision, an attempt's outcome.

Kept apart from `base.Router` so the guards (which read outcomes) and the routers (which hold guards)
do not import each other.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class RouteContext:
    """What a router may look at to rank arms for one request."""

    tool: str
    text: str  # the query, or the last user message for llm_complete
    now: float
    x: np.ndarray | None = None  # unit-norm query features (see features.py); None if the router ignores them
    inflight: Mapping[str, int] = field(default_factory=dict)  # calls in flight per arm right now


@dataclass(frozen=True)
class Decision:
    """Arms in the order to try them (first = the choice), why, and whether to judge the call."""

    order: list[str]
    policy: str  # the router's name, or warmup | forced | epsilon
    scores: dict[str, dict[str, Any]] = field(default_factory=dict)  # per-arm score decomposition
    excluded: dict[str, str] = field(default_factory=dict)  # arm -> why it was not eligible
    sample_quality: bool = False  # judge this call (always for warm-up calls)


@dataclass(frozen=True)
class Outcome:
    """One attempt on one arm.

    `status` is ok | timeout | rate_limited | unavailable | bad_response | bad_request.
    """

    arm: str
    status: str
    latency_s: float
    now: float
    retry_after: float | None = None


@dataclass
class Choice:
    """What a policy's `choose` returns: an order over the eligible arms and its reasons."""

    order: list[str]
    policy: str
    scores: dict[str, dict[str, Any]] = field(default_factory=dict)
    sample_quality: bool = False
