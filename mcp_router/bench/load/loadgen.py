"""The load generator, in a process of its own: MCP clients over streamable HTTP, every acknowledged
call_id appended to a file as it arrives.

Run as `python -m mcp_router.bench.load.loadgen --url URL --calls N --concurrency C --acks FILE`; it
prints one JSON summary on stdout (`children.child_main`). Its CPU and event loop are not the
server's, and the acknowledgement file is written line by line, so the parent can watch the count
(to kill the server half-way) and a crash of the server loses none of what the client was told.

A call is *acknowledged* when the server answered with a call_id: a result (`call_id` in its
structured content) or a tool error that names its call ("every `search` provider failed (call
call_…)"): both were recorded before the answer left. `feedback` answers carry the rated call's id,
not a new one, and are not acknowledgements. A call that raises (connection refused or reset, the
client's read timeout) is a transport error. With `--stop-when-down`, a transport error whose server
no longer accepts connections stops the run: the crash-safety run kills the server on purpose.
"""

from __future__ import annotations

import argparse
import itertools
import re
import socket
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

import anyio

from mcp_router.bench.load.mix import Call, Rateable, call_of
from mcp_router.bench.overhead.children import child_main
from mcp_router.bench.overhead.servers import mcp_client
from mcp_router.bench.overhead.stats import Dist

CALL_ID_IN_ERROR = re.compile(r"\(call (call_[0-9a-f]+)\)")
SAMPLES = 5
CONNECT_TIMEOUT_S = 60.0
REOPEN = 3  # times a session that died is reopened while its server still accepts connections
TOOLS = ("search", "llm_complete", "feedback")


@dataclass
class ToolTally:
    sent: int = 0
    ok: int = 0
    tool_errors: int = 0
    transport_errors: int = 0
    acknowledged: int = 0
    latencies: list[float] = field(default_factory=list)  # answered calls (ok or tool error), seconds

    def to_json(self) -> dict[str, Any]:
        return {
            "sent": self.sent,
            "ok": self.ok,
            "tool_errors": self.tool_errors,
            "transport_errors": self.transport_errors,
            "acknowledged": self.acknowledged,
            "latency": Dist.of(self.latencies).ms(),
        }


@dataclass
class Tally:
    tools: dict[str, ToolTally] = field(default_factory=lambda: {t: ToolTally() for t in TOOLS})
    tool_error_kinds: Counter[str] = field(default_factory=Counter)
    transport_error_kinds: Counter[str] = field(default_factory=Counter)
    sessions_ended: Counter[str] = field(default_factory=Counter)  # sessions that died, by why
    stopped_because_down: bool = False
    handed_out: int = 0

    def to_json(self, wall_s: float) -> dict[str, Any]:
        counts = ("sent", "ok", "tool_errors", "transport_errors", "acknowledged")
        total = {k: sum(getattr(t, k) for t in self.tools.values()) for k in counts}
        answered = total["ok"] + total["tool_errors"]
        return {
            **total,
            "wall_s": round(wall_s, 2),
            "answered_per_s": round(answered / wall_s, 1) if wall_s > 0 else None,
            "by_tool": {name: t.to_json() for name, t in self.tools.items()},
            "tool_error_kinds": dict(self.tool_error_kinds.most_common(SAMPLES)),
            "transport_error_kinds": dict(self.transport_error_kinds.most_common(SAMPLES)),
            "sessions_ended_by_error": dict(self.sessions_ended.most_common(SAMPLES)),
            "stopped_because_down": self.stopped_because_down,
        }


class Acks:
    """The acknowledgement file: `call_id<TAB>tool<TAB>ok|error` per line, written as each arrives."""

    def __init__(self, path: Path) -> None:
        self.file: IO[str] = open(path, "a", buffering=1)  # noqa: SIM115 - closed by `close`

    def add(self, call_id: str, tool: str, status: str) -> None:
        self.file.write(f"{call_id}\t{tool}\t{status}\n")

    def close(self) -> None:
        self.file.close()


def server_down(url: str) -> bool:
    """Whether the server's port refuses connections (the process is gone)."""
    parts = urlsplit(url)
    try:
        socket.create_connection((parts.hostname, parts.port), timeout=1.0).close()
    except OSError:
        return True
    return False


def describe(exc: BaseException) -> str:
    """An exception as `Type: message`, through exception groups to their first leaf."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return f"{type(exc).__name__}: {exc}"[:160]


def error_kind(text: str) -> str:
    """A tool error's text without its ids and figures, so alike errors count together."""
    text = re.sub(r"call_[0-9a-f]+", "call_…", text)
    return re.sub(r"\d+(\.\d+)?", "N", text)[:160]


class LoadGenerator:
    """`calls` calls from `concurrency` workers spread over `sessions` MCP client sessions.

    Each session runs in a task of its own with its workers inside it: when the server dies, the
    client's transport cancels its session (the SDK's task group), and that must end those workers,
    not the whole run, which still has to report what it saw. A session that ends so while the server
    still accepts connections is reopened (up to REOPEN times)."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.url: str = args.url
        self.calls: int = args.calls
        self.concurrency: int = args.concurrency
        self.sessions: int = max(1, min(args.sessions, args.concurrency))
        self.seed: int = args.seed
        self.call_timeout_s: float = args.call_timeout
        self.stop_when_down: bool = args.stop_when_down
        self.acks = Acks(Path(args.acks))
        self.tally = Tally()
        self.rateable = Rateable()
        self.down = anyio.Event()
        self.counter = itertools.count()
        self.connected = 0
        self.go = anyio.Event()

    async def run(self) -> dict[str, Any]:
        try:
            async with anyio.create_task_group() as group:
                for k in range(self.sessions):
                    workers = len(range(k, self.concurrency, self.sessions))
                    group.start_soon(self.session, workers)
                with anyio.fail_after(CONNECT_TIMEOUT_S):
                    while self.connected < self.sessions:  # connect every session before the clock starts
                        await anyio.sleep(0.01)
                started = time.perf_counter()
                self.go.set()
            wall = time.perf_counter() - started
        finally:
            self.acks.close()
        return self.tally.to_json(wall)

    async def session(self, workers: int) -> None:
        first = True
        for _ in range(REOPEN + 1):
            try:
                async with mcp_client(self.url) as client:
                    if first:
                        first = False
                        self.connected += 1
                        await self.go.wait()
                    async with anyio.create_task_group() as group:
                        for _ in range(workers):
                            group.start_soon(self.worker, client)
                return  # every call sent
            except Exception as exc:  # the session died: its server is gone, or its transport failed
                self.tally.sessions_ended[describe(exc)] += 1
            if first:
                raise RuntimeError(f"could not open an MCP session at {self.url}")
            if self.done() or await self.server_gone():
                return

    def done(self) -> bool:
        return self.down.is_set() or self.tally.handed_out >= self.calls

    async def server_gone(self) -> bool:
        if await anyio.to_thread.run_sync(server_down, self.url):
            self.tally.stopped_because_down = True
            self.down.set()
            return True
        return False

    async def worker(self, client: Any) -> None:
        while not self.down.is_set() and (i := next(self.counter)) < self.calls:
            self.tally.handed_out = i + 1
            await self.one(client, call_of(i, self.seed, self.rateable))

    async def one(self, client: Any, call: Call) -> None:
        tally = self.tally.tools[call.tool]
        tally.sent += 1
        started = time.perf_counter()
        try:
            result = await client.call_tool(call.tool, call.args, read_timeout_seconds=self.call_timeout_s)
        except Exception as exc:  # refused, reset, timed out: the call's fate is unknown to the client
            self.transport_error(tally, describe(exc))
            if self.stop_when_down and not self.down.is_set():
                await self.server_gone()
            return
        except BaseException:  # cancelled with its session (the server died mid-call): sent, unanswered
            self.transport_error(tally, "cancelled with its session")
            raise
        tally.latencies.append(time.perf_counter() - started)
        if result.is_error:
            tally.tool_errors += 1
            text = result.content[0].text if result.content else ""
            self.tally.tool_error_kinds[f"{call.tool}: {error_kind(text)}"] += 1
            if call.tool != "feedback" and (found := CALL_ID_IN_ERROR.search(text)):
                tally.acknowledged += 1
                self.acks.add(found.group(1), call.tool, "error")
            return
        tally.ok += 1
        if call.tool == "feedback":
            return
        call_id = (result.structured_content or {}).get("call_id")
        if not call_id:
            self.tally.tool_error_kinds[f"{call.tool}: a result without call_id"] += 1
            return
        tally.acknowledged += 1
        self.acks.add(call_id, call.tool, "ok")
        self.rateable.add(call_id)

    def transport_error(self, tally: ToolTally, kind: str) -> None:
        tally.transport_errors += 1
        self.tally.transport_error_kinds[kind[:160]] += 1


async def _run(args: argparse.Namespace) -> dict[str, Any]:
    return await LoadGenerator(args).run()


def main(argv: Sequence[str] | None = None) -> None:
    """The load generator's entry in its child process: one JSON summary on stdout."""
    parser = argparse.ArgumentParser(prog="python -m mcp_router.bench.load.loadgen")
    parser.add_argument("--url", required=True)
    parser.add_argument("--calls", type=int, required=True)
    parser.add_argument("--concurrency", type=int, required=True)
    parser.add_argument("--sessions", type=int, default=8)
    parser.add_argument("--acks", required=True, help="file the acknowledged call_ids are appended to")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--call-timeout", type=float, default=30.0)
    parser.add_argument("--stop-when-down", action="store_true")
    child_main(parser, _run, argv)


if __name__ == "__main__":
    main()
