"""`llm_complete`'s first step: the session's budget, MTRouter's choice of model, and the plan the
dispatcher carries out (the chosen model's endpoints first, then fallback models).

A session's budget is the `budget_usd` it last passed (or the configured default); its spend is kept
in the store's `sessions` row, updated with each recorded step. A budgeted call reserves its
worst-case cost in the store before it runs, in a write transaction that checks the remainder
(spend plus every unexpired reservation, from any process sharing the store): two concurrent turns,
on one replica or several, cannot both spend one remainder. The reservation ends in the transaction
that records the call and its cost. Calls without a budget reserve nothing and cost no query.
"""

from __future__ import annotations

import secrets
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from functools import partial

import anyio

from mcp_router.routing.mtrouter.router import ModelDecision, ModelRouter, NoModelAdmissible
from mcp_router.serving.errors import BudgetExhausted
from mcp_router.serving.recent import Recent
from mcp_router.store import GroupWriter, StepRecord, Store
from mcp_router.store.model_log import ModelLog
from providers.types import CompletionRequest

SESSIONS_REMEMBERED = 10_000
CHECKPOINT_POLL_S = 2.0  # how soon a checkpoint promoted by `mcp-router train` is served
RESERVE_TRIES = 3  # decisions re-taken when other calls of the session took the remainder meanwhile


@dataclass
class SessionState:
    budget_usd: float | None  # the last budget the session was given (its effective budget)
    spent_usd: float
    last_model: str | None


@dataclass(frozen=True)
class BudgetPolicy:
    """The operator's budgets per session: a default for calls that name none, and a cap that a
    call's `budget_usd` may lower but never raise."""

    default_usd: float | None = None
    max_usd: float | None = None

    def effective(self, requested: float | None, current: float | None) -> float | None:
        budget = requested if requested is not None else current if current is not None else self.default_usd
        if self.max_usd is not None:
            budget = self.max_usd if budget is None else min(budget, self.max_usd)
        return budget


@dataclass(frozen=True)
class Plan:
    """Endpoints to try in order, each with its own request (max_tokens clamped to its model's
    allowance), and the step record the dispatcher completes once the call is served. `settle`
    tells the planner what the recorded call cost."""

    first: list[str]  # the chosen model's endpoints: LQM-ContextRoute orders these
    fallbacks: list[str]  # endpoints of the fallback models, in model order (the router orders each model's)
    requests: dict[str, CompletionRequest]
    model_of: dict[str, str]
    cost_bound: dict[str, float]  # per endpoint: the most its call may cost (its model's worst case)
    step: StepRecord
    remaining_usd: float | None
    settle: Callable[[float, str | None], None] = lambda cost_usd, served_model: None


class Planner:
    def __init__(
        self,
        router: ModelRouter,
        log: ModelLog,
        budgets: BudgetPolicy,
        writer: GroupWriter,
        reservation_ttl_s: float = 300.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.router = router
        self.log = log
        self.budgets = budgets
        self.writer = writer
        self.reservation_ttl_s = reservation_ttl_s  # a crashed process's reservation lapses after this
        self.clock = clock
        self._reserved: defaultdict[str, float] = defaultdict(float)  # this process's, for a first guess
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
        budget = state.budget_usd
        messages = [{"role": m.role, "content": m.content} for m in request.messages]
        remaining = None if budget is None else budget - state.spent_usd - self._reserved.get(session, 0.0)
        reservation_id: int | None = None
        for _ in range(RESERVE_TRIES):
            decision = await self._decide(messages, request, remaining, task, state)
            reservation = _worst_case(decision)
            if budget is None or session_id is None:
                # a call without a session is its own: no other call, here or in another process,
                # can spend from its budget while it runs, so the decision's admission is the whole
                # check and there is nothing to reserve (a commit saved on the call path)
                break
            reserve = partial(
                Store.reserve,
                session_id=session,
                budget_usd=budget,
                amount_usd=reservation,
                now=self.clock(),
                ttl_s=self.reservation_ttl_s,
            )
            reservation_id, spent, held = await self.writer.submit(reserve)
            state.spent_usd = spent
            if reservation_id is not None:
                break
            remaining = budget - spent - held  # other turns (here or in another process) hold the rest
        else:
            raise BudgetExhausted(
                f"the session's other calls in flight hold what is left of its budget (spent "
                f"${state.spent_usd:.6f} of ${budget:.6f}); retry when they finish, or raise budget_usd"
            )
        self._reserved[session] += reservation
        recorded = False  # the call's record (which ends the reservation) was written

        def settle(cost_usd: float, served_model: str | None) -> None:
            nonlocal recorded
            recorded = True
            state.spent_usd += cost_usd
            state.budget_usd = budget
            if served_model is not None:
                state.last_model = served_model

        plan = self._plan(request, decision, session, budget, state.spent_usd, remaining, messages, settle)
        plan = replace(plan, step=replace(plan.step, reservation_id=reservation_id))
        try:
            yield plan
        finally:
            self._reserved[session] -= reservation
            if self._reserved[session] <= 1e-15:
                del self._reserved[session]
            if reservation_id is not None and not recorded:  # the call never ran: free its budget now
                with anyio.CancelScope(shield=True):
                    await self.writer.submit(partial(Store.release, reservation_id=reservation_id))

    async def _decide(
        self,
        messages: list[dict[str, str]],
        request: CompletionRequest,
        remaining: float | None,
        task: str | None,
        state: SessionState,
    ) -> ModelDecision:
        def decide() -> ModelDecision:
            return self.router.decide(messages, request.max_tokens, remaining, task, state.last_model)

        try:
            if self.router.embeds:  # a checkpoint embeds the history: milliseconds, in a thread
                return await anyio.to_thread.run_sync(decide)
            return decide()
        except NoModelAdmissible as exc:
            budget = state.budget_usd
            detail = "" if budget is None else f" (session spent ${state.spent_usd:.6f} of ${budget:.6f})"
            raise BudgetExhausted(
                f"no model can serve this call{detail}: {exc}. Raise budget_usd, shorten the "
                "conversation, lower max_tokens, or start a new session"
            ) from None

    async def _session(self, session_id: str | None, budget_usd: float | None) -> SessionState:
        if session_id is None:
            return SessionState(self.budgets.effective(budget_usd, None), 0.0, None)
        state = self._sessions.get(session_id)
        if state is None:
            loaded = await anyio.to_thread.run_sync(self._load_session, session_id)
            state = self._sessions.setdefault(session_id, loaded)
        state.budget_usd = self.budgets.effective(budget_usd, state.budget_usd)
        return state

    def _load_session(self, session_id: str) -> SessionState:
        row = self.log.store.session(session_id) or {}
        return SessionState(row.get("budget_usd"), float(row.get("spent_usd") or 0.0), row.get("last_model"))

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
        step = decision_step(decision, session, messages, self.router.params.lam, budget, spent)
        return Plan(
            cost_bound={e: allowed[m].est_cost_usd for e, m in model_of.items()},
            first=first,
            fallbacks=[e for e in model_of if e not in first],
            requests=requests,
            model_of=model_of,
            step=step,
            remaining_usd=remaining,
            settle=settle,
        )


def decision_step(
    decision: ModelDecision,
    session: str,
    messages: list[dict[str, str]],
    lam: float,
    budget: float | None,
    spent: float,
) -> StepRecord:
    """The step a decision is logged as, before its call has run (the served model and tokens are
    filled in when it has): what `train --from-db` and `eval --from-db` later read, propensity and all."""
    allowed = decision.admission.allowed[decision.model]
    return StepRecord(
        session_id=session,
        turn=decision.turn,
        chosen_model=decision.model,
        propensity=decision.propensity,
        policy=decision.policy,
        stage=decision.stage,
        checkpoint_id=decision.checkpoint_id,
        lam=lam,
        q_values=decision.q_values,
        excluded=decision.admission.excluded,
        history=messages,
        task=decision.task,
        obs_rules=decision.obs_rules,
        budget_usd=budget,
        spent_before_usd=spent,
        est_cost_usd=allowed.est_cost_usd,
        max_tokens=allowed.max_tokens,
    )


def _worst_case(decision: ModelDecision) -> float:
    """What a call may cost at most: the dearest admitted model at its clamped max_tokens. A call in
    flight reserves this much of its session's budget."""
    return max(a.est_cost_usd for a in decision.admission.allowed.values())
