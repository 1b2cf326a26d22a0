"""`llm_complete`'s first step: the session's budget, MTRouter's choice of model, and the plan the
dispatcher carries out (the chosen model's endpoints first, then fallback models).

A session's budget is the `budget_usd` it last passed (or the configured default); what it has spent
is the sum of its logged steps. Calls in flight hold a reservation of their worst-case cost, so two
concurrent turns of one session cannot both spend the same remainder.
"""

from __future__ import annotations

import secrets
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import anyio

from mcp_router.dispatch import DispatchError
from mcp_router.model_log import ModelLog
from mcp_router.routing.mtrouter.router import ModelDecision, ModelRouter, NoModelAdmissible
from mcp_router.store import StepRecord
from providers.types import CompletionRequest


class BudgetExhausted(DispatchError):
    """No model of the pool is affordable (or fits the conversation) for this call."""


@dataclass(frozen=True)
class Plan:
    """Endpoints to try in order, each with its own request (max_tokens clamped to its model's
    allowance), and the step record the dispatcher completes once the call is served."""

    first: list[str]  # the chosen model's endpoints: LQM-ContextRoute orders these
    fallbacks: list[str]  # endpoints of the fallback models, in model order
    requests: dict[str, CompletionRequest]
    model_of: dict[str, str]
    step: StepRecord
    remaining_usd: float | None


class Planner:
    def __init__(self, router: ModelRouter, log: ModelLog, default_budget_usd: float | None) -> None:
        self.router = router
        self.log = log
        self.default_budget_usd = default_budget_usd
        self._reserved: defaultdict[str, float] = defaultdict(float)

    @asynccontextmanager
    async def plan(
        self,
        request: CompletionRequest,
        session_id: str | None,
        budget_usd: float | None,
        task: str | None = None,
    ) -> AsyncIterator[Plan]:
        session = session_id or "call:" + secrets.token_hex(8)  # a call without a session is its own
        budget, spent, last_model = await anyio.to_thread.run_sync(self._session, session_id, budget_usd)
        remaining = None if budget is None else budget - spent - self._reserved[session]
        messages = [{"role": m.role, "content": m.content} for m in request.messages]
        try:
            decision = await anyio.to_thread.run_sync(
                lambda: self.router.decide(messages, request.max_tokens, remaining, task, last_model)
            )
        except NoModelAdmissible as exc:
            spend = "" if budget is None else f" (session spent ${spent:.6f} of ${budget:.6f})"
            raise BudgetExhausted(
                f"no model can serve this call{spend}: {exc}. Raise budget_usd, shorten the "
                "conversation, lower max_tokens, or start a new session"
            ) from None
        plan = self._plan(request, decision, session, budget, spent, remaining, messages)
        reservation = max(a.est_cost_usd for a in decision.admission.allowed.values())
        self._reserved[session] += reservation
        try:
            yield plan
        finally:
            self._reserved[session] -= reservation
            if self._reserved[session] <= 1e-15:
                del self._reserved[session]

    def _session(
        self, session_id: str | None, budget_usd: float | None
    ) -> tuple[float | None, float, str | None]:
        if session_id is None:
            return (budget_usd or self.default_budget_usd), 0.0, None
        budget = budget_usd or self.log.session_budget(session_id) or self.default_budget_usd
        return budget, self.log.session_spend(session_id), self.log.last_model(session_id)

    def _plan(
        self,
        request: CompletionRequest,
        decision: ModelDecision,
        session: str,
        budget: float | None,
        spent: float,
        remaining: float | None,
        messages: list[dict[str, str]],
    ) -> Plan:
        specs = {m.name: m for m in self.router.pool}
        allowed = decision.admission.allowed
        requests: dict[str, CompletionRequest] = {}
        model_of: dict[str, str] = {}
        for model in decision.order:
            for endpoint in specs[model].endpoints:
                if endpoint not in model_of:
                    model_of[endpoint] = model
                    requests[endpoint] = CompletionRequest(
                        messages=request.messages,
                        max_tokens=allowed[model].max_tokens,
                        temperature=request.temperature,
                    )
        first = [e for e, m in model_of.items() if m == decision.model]
        step = StepRecord(
            session_id=session,
            turn=decision.turn,
            chosen_model=decision.model,
            propensity=decision.propensity,
            policy=decision.policy,
            stage=decision.stage,
            checkpoint_id=decision.checkpoint_id,
            lam=self.router.params.lam,
            q_values=decision.q_values,
            excluded=decision.admission.excluded,
            history=messages,
            task=decision.task,
            obs_rules=decision.obs_rules,
            budget_usd=budget,
            spent_before_usd=spent,
            est_cost_usd=allowed[decision.model].est_cost_usd,
            max_tokens=allowed[decision.model].max_tokens,
        )
        return Plan(
            first=first,
            fallbacks=[e for e in model_of if e not in first],
            requests=requests,
            model_of=model_of,
            step=step,
            remaining_usd=remaining,
        )
