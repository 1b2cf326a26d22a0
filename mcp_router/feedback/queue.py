"""The judge runs off the request path: a bounded queue drained by one background worker.

A tool call only enqueues its judging job and returns. When the queue is full the job is dropped
and logged, never awaited, so a slow or overloaded judge cannot add latency to any tool call; each
job also has its own timeout, so a stuck judge call cannot hold the queue.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

log = logging.getLogger("mcp_router.judge")
JobT = TypeVar("JobT")


@dataclass
class QueueStats:
    submitted: int = 0
    dropped: int = 0
    done: int = 0
    timed_out: int = 0
    failed: int = 0


class JudgeQueue(Generic[JobT]):
    def __init__(
        self, run: Callable[[JobT], Awaitable[Any]], size: int = 32, timeout_s: float = 30.0
    ) -> None:
        self.run = run
        self.timeout_s = timeout_s
        self.stats = QueueStats()
        send, receive = anyio.create_memory_object_stream[Any](max_buffer_size=size)
        self._send: MemoryObjectSendStream[Any] = send
        self._receive: MemoryObjectReceiveStream[Any] = receive

    def submit(self, job: JobT, label: str) -> bool:
        """Enqueue without waiting; False (and a log line) when the queue is full or closed."""
        try:
            self._send.send_nowait(job)
        except (anyio.WouldBlock, anyio.BrokenResourceError, anyio.ClosedResourceError):
            self.stats.dropped += 1
            log.warning(
                "judge queue full: dropped the judging of %s (%d dropped so far)", label, self.stats.dropped
            )
            return False
        self.stats.submitted += 1
        return True

    async def serve(self) -> None:
        """Drain the queue until cancelled (the server's lifespan owns this task)."""
        async with self._receive:
            async for job in self._receive:
                with anyio.move_on_after(self.timeout_s) as scope:
                    try:
                        await self.run(job)
                        self.stats.done += 1
                    except Exception:
                        self.stats.failed += 1
                        log.exception("judging failed")
                if scope.cancelled_caught:
                    self.stats.timed_out += 1
                    log.warning(
                        "judge gave no verdict within %.0f s; the call stays unjudged", self.timeout_s
                    )
