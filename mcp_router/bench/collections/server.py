"""One router over stdio, as an MCP host launches it, and the two things the benchmark asks of it.

`started` spawns `python -m mcp_router serve --config CONF` through the SDK's stdio client (the
overhead benchmark's `stdio_client_for`: no resource cache, a 60 s read timeout, twice the tool's own
30 s deadline, so a call that runs into the deadline comes back as the server's error, not as a
client timeout) and clocks the spawn: every time the benchmark reports is seconds since it.
`retrieve` makes one call and keeps what a host would see; `collection` reads the collection's
entry of `router://collections`.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from mcp import Client

from mcp_router.bench.collections.setting import COLLECTION, Workspace
from mcp_router.bench.overhead.servers import explained, stdio_client_for

RESOURCE = "router://collections"
ERROR_CHARS = 300


@dataclass
class Session:
    """A running server and its client; `spawned` is the `time.perf_counter()` of the spawn,
    `spawned_at` its `time.time()` (to place the server's own timestamps on the same clock)."""

    client: Client
    spawned: float
    spawned_at: float
    initialized_s: float

    def since(self) -> float:
        """Seconds since the spawn."""
        return time.perf_counter() - self.spawned


@contextlib.asynccontextmanager
async def started(ws: Workspace, arms: Sequence[str], name: str) -> AsyncIterator[Session]:
    """A server with `arms` on the work folder's collection, its stderr in `logs/NAME.log`; initialized
    once the block is entered, stopped (stdin closed, then signals) when it ends."""
    args = ["-m", "mcp_router", "serve", "--config", str(ws.config(arms))]
    log = ws.log(name)
    with open(log, "a") as sink:
        async with explained(f"server {name}", log):
            spawned, spawned_at = time.perf_counter(), time.time()
            async with stdio_client_for(args, ws.env(name), sink) as client:
                yield Session(client, spawned, spawned_at, round(time.perf_counter() - spawned, 3))


@dataclass
class Call:
    """One `retrieve` as the client saw it: sent and answered in seconds since the spawn."""

    query: int
    sent_s: float
    answered_s: float | None = None
    latency_s: float | None = None
    arm: str | None = None  # the `provider` of the structured result
    fallbacks: list[str] | None = None  # arms tried first that failed, with why
    error: str | None = None  # the tool's error text, or what the client raised (then `lost`)
    lost: bool = False  # no answer: the client gave up or the connection died

    @property
    def ok(self) -> bool:
        return self.arm is not None

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v not in (None, False, [])}


async def retrieve(session: Session, query: str, number: int, k: int = 5) -> Call:
    """One call; a tool error or a lost call is recorded in the `Call`, never raised."""
    call = Call(number, round(session.since(), 3))
    started = time.perf_counter()
    arguments = {"query": query, "k": k, "collection": COLLECTION}
    try:
        result = await session.client.call_tool("retrieve", arguments)
    except Exception as exc:
        call.lost, call.error = True, f"{type(exc).__name__}: {exc}"[:ERROR_CHARS]
    else:
        if result.is_error:
            text = " ".join(getattr(block, "text", "") for block in result.content)
            call.error = text.strip()[:ERROR_CHARS] or "(no text)"
        else:
            data = result.structured_content or {}
            call.arm, call.fallbacks = data.get("provider"), list(data.get("fallbacks") or [])
            if call.arm is None:
                call.error = "a result without `provider`"
    call.latency_s = round(time.perf_counter() - started, 3)
    call.answered_s = round(session.since(), 3)
    return call


async def collection(session: Session) -> dict[str, Any]:
    """The benchmark collection's entry of `router://collections`."""
    result = await session.client.read_resource(RESOURCE)
    entry = json.loads(result.contents[0].text)["collections"].get(COLLECTION)
    if entry is None:
        raise RuntimeError(f"{RESOURCE} does not list the collection {COLLECTION!r}")
    return entry


def ready(entry: dict[str, Any], view: str) -> bool:
    """Whether the resource shows `view` ("lexical" or "dense") published."""
    return bool((entry.get(view) or {}).get("ready"))
