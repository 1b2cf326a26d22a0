"""The host's own model as the judge (`[judge] provider = "sampling"`, opt-in): a sampled call's
judge job is sent back to the client that made the call as `sampling/createMessage`, with the LLM
judge's rubric (`feedback.judge.judge_messages`), and its answer is read by the same strict parser
(`parse_verdict`). It runs on the dispatcher's judge queue, so it never delays a tool call.

Which protocol era can do this, read from the `mcp` 2.3 SDK:

- **Legacy (the `initialize` handshake, up to 2025-11-25): yes.** `ServerSession.send_request` without
  a `related_request_id` goes out on `Connection.outbound`, the connection's `JSONRPCDispatcher`
  (`server/runner.py`, `Connection.for_loop`), which lives as long as the client's session, not the
  tool call. So a job running after the call returned can still ask the host. Once the session has
  ended, `JSONRPCDispatcher.send_raw_request` fails at once with `CONNECTION_CLOSED`: the job is
  dropped, nobody is left to grade for.
- **2026-07-28: no.** Each request gets its own `Connection.from_envelope`, closed when the request
  returns (`runner.serve_one`). Its outbound refuses server-initiated requests (`_NoChannelOutbound`,
  or `NotifyOnlyOutbound` on stdio), and so does the request's own channel
  (`_NoServerRequestsDispatchContext.send_raw_request` raises `NoBackChannelError`). Sampling exists
  there only as a `Sample` resolver (`server/mcpserver/resolve.py`), answered through an
  `InputRequiredResult` round trip *before* the tool body runs: on the call path, and before there is
  a result to grade. Calls made in this era fall back.

Fallback, whenever the host cannot judge (no sampling capability declared at initialize, the
2026-07-28 era, stateless HTTP, which keeps neither the handshake nor a back-channel): `search` and
`retrieve` go to the local judge, `llm_complete` is not judged; each reason is logged once, not per
call. A host that errors, times out or answers garbage costs only that signal: the call was recorded
before it returned, and the judge call is recorded with its status and wall time at a cost of $0.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import anyio
from mcp.server.mcpserver import Context
from mcp.server.session import ServerSession
from mcp.shared.exceptions import MCPError, NoBackChannelError
from mcp.types import (
    CONNECTION_CLOSED,
    CreateMessageRequest,
    CreateMessageRequestParams,
    CreateMessageResult,
    SamplingMessage,
    TextContent,
)
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from pydantic import ValidationError

from mcp_router.config import JudgeConfig
from mcp_router.feedback.judge import JudgeInput, judge_messages, max_tokens_for, parse_verdict
from mcp_router.feedback.local_judge import LocalJudge
from mcp_router.serving.dispatch import Dispatcher, JudgeJob
from mcp_router.serving.local_judging import LocalJudgeRunner
from mcp_router.store import AttemptRecord

log = logging.getLogger("mcp_router.judge")
ARM_NAME = "host-model"  # the provider name of its calls under the tool `judge`
JUDGE_NAME = "sampling"
# The host's answer must arrive within this share of the queue's per-job timeout, so a slow host is
# recorded as a timed-out judge call rather than cut off unrecorded by the queue.
HOST_TIMEOUT_SHARE = 0.9


@dataclass(frozen=True)
class HostLink:
    """What a judge job keeps of the client that made the call: the SDK's session proxy, the era the
    connection speaks, whether a handshake is on record (a stateless HTTP server keeps none) and
    whether the client declared sampling in it. The proxy is held strongly: the SDK builds one per
    request (`ServerRunner._make_context`) and drops it when the call returns, so a weak reference
    would be dead before the job runs, and the connection it wraps is not public. The judge queue is
    bounded, so at most `queue_size` links are held, each until its job has run."""

    session: ServerSession
    protocol_version: str
    handshake: bool
    sampling: bool

    @classmethod
    def of(cls, ctx: Context) -> HostLink:
        capabilities = ctx.client_capabilities
        sampling = capabilities is not None and capabilities.sampling is not None
        handshake = ctx.session.client_params is not None
        return cls(ctx.session, ctx.request_context.protocol_version, handshake, sampling)

    def unusable(self) -> str | None:
        """Why this client cannot judge the call after it returned, or None when it can be asked."""
        if self.protocol_version in MODERN_PROTOCOL_VERSIONS:
            return (
                f"the client speaks {self.protocol_version}, where a server cannot send "
                "sampling/createMessage once the call has returned"
            )
        if not self.handshake:
            return "the connection keeps no session to ask the client on (stateless HTTP)"
        if not self.sampling:
            return "the client declared no sampling capability"
        return None


class SessionGone(Exception):
    """The client's session ended before its judge job ran."""


def sampling_params(item: JudgeInput, max_tokens: int) -> CreateMessageRequestParams:
    """The LLM judge's chat for `item` as a sampling request: its system prompt as `system_prompt`,
    the worked examples and the item as user/assistant turns, deterministic, no server context."""
    system, *turns = judge_messages(item)
    return CreateMessageRequestParams(
        messages=[
            SamplingMessage(role=m.role, content=TextContent(type="text", text=m.content)) for m in turns
        ],
        system_prompt=system.content,
        max_tokens=max(max_tokens, max_tokens_for(item)),
        temperature=0.0,
        include_context="none",
    )


class SamplingJudgeRunner:
    """Runs one judge job: the host's model when the call's client can be asked, else `fallback`."""

    def __init__(
        self,
        dispatcher: Dispatcher,
        fallback: Callable[[JudgeJob], Awaitable[None]],
        max_tokens: int,
        host_timeout_s: float,
    ) -> None:
        self.dispatcher = dispatcher
        self.fallback = fallback
        self.max_tokens = max_tokens
        self.host_timeout_s = host_timeout_s
        self._told: set[str] = set()

    async def __call__(self, job: JudgeJob) -> None:
        link = job.origin if isinstance(job.origin, HostLink) else None
        why = "the call came without a client session" if link is None else link.unusable()
        if link is not None and why is None:
            try:
                await self._ask_host(job, link)
                return
            except NoBackChannelError:
                why = "the client's transport has no channel for server requests (e.g. stateless HTTP)"
            except SessionGone:
                log.info("judge job of %s dropped: its client session closed before it ran", job.call_id)
                return
        if why not in self._told:
            self._told.add(why)
            log.info(
                "sampling judge: %s; such calls are judged by the local judge (search, retrieve) or not at "
                "all (llm_complete). Said once.",
                why,
            )
        await self.fallback(job)

    async def _ask_host(self, job: JudgeJob, link: HostLink) -> None:
        """One `sampling/createMessage` to the call's client, recorded as a judge call (even when the
        queue's timeout cuts it short); its verdict, when it parses, is fed to the routers like an LLM
        judge's. Raises `NoBackChannelError` or `SessionGone`, unrecorded, when it could not ask."""
        d = self.dispatcher
        request = CreateMessageRequest(params=sampling_params(job.input, self.max_tokens))
        started = time.perf_counter()
        status: str | None = "timeout"  # None: the client was never asked
        error, text, model = f"no answer within {self.host_timeout_s:.1f} s", None, None
        try:
            with anyio.move_on_after(self.host_timeout_s):
                result = await link.session.send_request(request, CreateMessageResult)
                status, error, model = "ok", None, result.model
                text = result.content.text if isinstance(result.content, TextContent) else None
        except NoBackChannelError:
            status = None
            raise
        except MCPError as exc:
            if exc.code == CONNECTION_CLOSED:
                status = None
                raise SessionGone from None
            status, error = "unavailable", f"the client's sampling failed (MCP error {exc.code})"
        except ValidationError:
            status, error = "bad_response", "the client's sampling result is not a CreateMessageResult"
        except Exception as exc:  # a surprise costs this signal, never the judge queue
            log.exception("asking the host to judge %s failed", job.call_id)
            status, error = "bad_response", f"internal error ({type(exc).__name__})"
        finally:
            if status is not None:
                attempt = AttemptRecord(
                    ARM_NAME, status, time.perf_counter() - started, error, ts_done=d.clock()
                )
                await d.record_judge_call(job, attempt, judge=JUDGE_NAME, model=model)
        if status != "ok":
            log.warning("host judge failed on %s: %s", job.call_id, error)
            return
        reward = None if text is None else parse_verdict(job.input, text)
        if reward is None:
            log.info("host judge output for %s did not parse; dropped, not guessed", job.call_id)
            return
        await d.signal(job.call_id, reward, "judge")


def attach_sampling_judge(dispatcher: Dispatcher, local: LocalJudge, config: JudgeConfig) -> None:
    """Make `dispatcher`'s judge queue ask the call's client where it can, with `local` grading
    `search`/`retrieve` where it cannot (and `llm_complete` then not judged)."""
    fallback = LocalJudgeRunner(dispatcher, local)
    host_timeout_s = HOST_TIMEOUT_SHARE * config.timeout_s
    runner = SamplingJudgeRunner(dispatcher, fallback, config.max_tokens, host_timeout_s)
    dispatcher.judge_with(runner, config.queue_size, config.timeout_s)
