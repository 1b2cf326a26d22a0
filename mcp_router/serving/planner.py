"""`llm_complete`'s first step: the session's budget, MTRouter's choice of model, and the plan the
dispatcher carries out (the chosen model's endpoints first, then fallback models).

A session's budget is the `budget_usd` it last passed (or the configured default); what it has spent
is the sum of its logged steps. Both live in memory once the process has seen the session (read from
the database on first sight, then kept current as its calls are recorded), so planning a turn costs
no query. Calls in flight hold a reservation of their worst-case cost, taken in the same step of the
event loop as the admission check on priors, so two concurrent turns cannot both spend one remainder.
"""

from __future__ import annotations

import secrets
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

import anyio

from mcp_router.routing.mtrouter.router import ModelDecision, ModelRouter, NoModelAdmissible
from mcp_router.serving.errors import BudgetExhausted
from mcp_router.serving.recent import Recent
from mcp_router.store import StepRecord
from mcp_router.store.model_log import ModelLog
from providers.types import CompletionRequest

SESSIONS_REMEMBERED = 10_000
CHECKPOINT_POLL_S = 2.0  # how soon a checkpoint promoted by `mcp-router train` is served


@dataclass
class SessionState:
    budget_usd: float | None  # the last budget the session was given (its effective budget)
    spent_usd: float
    last_model: str | None


@dataclass(frozen=True)
class Plan:
    """Endpoints to try in order, each with its own request (max_tokens clamped to its model's
    allowance), and the step record the dispatcher completes once the call is served. `settle`
    tells the planner what the recorded call cost."""

    first: list[str]  # the chosen model's endpoints: LQM-ContextRoute orders these
    fallbacks: list[str]  # endpoints of the fallback models, in model order
    requests: dict[str, CompletionRequest]
    model_of: dict[str, str]
    step: StepRecord
    remaining_usd: float | None
    settle: Callable[[float, str | None], None] = lambda cost_usd, served_model: None


class Planner:
    def __init__(self, router: ModelRouter, log: ModelLog, default_budget_usd: float | None) -> None:
        self.router = router
        self.log = log
        self.default_budget_usd = default_budget_usd
        self._reserved: defaultdict[str, float] = defaultdict(float)
        self._sessions: Recent[str, SessionState] = Recent(SESSIONS_REMEMBERED)
        self._current = anyio.Event()  # set once the promoted checkpoint (if any) has been loaded

    async def keep_current(self, interval_s: float = CHECKPOINT_POLL_S) -> None:
        """Load the promoted checkpoint at start-up, then pick up newly promoted ones (another process
        may train one). Runs in the background; no decision reads the database for it."""
        while True:
            await anyio.to_thread.run_sync(self.router.refresh)
            self._current.set()
            await anyio.sleep(interval_s)

    @asynccontextmanager
    async def plan(
        self,
        request: CompletionRequest,
        session_id: str | None,
        budget_usd: float | None,
        task: str | None = None,
    ) -> AsyncIterator[Plan]:
        if not self._current.is_set():  # the first calls after start-up wait for the checkpoint load
            await self._current.wait()
        session = session_id or "call:" + secrets.token_hex(8)  # a call without a session is its own
        state = await self._session(session_id, budget_usd)
        budget, spent = state.budget_usd, state.spent_usd
        messages = [{"role": m.role, "content": m.content} for m in request.messages]

        def decide(remaining: float | None) -> ModelDecision:
            return self.router.decide(messages, request.max_tokens, remaining, task, state.last_model)

        remaining = self._remaining(session, budget, spent)
        try:
            if self.router.embeds:  # a checkpoint embeds the history: milliseconds, in a thread
                decision = await anyio.to_thread.run_sync(decide, remaining)
                # other turns of the session may have spent or reserved meanwhile: check again, now
                spent = state.spent_usd
                remaining = self._remaining(session, budget, spent)
                decision = self._still_affordable(decision, remaining) or decide(remaining)
            else:
                decision = decide(remaining)
        except NoModelAdmissible as exc:
            detail = "" if budget is None else f" (session spent ${spent:.6f} of ${budget:.6f})"
            raise BudgetExhausted(
                f"no model can serve this call{detail}: {exc}. Raise budget_usd, shorten the "
                "conversation, lower max_tokens, or start a new session"
            ) from None
        reservation = _worst_case(decision)
        self._reserved[session] += reservation

        def settle(cost_usd: float, served_model: str | None) -> None:
            state.spent_usd += cost_usd
            state.budget_usd = budget
            if served_model is not None:
                state.last_model = served_model

        plan = self._plan(request, decision, session, budget, spent, remaining, messages, settle)
        try:
            yield plan
        finally:
            self._reserved[session] -= reservation
            if self._reserved[session] <= 1e-15:
                del self._reserved[session]

    def _remaining(self, session: str, budget: float | None, spent: float) -> float | None:
        return None if budget is None else budget - spent - self._reserved.get(session, 0.0)

    @staticmethod
    def _still_affordable(decision: ModelDecision, remaining: float | None) -> ModelDecision | None:
        """A decision taken in a thread, kept only if what it admitted still fits the remainder now
        (another turn of the session may have reserved in the meantime)."""
        return decision if remaining is None or _worst_case(decision) <= remaining + 1e-12 else None

    async def _session(self, session_id: str | None, budget_usd: float | None) -> SessionState:
        if session_id is None:
            return SessionState(budget_usd or self.default_budget_usd, 0.0, None)
        state = self._sessions.get(session_id)
        if state is None:
            loaded = await anyio.to_thread.run_sync(self._load_session, session_id)
            state = self._sessions.setdefault(session_id, loaded)
        if budget_usd:
            state.budget_usd = budget_usd
        return state

    def _load_session(self, session_id: str) -> SessionState:
        budget = self.log.session_budget(session_id) or self.default_budget_usd
        return SessionState(budget, self.log.session_spend(session_id), self.log.last_model(session_id))

    def _plan(
        self,
        request: CompletionRequest,
        decision: ModelDecision,
        session: str,
        budget: float | None,
        spent: float,
        remaining: float | None,
        messages: list[dict[str, str]],
        settle: Callable[[float, str | None], None],
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
            settle=settle,
        )


def _worst_case(decision: ModelDecision) -> float:
    """What a call may cost at most: the dearest admitted model at its clamped max_tokens. A call in
    flight reserves this much of its session's budget."""
    return max(a.est_cost_usd for a in decision.admission.allowed.values())
