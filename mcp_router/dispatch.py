"""The path of one call: rank the arms, call with a timeout, fall back on failure, record everything.

The dispatcher owns the runtime facts the router does not: which arms are cooling down after a
rate limit, the per-arm and per-call deadlines, and the bound on fallbacks. Whatever happens, the
call and each of its attempts are written to the store before the tool answers.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import anyio

from mcp_router.routing import Outcome, RouteContext, Router
from mcp_router.store import AttemptRecord, CallRecord, Store
from providers import Adapter, ProviderError, RateLimited

log = logging.getLogger("mcp_router.dispatch")
DEFAULT_COOLDOWN_S = 30.0
AttemptHook = Callable[[str, int], Awaitable[None]]


@dataclass
class Arm:
    """One provider as the dispatcher sees it: the adapter plus its runtime guard state."""

    adapter: Adapter
    timeout_s: float
    cooldown_until: float = 0.0  # monotonic; set from Retry-After
    inflight: int = 0

    @property
    def name(self) -> str:
        return self.adapter.name

    def cooling(self, now: float) -> bool:
        return self.cooldown_until > now


@dataclass
class ToolRoute:
    tool: str
    arms: dict[str, Arm]
    router: Router
    max_attempts: int
    deadline_s: float
    disabled: dict[str, str] = field(default_factory=dict)  # configured but not serving: name -> why


@dataclass(frozen=True)
class Served:
    call_id: str
    provider: str
    result: Any
    latency_s: float
    attempts: list[AttemptRecord]


class DispatchError(Exception):
    """The call could not be served; the message says why in terms a user can act on."""


class NoProviders(DispatchError):
    def __init__(self, route: ToolRoute) -> None:
        reasons = "; ".join(f"{name}: {why}" for name, why in route.disabled.items())
        super().__init__(f"no provider is enabled for `{route.tool}`" + (f" ({reasons})" if reasons else ""))


class AllProvidersFailed(DispatchError):
    def __init__(self, tool: str, call_id: str, attempts: list[AttemptRecord]) -> None:
        detail = (
            "; ".join(f"{a.provider}: {a.status} ({a.error})" for a in attempts)
            or "no attempt fitted the deadline"
        )
        super().__init__(f"every `{tool}` provider failed (call {call_id}): {detail}")
        self.call_id = call_id
        self.attempts = attempts


def new_call_id() -> str:
    return "call_" + secrets.token_hex(8)


class Dispatcher:
    def __init__(self, routes: dict[str, ToolRoute], store: Store) -> None:
        self.routes = routes
        self.store = store
        for tool, route in routes.items():
            route.router.restore(store.tool_call_count(tool), store.arm_states(tool))

    async def run(
        self,
        tool: str,
        request: Any,
        context: RouteContext,
        summary: dict[str, Any],
        on_attempt: AttemptHook | None = None,
    ) -> Served:
        route = self.routes[tool]
        if not route.arms:
            raise NoProviders(route)
        started = time.monotonic()
        eligible = [name for name, arm in route.arms.items() if not arm.cooling(started)]
        forced = not eligible
        decision = route.router.rank(eligible or list(route.arms), context)
        call_id = new_call_id()
        attempts: list[AttemptRecord] = []
        served: Any = None
        try:
            for n, name in enumerate(decision.order[: route.max_attempts], start=1):
                remaining = route.deadline_s - (time.monotonic() - started)
                if remaining <= 0.05:
                    break
                if on_attempt is not None:
                    await on_attempt(name, n)
                attempt, result = await self._attempt(
                    route.arms[name], request, min(route.arms[name].timeout_s, remaining)
                )
                attempts.append(attempt)
                route.router.observe(Outcome(arm=name, status=attempt.status, latency_s=attempt.latency_s))
                if attempt.status == "ok":
                    served = result
                    break
        finally:
            record = CallRecord(
                call_id=call_id,
                tool=tool,
                router=route.router.name,
                ts=time.time(),
                request=summary,
                attempts=attempts,
                decision={
                    "order": decision.order,
                    "scores": decision.scores,
                    "forced": forced,
                    "cooling": sorted(set(route.arms) - set(eligible)),
                },
            )
            with anyio.CancelScope(shield=True):  # a cancelled call is still recorded
                await anyio.to_thread.run_sync(self.store.record_call, record)
        if record.served_by is None:
            raise AllProvidersFailed(tool, call_id, attempts)
        return Served(
            call_id=call_id,
            provider=record.served_by,
            result=served,
            latency_s=record.latency_s,
            attempts=attempts,
        )

    async def _attempt(self, arm: Arm, request: Any, timeout: float) -> tuple[AttemptRecord, Any]:
        t0 = time.monotonic()
        status, error, result = "ok", None, None
        arm.inflight += 1
        try:
            with anyio.move_on_after(timeout) as scope:
                result = await arm.adapter.call(request)
            if scope.cancelled_caught:
                status, error = "timeout", f"no answer within {timeout:.1f} s"
        except RateLimited as exc:
            status, error = exc.kind, exc.message
            arm.cooldown_until = time.monotonic() + (exc.retry_after or DEFAULT_COOLDOWN_S)
        except ProviderError as exc:
            status, error = exc.kind, exc.message
        except Exception as exc:  # an adapter bug must not take the tool down; the arm takes the blame
            log.exception("adapter %s raised an unexpected error", arm.name)
            status, error = "bad_response", f"internal adapter error ({type(exc).__name__})"
        finally:
            arm.inflight -= 1
        latency = time.monotonic() - t0
        log.info("attempt %s -> %s in %.3f s%s", arm.name, status, latency, f": {error}" if error else "")
        return AttemptRecord(provider=arm.name, status=status, latency_s=latency, error=error), result
