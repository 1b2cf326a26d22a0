"""What the store reads and writes, as plain records: calls and their attempts, quality signals,
MTRouter's steps, and the router events every process folds in the same order."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class AttemptRecord:
    provider: str
    status: str  # ok | rate_limited | unavailable | bad_response | bad_request | timeout
    latency_s: float
    error: str | None = None
    ts_done: float = 0.0  # the router clock when the attempt completed: replays feed it back exactly
    retry_after: float | None = None


@dataclass(frozen=True)
class QualityObs:
    """One quality reward for one served call, with the query features the router learned it under."""

    tool: str
    provider: str
    call_id: str
    ts: float
    x: np.ndarray | None
    reward: float
    source: str  # explicit | judge | failure | implicit
    cost_usd: float = 0.0  # what obtaining the signal cost (the judge's tokens)


@dataclass(frozen=True)
class StepRecord:
    """One `llm_complete` decision of MTRouter: which model, why, with what chance, at what cost.

    Written with its call, in the same transaction, so a step never exists without the call (and
    the attempts) it describes. `history` is the message list the model saw, so `train --from-db`
    can re-embed it under any embedder."""

    session_id: str
    turn: int  # the number of assistant messages before this call
    chosen_model: str
    propensity: float
    policy: str  # greedy | explore | fallback | only
    stage: str  # prior | checkpoint
    checkpoint_id: str | None
    lam: float
    q_values: dict[str, float]
    excluded: dict[str, str]
    history: list[dict[str, str]]
    task: str | None
    obs_rules: list[str]  # error rules fired by the messages that opened this turn
    budget_usd: float | None
    spent_before_usd: float
    est_cost_usd: float
    max_tokens: int
    served_model: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    reservation_id: int | None = None  # the budget held while the call runs; released with the step


@dataclass(frozen=True)
class CallRecord:
    call_id: str
    tool: str
    router: str
    ts: float
    request: dict[str, Any]
    attempts: list[AttemptRecord]
    decision: dict[str, Any] = field(default_factory=dict)
    x: np.ndarray | None = None  # query features, kept so later quality signals can train the router
    feat_version: str | None = None
    sampled: bool = False  # the router asked for this call's quality to be judged
    failure_obs: list[QualityObs] = field(default_factory=list)  # r = 0 for sampled failed attempts
    session_id: str | None = None
    cost_usd: float = 0.0
    step: StepRecord | None = None  # llm_complete's model decision
    scope: str | None = None  # the collection a retrieve call searched: its arms' totals are kept per scope

    @property
    def served_by(self) -> str | None:
        last = self.attempts[-1] if self.attempts else None
        return last.provider if last and last.status == "ok" else None

    @property
    def latency_s(self) -> float:
        return sum(a.latency_s for a in self.attempts)


class StoreBusy(Exception):
    """Another connection holds the write lock, and the caller chose not to wait for it."""


class UnknownCall(LookupError):
    pass


class DuplicateFeedback(ValueError):
    pass


@dataclass(frozen=True)
class Event:
    """One piece of evidence a tool's router learns from, numbered in commit order (`seq`).

    Every process folds the same events in `seq` order, so processes sharing a store converge on the
    same router state and a restart (snapshot, then the events after it) rebuilds it exactly.
    kind: `call` (one decision), `attempt` (status and latency), `quality` (a reward, with the
    query's features) or `forget` (explicit feedback replaced that reward). `origin` is the writing
    process, which has already counted its own decisions."""

    seq: int
    tool: str
    kind: str
    origin: str
    provider: str | None = None
    ts: float = 0.0
    status: str | None = None
    latency_s: float | None = None
    retry_after: float | None = None
    x: np.ndarray | None = None
    reward: float | None = None
    feat_version: str | None = None
