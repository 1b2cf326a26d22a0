"""A discrete-event simulation of routed calls against arms of finite capacity.

Calls arrive as a Poisson stream in simulated time (rate from the service model). The policy
ranks the arms for each arrival and the call goes to its first choice. Each arm has `capacity`
slots; a call holds one slot for its sampled service time, and waits in the arm's FIFO queue
while all slots are busy, so the in-flight counts the policy sees (queued + in service) are
real. A call whose latency (queue wait + service) exceeds `timeout_s` times out: the client
gives up at `arrival + timeout_s` and the policy hears "timeout" then, but the server never
learns of it, so the call keeps its place in the queue and holds its slot until its service
ends. Quality feedback is a simulated judge (`feedback.simulated.SimulatedJudge`): gold + N(0, σ),
clipped to [0, 1]; failed and timed-out calls get reward 0.

Randomness is fixed per seed and shared across policies as far as routing allows (common random
numbers): the arrival times and the judge's noise per step, and one service-time stream per arm
(the k-th call on an arm draws the k-th value of that arm's stream).
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from mcp_router.bench.service import ServiceModel
from mcp_router.feedback.simulated import SimulatedJudge
from mcp_router.routing.base import Outcome, RouteContext

OK, UNAVAILABLE, TIMEOUT = 0, 1, 2
STATUS_NAMES = ("ok", "unavailable", "timeout")

_END, _DEADLINE = 0, 1  # event kinds; at equal times a service end is seen before the deadline


@dataclass
class Records:
    """One row per call, in arrival order (struct of arrays)."""

    arms: list[str]
    query: np.ndarray  # query index
    arm: np.ndarray  # index into `arms`
    t: np.ndarray  # arrival time (simulated seconds)
    wait: np.ndarray  # queue wait before service started
    service: np.ndarray  # service time drawn (the slot is held this long)
    latency: np.ndarray  # what the client saw: wait + service, or timeout_s on a timeout
    quality: np.ndarray  # gold quality of the served call; 0 on failure or timeout
    reward: np.ndarray  # the judge's reward handed to the policy
    status: np.ndarray  # OK | UNAVAILABLE | TIMEOUT
    t_done: np.ndarray  # when the policy heard the outcome (end of service, or the deadline)
    inflight: np.ndarray  # (calls, arms): in-flight counts the policy saw at the decision

    def __len__(self) -> int:
        return len(self.query)

    def status_name(self, i: int) -> str:
        return STATUS_NAMES[int(self.status[i])]


def sample_queries(n_queries: int, steps: int, seed: int) -> np.ndarray:
    """The stream's queries: uniform with replacement, fixed by the seed (the same for every policy)."""
    return np.random.default_rng([seed, 10]).integers(0, n_queries, size=steps)


def arrival_times(service: ServiceModel, steps: int, seed: int) -> np.ndarray:
    """Poisson arrivals whose rate follows the stream's progress (step index / steps)."""
    rng = np.random.default_rng([seed, 11])
    gaps = rng.standard_exponential(steps)
    rates = np.array([service.arrival_rate(i / steps) for i in range(steps)], dtype=float)
    return np.cumsum(gaps / rates)


def simulate(
    service: ServiceModel,
    policy: Any,
    queries: Sequence[int] | np.ndarray,
    texts: Sequence[str],
    X: np.ndarray | None,
    gold: np.ndarray,
    *,
    l_ref_s: float,
    timeout_s: float,
    judge_noise: float,
    seed: int,
    tool: str = "retrieve",
    arrivals: np.ndarray | None = None,
    judged: np.ndarray | None = None,
) -> Records:
    """Run one policy over one stream. `policy` is a Router (rank / observe / observe_quality) or a
    benchmark policy; one that defines `see_query(q)` is told the query index before ranking (the
    gold policies read it). `gold[q, a]` in [0, 1] is arm a's true quality on query q. `l_ref_s` is
    carried for the caller's metrics; the simulator itself needs only `timeout_s`. With `judged`, a
    real judge's reward `judged[q, a]` is what the policy learns from instead of the simulated judge's
    gold + noise (`judge_noise` is then unused); quality is still measured on `gold`."""
    del l_ref_s
    arms = list(service.arms)
    index = {arm: a for a, arm in enumerate(arms)}
    n_arms = len(arms)
    queries = np.asarray(queries, dtype=np.int64)
    steps = len(queries)
    arrive = arrival_times(service, steps, seed) if arrivals is None else np.asarray(arrivals, dtype=float)
    judge = SimulatedJudge(judge_noise, np.random.default_rng([seed, 12]), steps=steps)
    arm_rngs = [np.random.default_rng([seed, 13, a]) for a in range(n_arms)]
    see_query = getattr(policy, "see_query", None)

    arm = np.full(steps, -1, dtype=np.int64)
    start = np.full(steps, math.nan)
    end = np.full(steps, math.nan)
    failed = np.zeros(steps, dtype=bool)
    latency = np.zeros(steps)
    quality = np.zeros(steps)
    reward = np.zeros(steps)
    status = np.zeros(steps, dtype=np.int8)
    t_done = np.zeros(steps)
    seen = np.zeros((steps, n_arms), dtype=np.int32)
    done = np.zeros(steps, dtype=bool)  # service has ended

    busy = [0] * n_arms
    inflight = [0] * n_arms  # queued + in service, timed-out calls included (they are still in the system)
    queues: list[deque[int]] = [deque() for _ in range(n_arms)]
    events: list[tuple[float, int, int]] = []  # (time, kind, call)
    progress = 0.0

    def begin(i: int, now: float) -> None:
        a = int(arm[i])
        busy[a] += 1
        seconds, fail = service.service_time(arms[a], int(queries[i]), arm_rngs[a], progress)
        start[i] = now
        end[i] = now + float(seconds)
        failed[i] = bool(fail)
        heapq.heappush(events, (end[i], _END, i))

    def fill(a: int, now: float) -> None:
        queue = queues[a]
        while queue and busy[a] < service.capacity(arms[a], progress):
            begin(queue.popleft(), now)

    def report(i: int, now: float, code: int, seconds: float) -> None:
        a, q = int(arm[i]), int(queries[i])
        if code == OK:
            quality[i] = gold[q, a]
            reward[i] = judge.grade(gold[q, a], step=i) if judged is None else judged[q, a]
        status[i], latency[i], t_done[i] = code, seconds, now
        policy.observe(Outcome(arms[a], STATUS_NAMES[code], seconds, now=now))
        policy.observe_quality(arms[a], None if X is None else X[q], float(reward[i]), now)

    def advance(until: float) -> None:
        while events and events[0][0] <= until:
            now, kind, i = heapq.heappop(events)
            a = int(arm[i])
            if kind == _END:
                done[i] = True
                busy[a] -= 1
                inflight[a] -= 1
                if now - arrive[i] <= timeout_s:
                    report(i, now, UNAVAILABLE if failed[i] else OK, now - arrive[i])
                fill(a, now)
            elif not done[i]:  # the deadline passed before the service ended
                report(i, now, TIMEOUT, timeout_s)

    for i in range(steps):
        now = float(arrive[i])
        advance(now)
        progress = i / steps
        for a in range(n_arms):  # capacity may have grown with progress
            if queues[a]:
                fill(a, now)
        q = int(queries[i])
        seen[i] = inflight
        context = RouteContext(
            tool=tool,
            text=texts[q],
            now=now,
            x=None if X is None else X[q],
            inflight={name: inflight[a] for a, name in enumerate(arms)},
        )
        if see_query is not None:
            see_query(q)
        decision = policy.rank(context)
        if not decision.order:
            raise RuntimeError(f"policy {getattr(policy, 'name', policy)!r} returned an empty order")
        a = index[decision.order[0]]
        arm[i] = a
        inflight[a] += 1
        heapq.heappush(events, (now + timeout_s, _DEADLINE, i))
        if busy[a] < service.capacity(arms[a], progress) and not queues[a]:
            begin(i, now)
        else:
            queues[a].append(i)
    advance(math.inf)

    return Records(
        arms=arms,
        query=queries,
        arm=arm,
        t=arrive,
        wait=start - arrive,
        service=end - start,
        latency=latency,
        quality=quality,
        reward=reward,
        status=status,
        t_done=t_done,
        inflight=seen,
    )
