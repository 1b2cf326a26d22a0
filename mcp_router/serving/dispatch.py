"""The path of one call: featurise, let the router rank the arms, call with a timeout, fall back on
failure, feed every outcome back to the router, and record everything.

Whatever happens, the call and each attempt are committed to the store before the tool answers, with
the timestamps the router saw; the router learns from them once they are committed, as numbered
events (`learning.Learning`), so every process sharing the store, and a restart, rebuilds exactly
the state that made the decisions. Records go through the store's single writer
(group commit); featurising and ranking take microseconds and run on the event loop, not in a thread.
"""

from __future__ import annotations

import itertools
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import anyio
import numpy as np

from mcp_router.feedback import implicit
from mcp_router.feedback.inputs import judge_input
from mcp_router.feedback.judge import JudgeInput, judge_messages, parse_verdict
from mcp_router.feedback.queue import JudgeQueue
from mcp_router.routing import Decision, RouteContext, Router
from mcp_router.routing.features import Featurizer
from mcp_router.serving.errors import DispatchError
from mcp_router.serving.learning import Learning
from mcp_router.serving.recent import Recent
from mcp_router.store import AttemptRecord, CallRecord, GroupWriter, QualityObs, StepRecord, Store
from providers import Adapter, ProviderError, RateLimited
from providers.types import CompletionRequest

if TYPE_CHECKING:
    from mcp_router.config import CollectionEntry
    from mcp_router.serving.planner import Plan

log = logging.getLogger("mcp_router.dispatch")
LOADING_WAIT_S = 2.0  # with every arm still loading, a call waits this long for the first to be ready
SESSIONS_REMEMBERED = 10_000  # the last llm_complete call per session, for implicit feedback
AttemptHook = Callable[[str, int], Awaitable[None]]
Clock = Callable[[], float]


@dataclass
class Arm:
    """One provider as the dispatcher sees it: the adapter, its timeout and its live in-flight count."""

    adapter: Adapter
    timeout_s: float
    inflight: int = 0
    warmed: bool = False  # its start-up `prepare` (model load, index build) has finished

    @property
    def name(self) -> str:
        return self.adapter.name

    @property
    def busy(self) -> int:
        """Calls in flight, or more while work a cancelled call left behind still occupies the
        provider (the adapter's `running` counts the threads of calls in flight too: the larger wins)."""
        return max(self.inflight, self.adapter.running)


@dataclass
class ToolRoute:
    tool: str
    arms: dict[str, Arm]
    router: Router
    max_attempts: int
    deadline_s: float
    disabled: dict[str, str] = field(default_factory=dict)  # configured but not serving: name -> why
    collections: Mapping[str, CollectionEntry] = field(default_factory=dict)  # retrieve's catalogue


@dataclass(frozen=True)
class Served:
    call_id: str
    provider: str
    result: Any
    latency_s: float
    attempts: list[AttemptRecord]
    cost_usd: float = 0.0  # what the call was charged (see `charged_cost`)


class NoProviders(DispatchError):
    def __init__(self, route: ToolRoute) -> None:
        reasons = "; ".join(f"{name}: {why}" for name, why in route.disabled.items())
        super().__init__(f"no provider is enabled for `{route.tool}`" + (f" ({reasons})" if reasons else ""))


class NotServed(DispatchError):
    """Every enabled arm of the tool declines the request (none serves its collection)."""

    def __init__(self, route: ToolRoute, excluded: dict[str, str]) -> None:
        reasons = "; ".join(f"{name}: {why}" for name, why in {**excluded, **route.disabled}.items())
        super().__init__(f"no enabled `{route.tool}` provider serves this request ({reasons})")


class AllProvidersFailed(DispatchError):
    def __init__(self, tool: str, call_id: str, attempts: list[AttemptRecord]) -> None:
        detail = "; ".join(f"{a.provider}: {a.status} ({a.error})" for a in attempts)
        super().__init__(
            f"every `{tool}` provider failed (call {call_id}): {detail or 'no attempt fitted the deadline'}"
        )
        self.call_id = call_id
        self.attempts = attempts


@dataclass(frozen=True)
class JudgeSetup:
    """The judge: an llm_complete arm (shared with that tool, so in-flight counts are shared too)."""

    arm: Arm
    max_tokens: int = 48
    queue_size: int = 32
    timeout_s: float = 30.0


@dataclass(frozen=True)
class JudgeJob:
    """One sampled call to grade. `origin` is the serving layer's handle on the client session that
    carried the call (for a judge that asks the client's own model); opaque here, None when unused."""

    call_id: str
    input: JudgeInput
    origin: object | None = None


def new_call_id() -> str:
    return "call_" + secrets.token_hex(8)


def _decision_record(decision: Decision) -> dict[str, Any]:
    return {
        "policy": decision.policy,
        "order": decision.order,
        "scores": decision.scores,
        "excluded": decision.excluded,
        "sample_quality": decision.sample_quality,
    }


def not_served(arms: Mapping[str, Arm], request: Any) -> dict[str, str]:
    """The arms that cannot answer `request` at all (a retrieve arm of other collections), with why."""
    what = f"collection {request.collection!r}" if hasattr(request, "collection") else "this request"
    return {name: f"does not serve {what}" for name, arm in arms.items() if not arm.adapter.serves(request)}


def attempt_order(
    router: Router, decision: Decision, plan: Plan | None, context: RouteContext
) -> Iterator[str]:
    """The arms to try, in order: the decision's, then (with a plan) the fallback models' endpoints.
    Those are ranked only once the chosen model's endpoints are used up, so the call whose first
    attempt succeeds, nearly every call, never scores them (an LQM pass over the other models)."""
    yield from decision.order
    if plan is not None:
        yield from fallback_order(router, plan, context)


def fallback_order(router: Router, plan: Plan, context: RouteContext) -> list[str]:
    """The fallback models' endpoints: model by model in the plan's order, each model's endpoints
    ranked by the router's current scores (as the chosen model's are), not in config order."""
    by_model: dict[str, list[str]] = {}
    for endpoint in plan.fallbacks:
        by_model.setdefault(plan.model_of[endpoint], []).append(endpoint)
    return [e for endpoints in by_model.values() for e in router.order_fallbacks(endpoints, context)]


def _completed_step(plan: Plan | None, attempts: list[AttemptRecord], served: Any) -> StepRecord | None:
    """The plan's step record with what actually happened: which model served, and its tokens."""
    if plan is None:
        return None
    if served is None:
        return plan.step
    return replace(
        plan.step,
        served_model=plan.model_of[attempts[-1].provider],
        prompt_tokens=served.usage.prompt_tokens,
        completion_tokens=served.usage.completion_tokens,
    )


# Failures a provider may bill: the request reached it and it may have generated (a timeout, an answer
# that did not parse). Refusals before any work (429, 5xx, 4xx, connection errors) are not billed.
BILLED_FAILURES = frozenset({"timeout", "bad_response"})


def charged_cost(plan: Plan | None, attempts: list[AttemptRecord], served: Any) -> float:
    """What the call is charged: the served reply's cost from its usage, or its model's worst case when
    the reply reported no usage; plus the worst case of every failed attempt the provider may bill.
    Without a plan (no budgets), just the reply's own cost."""
    cost = float(getattr(served, "cost_usd", 0.0) or 0.0)
    if plan is None:
        return cost
    if served is not None and not served.usage.prompt_tokens:  # no prompt is free: usage was missing
        cost = plan.cost_bound[attempts[-1].provider]
        log.warning("%s replied without usage: charged its worst case $%.6f", attempts[-1].provider, cost)
    billed = [a for a in attempts if a.status in BILLED_FAILURES]
    return cost + sum(plan.cost_bound[a.provider] for a in billed)


class Dispatcher:
    def __init__(
        self,
        routes: dict[str, ToolRoute],
        store: Store,
        featurizer: Featurizer | None = None,
        clock: Clock = time.time,
        judge: JudgeSetup | None = None,
        writer: GroupWriter | None = None,
    ) -> None:
        self.routes = routes
        self.store = store
        self.writer = writer or GroupWriter(store)
        self.featurizer = featurizer
        self.clock = clock
        self.judge = judge
        self.judge_queue = (
            JudgeQueue(self.judge_with_llm, judge.queue_size, judge.timeout_s) if judge else None
        )
        # session -> (call_id, status, last user message) of its newest llm_complete call in this process
        self._last_turn: Recent[str, tuple[str, str, str]] = Recent(SESSIONS_REMEMBERED)
        self.learning = Learning(
            store,
            {tool: route.router for tool, route in routes.items()},
            featurizer.version if featurizer else None,
            clock,
        )
        self.learning.restore()

    def close(self) -> None:
        """Commit what the writer holds and stop it (before the store closes); snapshot the routers."""
        self.writer.close()
        self.learning.save_snapshot()

    def features(self, router: Router, text: str) -> np.ndarray | None:
        if not router.uses_features or self.featurizer is None:
            return None
        return self.featurizer(text)

    async def run(
        self,
        tool: str,
        request: Any,
        text: str,
        summary: dict[str, Any],
        on_attempt: AttemptHook | None = None,
        plan: Plan | None = None,
        origin: object | None = None,
    ) -> Served:
        """Serve one call. With a `plan` (llm_complete under MTRouter) the router decides among the
        chosen model's endpoints; the fallback models' endpoints follow, model by model, each model's
        ranked by the router's scores; each endpoint gets its own request. `origin` rides along to
        the call's judge job (see `JudgeJob`)."""
        route = self.routes[tool]
        if not route.arms:
            raise NoProviders(route)
        router = route.router
        x = self.features(router, text)
        started = time.monotonic()
        inflight = {name: arm.busy for name, arm in route.arms.items()}
        context = RouteContext(tool=tool, text=text, now=self.clock(), x=x, inflight=inflight)
        unserved = not_served(route.arms, request)
        if len(unserved) == len(route.arms):
            raise NotServed(route, unserved)
        exclude = [a for a in route.arms if a not in plan.first] if plan else []
        exclude += [a for a in unserved if a not in exclude]
        loading = await self._still_loading(route, request, exclude, started)
        decision = router.rank(context, exclude=[*exclude, *loading])
        decision.excluded.update(unserved)
        for name in loading:
            decision.excluded[name] = "loading its model or index"
        call_id = new_call_id()
        attempts: list[AttemptRecord] = []
        failures: list[QualityObs] = []
        served: Any = None
        try:
            order = attempt_order(router, decision, plan, context)
            for n, name in enumerate(itertools.islice(order, route.max_attempts), start=1):
                remaining = route.deadline_s - (time.monotonic() - started)
                if remaining <= 0.05:
                    break
                if on_attempt is not None:
                    await on_attempt(name, n)
                arm = route.arms[name]
                arm_request = plan.requests[name] if plan else request
                attempt, result = await self._attempt(arm, arm_request, min(arm.timeout_s, remaining))
                attempts.append(attempt)
                if attempt.status == "ok":
                    served = result
                    break
                if decision.sample_quality:  # a sampled failure is a quality observation of 0
                    failures.append(QualityObs(tool, name, call_id, attempt.ts_done, x, 0.0, "failure"))
        finally:
            if decision.order and all(a.provider != decision.order[0] for a in attempts):
                router.guards.abandoned(decision.order[0])  # cancelled before its first attempt ended
            record = CallRecord(
                call_id=call_id,
                tool=tool,
                router=router.name,
                ts=self.clock(),
                request=summary,
                attempts=attempts,
                decision=_decision_record(decision),
                x=x,
                feat_version=self.featurizer.version if x is not None and self.featurizer else None,
                sampled=decision.sample_quality,
                failure_obs=failures,
                session_id=summary.get("session_id"),
                scope=summary.get("collection"),
                cost_usd=charged_cost(plan, attempts, served),
                step=_completed_step(plan, attempts, served),
            )
            with anyio.CancelScope(shield=True):  # a cancelled call is still recorded
                events = await self.writer.submit(
                    lambda db: Store.write_call(db, record, self.learning.origin)
                )
            self.learning.deliver(events)  # the router learns the outcome once it is committed
            self._remember_turn(record)
            if plan is not None:
                plan.settle(record.cost_usd, record.step.served_model if record.step else None)
        log.info(
            "%s %s: %s in %.1f ms after %d attempt(s)",
            tool,
            call_id,
            record.served_by or "failed",
            1000 * (time.monotonic() - started),
            len(attempts),
        )
        if record.served_by is None:
            raise AllProvidersFailed(tool, call_id, attempts)
        if decision.sample_quality:
            await self._sample_quality(tool, call_id, request, served, origin)
        return Served(
            call_id=call_id,
            provider=record.served_by,
            result=served,
            latency_s=record.latency_s,
            attempts=attempts,
            cost_usd=record.cost_usd,
        )

    async def _still_loading(
        self, route: ToolRoute, request: Any, exclude: list[str], started: float
    ) -> list[str]:
        """The candidate arms not ready yet (a model or an index still loading): they are passed over.
        When none is ready, wait for the first that is, up to `LOADING_WAIT_S` (and half the call's
        deadline); if none is by then, all are tried anyway, and each says why it cannot serve (or
        loads its model inline, as a lone local model does)."""
        candidates = [a for a in route.arms if a not in exclude]
        give_up = started + min(LOADING_WAIT_S, route.deadline_s / 2)
        while True:
            loading = [a for a in candidates if not route.arms[a].adapter.ready(request)]
            if len(loading) < len(candidates):
                return loading
            if time.monotonic() >= give_up:
                return []
            await anyio.sleep(0.02)

    async def _attempt(self, arm: Arm, request: Any, timeout: float) -> tuple[AttemptRecord, Any]:
        t0 = time.monotonic()
        status, error, result, retry_after = "ok", None, None, None
        arm.inflight += 1
        try:
            with anyio.move_on_after(timeout) as scope:
                result = await arm.adapter.call(request)
            if scope.cancelled_caught:
                status, error = "timeout", f"no answer within {timeout:.1f} s"
        except RateLimited as exc:
            status, error, retry_after = exc.kind, exc.message, exc.retry_after
        except ProviderError as exc:
            status, error = exc.kind, exc.message
        except Exception as exc:  # an adapter bug must not take the tool down; the arm takes the blame
            log.exception("adapter %s raised an unexpected error", arm.name)
            status, error = "bad_response", f"internal adapter error ({type(exc).__name__})"
        finally:
            arm.inflight -= 1
        latency = time.monotonic() - t0
        log.debug("attempt %s -> %s in %.3f s%s", arm.name, status, latency, f": {error}" if error else "")
        record = AttemptRecord(
            arm.name, status, latency, error, ts_done=self.clock(), retry_after=retry_after
        )
        return record, result

    # -- quality signals -------------------------------------------------------------------------

    async def _sample_quality(
        self, tool: str, call_id: str, request: Any, result: Any, origin: object | None
    ) -> None:
        """A sampled success: an empty list is judged implicitly at once; anything else is queued for
        the judge, which never delays the answer."""
        item = judge_input(tool, request, result)
        if item is None:
            await self.signal(call_id, implicit.EMPTY_RESULT, "implicit")
        elif self.judge_queue is not None:
            self.judge_queue.submit(JudgeJob(call_id, item, origin), call_id)

    def judge_with(
        self, runner: Callable[[JudgeJob], Awaitable[None]], queue_size: int, timeout_s: float
    ) -> None:
        """Grade sampled calls with `runner` (the local judge, which may hand jobs on to
        `judge_with_llm`) on a queue of its own, off the call path as the LLM judge's is."""
        self.judge_queue = JudgeQueue(runner, queue_size, timeout_s)

    async def signal(
        self, call_id: str, reward: float, source: str, cost_usd: float = 0.0
    ) -> QualityObs | None:
        """One quality signal for a served call (judge, implicit): stored, then fed to the router."""
        now = self.clock()
        origin = self.learning.origin
        obs, events = await self.writer.submit(
            lambda db: self.store.write_signal(db, call_id, reward, source, now, cost_usd, origin)
        )
        self.learning.deliver(events)
        return obs

    async def judge_with_llm(self, job: JudgeJob) -> None:
        """Grade one call with the judge model; its call is recorded under the tool `judge`, with its cost."""
        assert self.judge is not None
        arm = self.judge.arm
        request = CompletionRequest(
            messages=tuple(judge_messages(job.input)), max_tokens=self.judge.max_tokens, temperature=0.0
        )
        attempt, completion = await self._attempt(arm, request, arm.timeout_s)
        cost = float(completion.cost_usd) if completion is not None else 0.0
        await self.record_judge_call(job, attempt, cost)
        if attempt.status != "ok":
            log.warning("judge %s failed on %s: %s", arm.name, job.call_id, attempt.error)
            return
        reward = parse_verdict(job.input, completion.text)
        if reward is None:
            log.info("judge output for %s did not parse; dropped, not guessed", job.call_id)
            return
        await self.signal(job.call_id, reward, "judge", cost)

    async def record_judge_call(
        self, job: JudgeJob, attempt: AttemptRecord, cost_usd: float = 0.0, **details: Any
    ) -> None:
        """Record one judging of `job` as a call of the tool `judge` (apart from the tools' own
        statistics): which judge, its status and wall time, its cost to us, and `details` (e.g. the
        judge's version)."""
        record = CallRecord(
            call_id=new_call_id(),
            tool="judge",
            router="judge",
            ts=self.clock(),
            request={"judged_call": job.call_id, "tool": job.input.tool, **details},
            attempts=[attempt],
            cost_usd=cost_usd,
        )
        with anyio.CancelScope(shield=True):  # a judging the queue's timeout cuts short is still recorded
            await self.writer.submit(lambda db: Store.write_call(db, record))

    def _remember_turn(self, record: CallRecord) -> None:
        if record.tool != "llm_complete" or not record.session_id:
            return
        status = "ok" if record.served_by else "failed"
        self._last_turn.put(record.session_id, (record.call_id, status, record.request.get("last_user", "")))

    async def session_turn(self, session_id: str, last_user: str) -> None:
        """Implicit feedback on the session's previous answer from the user's next message. The
        previous turn is remembered in memory; only a session this process has not served is looked up."""
        previous = self._last_turn.get(session_id)
        if previous is None:
            row = await anyio.to_thread.run_sync(self.store.last_session_call, session_id, self.clock())
            if row is None:
                return
            previous = (row["call_id"], row["status"], row["request"].get("last_user", ""))
        call_id, status, previous_user = previous
        if status != "ok":
            return
        signal = implicit.session_signal(previous_user, last_user)
        if signal is not None:
            log.info("implicit signal for %s: %s", call_id, signal[1])
            await self.signal(call_id, signal[0], "implicit")

    async def feedback(self, call_id: str, score: float, comment: str | None) -> QualityObs:
        """Explicit feedback: stored with the call's features, learned by its tool's router, and
        replacing any judge or implicit signal of that call."""
        now = self.clock()
        origin = self.learning.origin
        obs, _, events = await self.writer.submit(
            lambda db: self.store.write_feedback(db, call_id, score, "explicit", now, comment, origin)
        )
        self.learning.deliver(events)
        return obs
