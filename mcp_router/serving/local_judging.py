"""The local judge in the server: judge jobs of `search` and `retrieve` are graded by
`feedback.local_judge` instead of an LLM, on the dispatcher's existing judge queue, so they stay off
the call path exactly as LLM judging does (bounded queue, one worker, per-job timeout, drops when full).

Each job is scored in a worker thread (MiniLM over the query and up to five results: up to ~0.6 s
of one core, never on the event loop), recorded as a call of the tool `judge` whose attempt is the
local judge with its wall time (its cost: $0 and that time), and its reward is fed to the routers as
a `judge` signal, as an LLM verdict would be. Jobs of other tools go to the LLM judge when one is
configured, and are otherwise dropped unjudged.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

import anyio

from mcp_router.feedback.local_judge import LOCAL_TOOLS, LocalJudge
from mcp_router.serving.dispatch import Dispatcher, JudgeJob
from mcp_router.store import AttemptRecord

log = logging.getLogger("mcp_router.judge")
ARM_NAME = "local-judge"  # the provider name of its calls under the tool `judge`


class LocalJudgeRunner:
    """Runs one judge job: the local judge for its tools, else `other` (the LLM judge) if given."""

    def __init__(
        self,
        dispatcher: Dispatcher,
        judge: LocalJudge,
        other: Callable[[JudgeJob], Awaitable[None]] | None = None,
    ) -> None:
        self.dispatcher = dispatcher
        self.judge = judge
        self.other = other

    async def __call__(self, job: JudgeJob) -> None:
        if job.input.tool not in LOCAL_TOOLS:
            if self.other is not None:
                await self.other(job)
            return
        started = time.perf_counter()
        reward: float | None = None
        status, error = "ok", None
        try:
            reward = await anyio.to_thread.run_sync(self.judge.score, job.input)
        except Exception as exc:  # a judge bug costs this signal, never the server
            log.exception("local judge failed on %s", job.call_id)
            status, error = "bad_response", f"local judge error ({type(exc).__name__})"
        latency = time.perf_counter() - started
        d = self.dispatcher
        attempt = AttemptRecord(ARM_NAME, status, latency, error, ts_done=d.clock())
        await d.record_judge_call(job, attempt, judge=self.judge.params.version)
        if reward is not None:
            await d.signal(job.call_id, reward, "judge")  # the same path as an LLM verdict


def attach_local_judge(dispatcher: Dispatcher, judge: LocalJudge, queue_size: int, timeout_s: float) -> None:
    """Make `dispatcher`'s judge queue grade `search`/`retrieve` with `judge`, and other tools with
    the dispatcher's LLM judge (or not at all, without one)."""
    other = dispatcher.judge_with_llm if dispatcher.judge is not None else None
    dispatcher.judge_with(LocalJudgeRunner(dispatcher, judge, other), queue_size, timeout_s)
