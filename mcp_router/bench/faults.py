"""Loopback providers that fail on purpose, one fault per URL path prefix, run in their own process.

One raw asyncio HTTP/1.1 server (keep-alive, no framework) speaks the two wire protocols the
router's HTTP adapters use most, with the bodies of `stubs` (`searx_body`, `chat_body`):

- `GET /<fault>/search?q=...&format=json`: a SearXNG JSON page;
- `POST /<fault>/v1/chat/completions`: an OpenAI chat completion, or an SSE stream of
  `chat.completion.chunk` events ending in `data: [DONE]` when the request has `"stream": true`;
- `GET /_stats`: how many requests it served and which faults it applied, reset on read.

The first path segment picks the fault, so one server serves a healthy arm and faulty arms side by
side: a provider's `base_url` is `http://127.0.0.1:PORT/<fault>` (SearXNG) or `.../<fault>/v1`
(OpenAI-compatible). Faults (`FAULTS`):

    ok             the normal answer
    timeout        reads the request and never answers; lets go when the client disconnects
    429s           429, `Retry-After: <seconds>` (`429s-N` for N seconds; default RETRY_AFTER_S)
    429date        429, `Retry-After` as an HTTP date that many seconds ahead (`429date-N`)
    500, 502, 503  that status with an OpenAI-style JSON error body
    reset          reads the request, then resets the connection (SO_LINGER 0: a TCP RST)
    badjson        200 `application/json` whose body is malformed JSON (SSE: a malformed chunk)
    html           502 with an HTML error page (a proxy in front of a dead upstream)
    html200        200 with an HTML page (a captive portal, a login wall)
    slowloris      the headers at once, then the body one byte per DRIBBLE_S seconds
    truncated_sse  SSE (chunked, as real servers send it): two events, then half an event, then the
                   connection closes without the terminating chunk and without `[DONE]`;
                   a JSON request gets half its declared Content-Length, then the close
    sse_nodone     SSE that ends cleanly (terminating chunk) after content deltas, with neither a
                   `finish_reason` nor `[DONE]`; a JSON request is answered `ok`

A load benchmark wants a fixed share of faults instead: `mixN` answers request k (1-based, counted
per prefix) with fault `MIX_FAULTS[(k // N - 1) % len(MIX_FAULTS)]` when k is a multiple of N and
`ok` otherwise, so every N-th request fails and the failures rotate deterministically; `mixN-<fault>`
always uses that one fault (e.g. `mix10-503`, `mix4-429s-1`). `firstN-<fault>` fails the first N requests
and then recovers (`first6-503`: a breaker opens after five failures, its first half-open probe fails,
the second succeeds). Any prefix may carry a tag, `<prefix>.<tag>` (`first6-503.breaker`), which the
fault ignores but which gives it a request counter of its own.

`fault_server()` runs it in a child process (its CPU time is not the caller's) and yields a
`FaultServer` that builds the base URLs; `serve(port)` is the in-process coroutine.
`python -m mcp_router.bench.faults` prints `PORT <n>` once it listens on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import json
import math
import socket
import struct
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from mcp_router.bench.stubs import (
    ANSWER,
    chat_body,
    loopback_process,
    response,
    searx_body,
    serve_until_stopped,
)

FAULTS = (
    "ok",
    "timeout",
    "429s",
    "429date",
    "500",
    "502",
    "503",
    "reset",
    "badjson",
    "html",
    "html200",
    "slowloris",
    "truncated_sse",
    "sse_nodone",
)
# what `mixN` rotates through: the faults that answer at once (no timeout, no slowloris), so a load
# benchmark's throughput measures the router, not the fault server's stalls
MIX_FAULTS = ("503", "429s", "reset", "500", "badjson", "502", "html", "429date", "html200")
RETRY_AFTER_S = 2
DRIBBLE_S = 1.0
MAX_HOLD_S = 600.0  # `timeout` and `slowloris` let go after this even if the client never does
MAX_HEAD = 64 * 1024
REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
}
HTML_PAGE = (
    b"<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title></head>\n"
    b"<body><center><h1>502 Bad Gateway</h1></center><hr><center>nginx</center></body></html>\n"
)
LOGIN_PAGE = (
    b"<!DOCTYPE html>\n<html><head><title>Sign in</title></head>\n"
    b'<body><form action="/login" method="post"><input name="user"></form></body></html>\n'
)
BAD_JSON = b'{"results": [{"url": "https://example.org/0", "title": "Result 0", "content": '


# -- what a path asks for --------------------------------------------------------------------------


@dataclass(frozen=True)
class Fault:
    name: str  # one of FAULTS
    retry_after_s: int = RETRY_AFTER_S  # for 429s / 429date


def parse_fault(segment: str) -> Fault | None:
    """The fault a (non-mix) path segment names, or None: `name`, or `429s-N` / `429date-N`."""
    if segment in FAULTS:
        return Fault(segment)
    name, _, param = segment.partition("-")
    if name in ("429s", "429date") and param.isdigit():
        return Fault(name, int(param))
    return None


@dataclass(frozen=True)
class Schedule:
    """Which fault the k-th request of a prefix gets: always `fault` (`every` = 1, `first` = 0), every
    `every`-th request (`mixN`), or the first `first` requests and then `ok` (`firstN-<fault>`)."""

    fault: Fault | None  # None: rotate through MIX_FAULTS
    every: int = 1
    first: int = 0

    def at(self, k: int) -> Fault:
        """The fault of the k-th request (1-based)."""
        if self.first:
            return self.fault if k <= self.first and self.fault else Fault("ok")
        if k % self.every:
            return Fault("ok")
        return self.fault or Fault(MIX_FAULTS[(k // self.every - 1) % len(MIX_FAULTS)])


def parse_schedule(segment: str) -> Schedule | None:
    """The schedule a path segment names, or None. `<spec>.<tag>` is `<spec>` with a counter of its
    own (tests and benchmarks sharing one server keep their `mixN` / `firstN` sequences apart)."""
    spec = segment.partition(".")[0]
    fault = parse_fault(spec)
    if fault is not None:
        return Schedule(fault)
    for prefix in ("mix", "first"):
        if not spec.startswith(prefix):
            continue
        number, dash, rest = spec[len(prefix) :].partition("-")
        if not number.isdigit() or int(number) < 1:
            return None
        fault = parse_fault(rest) if dash else None
        if dash and fault is None:
            return None
        if prefix == "mix":
            return Schedule(fault, every=int(number))
        return Schedule(fault, first=int(number)) if fault is not None else None
    return None


@dataclass
class State:
    """Per-prefix request counters (for `mixN`) and what was applied, for `/_stats`."""

    counters: Counter[str] = field(default_factory=Counter)
    applied: Counter[str] = field(default_factory=Counter)
    serial: int = 0

    def resolve(self, segment: str) -> Fault | None:
        schedule = parse_schedule(segment)
        if schedule is None:
            return None
        self.counters[segment] += 1
        fault = schedule.at(self.counters[segment])
        self.applied[fault.name] += 1
        self.serial += 1
        return fault

    def summary(self) -> dict[str, Any]:
        out = {"requests": sum(self.applied.values()), "faults": dict(self.applied)}
        self.applied.clear()
        return out


# -- bytes on the wire -----------------------------------------------------------------------------


def head(status: int, headers: list[tuple[str, str]]) -> bytes:
    lines = [f"HTTP/1.1 {status} {REASONS.get(status, 'Error')}", *(f"{k}: {v}" for k, v in headers)]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def plain(status: int, body: bytes, content_type: str, extra: Sequence[tuple[str, str]] = ()) -> bytes:
    headers = [("Content-Type", content_type), ("Content-Length", str(len(body))), *extra]
    return head(status, [*headers, ("Connection", "keep-alive")]) + body


def error_json(message: str, kind: str) -> bytes:
    return json.dumps({"error": {"message": message, "type": kind, "code": None}}).encode()


def chunk(data: bytes) -> bytes:
    """One chunk of a `Transfer-Encoding: chunked` body."""
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


LAST_CHUNK = b"0\r\n\r\n"


def sse_event(payload: dict[str, Any] | str) -> bytes:
    data = payload if isinstance(payload, str) else json.dumps(payload)
    return f"data: {data}\n\n".encode()


def sse_events(request: dict[str, Any], serial: int) -> list[bytes]:
    """An OpenAI streamed answer: a role delta, the answer's words, the finish, the usage, `[DONE]`."""
    done = json.loads(chat_body(request, serial))  # the same model, usage and text as the JSON answer
    base = {
        "id": done["id"],
        "object": "chat.completion.chunk",
        "created": done["created"],
        "model": done["model"],
    }

    def delta(content: dict[str, Any], finish: str | None = None) -> bytes:
        choice = {"index": 0, "delta": content, "logprobs": None, "finish_reason": finish}
        return sse_event({**base, "choices": [choice]})

    words = ANSWER.split(" ")
    parts = [delta({"role": "assistant", "content": ""})]
    parts += [delta({"content": w if i == 0 else " " + w}) for i, w in enumerate(words)]
    parts.append(delta({}, "stop"))
    parts.append(sse_event({**base, "choices": [], "usage": done["usage"]}))
    parts.append(sse_event("[DONE]"))
    return parts


SSE_HEAD = head(
    200,
    [
        ("Content-Type", "text/event-stream"),
        ("Cache-Control", "no-cache"),
        ("Transfer-Encoding", "chunked"),
        ("Connection", "keep-alive"),
    ],
)


# -- the server ------------------------------------------------------------------------------------


@dataclass
class Request:
    method: str
    path: str  # after the fault segment, e.g. /search or /v1/chat/completions
    query: dict[str, list[str]]
    body: bytes
    keep_alive: bool

    def json(self) -> dict[str, Any]:
        try:
            value = json.loads(self.body or b"{}")
        except ValueError:
            return {}
        return value if isinstance(value, dict) else {}

    @property
    def kind(self) -> str | None:
        """`search`, `chat`, `chat_stream`, or None for a path this server does not speak."""
        if self.method == "GET" and self.path.rstrip("/") == "/search":
            return "search"
        if self.method == "POST" and self.path.rstrip("/").endswith("/chat/completions"):
            return "chat_stream" if self.json().get("stream") is True else "chat"
        return None


class FaultHandler:
    def __init__(self, state: State) -> None:
        self.state = state

    async def __call__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                request, segment = await self._read(reader)
                if request is None:
                    return
                keep = await self._serve(request, segment, reader, writer)
                if not keep or not request.keep_alive:
                    return
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            return
        finally:
            if not writer.is_closing():
                writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _read(self, reader: asyncio.StreamReader) -> tuple[Request | None, str]:
        try:
            raw = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            return None, ""
        lines = raw[:-4].decode("latin-1").split("\r\n")
        method, target, _ = [*lines[0].split(" "), "", ""][:3]
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length") or 0)
        body = await reader.readexactly(length) if length else b""
        url = urlsplit(target)
        segment, _, rest = url.path.lstrip("/").partition("/")
        request = Request(
            method=method,
            path="/" + rest,
            query=parse_qs(url.query),
            body=body,
            keep_alive=headers.get("connection", "").lower() != "close",
        )
        return request, segment

    async def _serve(
        self, request: Request, segment: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        """Answer one request; False when the connection must not be reused."""
        if request.method == "GET" and segment == "_stats" and request.path == "/":
            writer.write(plain(200, json.dumps(self.state.summary()).encode(), "application/json"))
            await writer.drain()
            return True
        kind = request.kind
        fault = self.state.resolve(segment) if kind else None
        if fault is None or kind is None:
            message = f"unknown fault or path {segment!r} {request.path!r}; faults: {', '.join(FAULTS)}"
            writer.write(plain(404, error_json(message, "not_found"), "application/json"))
            await writer.drain()
            return True
        serial = self.state.serial
        if fault.name == "reset":
            reset(writer)
            return False
        if fault.name == "timeout":
            await hold(reader, MAX_HOLD_S)
            return False
        if fault.name == "slowloris":
            await dribble(reader, writer, ok_bytes(request, kind, serial))
            return False
        writer.write(answer(fault, request, kind, serial))
        await writer.drain()
        # a truncated answer is cut short by closing the connection: the client sees an incomplete body
        return fault.name != "truncated_sse"


def answer(fault: Fault, request: Request, kind: str, serial: int) -> bytes:
    """The whole response of a fault that answers at once (all but reset, timeout and slowloris)."""
    name, stream = fault.name, kind == "chat_stream"
    if name in ("429s", "429date"):
        when = (
            str(fault.retry_after_s)
            if name == "429s"
            else email.utils.formatdate(math.ceil(time.time()) + fault.retry_after_s, usegmt=True)
        )
        body = error_json(f"rate limit reached (fault {name})", "rate_limit_error")
        return plain(429, body, "application/json", [("Retry-After", when)])
    if name in ("500", "502", "503"):
        return plain(int(name), error_json(f"fault {name}", "server_error"), "application/json")
    if name == "html":
        return plain(502, HTML_PAGE, "text/html")
    if name == "html200":
        return plain(200, LOGIN_PAGE, "text/html; charset=utf-8")
    if name == "badjson" and not stream:
        return plain(200, BAD_JSON, "application/json")
    if name == "truncated_sse" and not stream:  # all but the last 40 bytes of the declared length
        whole = ok_bytes(request, kind, serial)
        return whole[: len(whole) - 40]
    if not stream or name not in ("badjson", "truncated_sse", "sse_nodone"):
        return ok_bytes(request, kind, serial)  # `ok`, and `sse_nodone` of a JSON request
    events = sse_events(request.json(), serial)
    if name == "badjson":  # the role delta, a chunk that is not JSON, then a clean end
        return (
            SSE_HEAD
            + chunk(events[0])
            + chunk(b"data: " + BAD_JSON + b"\n\n")
            + chunk(events[-1])
            + LAST_CHUNK
        )
    if name == "truncated_sse":  # two whole events and half the third; no terminating chunk
        return SSE_HEAD + chunk(events[0]) + chunk(events[1]) + chunk(events[2][: len(events[2]) // 2])
    # sse_nodone: the role and content deltas (no finish, usage or [DONE]), then a clean end
    return SSE_HEAD + b"".join(chunk(e) for e in events[:-3]) + LAST_CHUNK


def ok_bytes(request: Request, kind: str, serial: int) -> bytes:
    """The healthy answer as full response bytes."""
    if kind == "search":
        return response(200, searx_body(request.query.get("q", [""])[0]))
    if kind == "chat":
        return response(200, chat_body(request.json(), serial))
    return SSE_HEAD + b"".join(chunk(e) for e in sse_events(request.json(), serial)) + LAST_CHUNK


def reset(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP RST: SO_LINGER on with a zero timeout, then drop the transport."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


async def hold(reader: asyncio.StreamReader, limit_s: float) -> None:
    """Wait until the client disconnects (or `limit_s`), discarding whatever it sends."""
    with contextlib.suppress(TimeoutError, ConnectionError):
        async with asyncio.timeout(limit_s):
            while await reader.read(65536):
                pass


async def dribble(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, whole: bytes) -> None:
    """The response head at once, then its body one byte per DRIBBLE_S, until the client disconnects."""
    split = whole.find(b"\r\n\r\n") + 4
    gone = asyncio.ensure_future(hold(reader, MAX_HOLD_S))
    try:
        writer.write(whole[:split])
        await writer.drain()
        for i in range(split, len(whole)):
            await asyncio.wait([gone], timeout=DRIBBLE_S)
            if gone.done() or writer.is_closing():
                return
            writer.write(whole[i : i + 1])
            await writer.drain()
    except ConnectionError:
        return
    finally:
        gone.cancel()


async def start(port: int = 0, host: str = "127.0.0.1") -> tuple[asyncio.Server, int]:
    """Listen on `host:port` (0: an ephemeral port); returns the server and the port it got."""
    server = await asyncio.start_server(FaultHandler(State()), host, port, limit=MAX_HEAD)
    return server, server.sockets[0].getsockname()[1]


async def serve(port: int = 0, on_ready: Callable[[int], None] | None = None) -> None:
    """Serve on 127.0.0.1:`port` until cancelled; `on_ready(port)` once it listens."""
    server, bound = await start(port)
    if on_ready is not None:
        on_ready(bound)
    async with server:
        await server.serve_forever()


async def main() -> None:
    """The child process: announce the port, serve until SIGTERM or stdin closes."""
    await serve_until_stopped(*await start(0))


@dataclass(frozen=True)
class FaultServer:
    base_url: str  # http://127.0.0.1:PORT

    def url(self, fault: str) -> str:
        """The root of one fault: `http://127.0.0.1:PORT/<fault>`."""
        return f"{self.base_url}/{fault}"

    def openai_base(self, fault: str) -> str:
        return f"{self.url(fault)}/v1"

    def searx_base(self, fault: str) -> str:
        return self.url(fault)

    def stats(self) -> dict[str, Any]:
        """Requests served and faults applied since the last read (and resets them)."""
        import httpx

        return httpx.get(f"{self.base_url}/_stats/", timeout=10).json()


@contextmanager
def fault_server() -> Iterator[FaultServer]:
    """The fault server in a child process."""
    with loopback_process("mcp_router.bench.faults", "fault server") as base_url:
        yield FaultServer(base_url=base_url)


if __name__ == "__main__":
    asyncio.run(main())
