"""Instant loopback providers for `bench overhead`, run in their own process.

One raw asyncio HTTP/1.1 server (keep-alive, no framework) answers:

- `POST /v1/chat/completions`: an OpenAI chat completion (`choices`, `usage`, `model` echoed);
- `GET /search?q=...&format=json`: a SearXNG JSON page of ten results;
- `GET /stats`: its own per-request handling time (parse to write), so the report can show that
  the providers themselves cost well under a millisecond and everything else is client-side.

It runs in a separate process so its CPU time is not charged to the benchmark's event loop, and
it answers without any I/O of its own, so what a benchmark measures on top of it is the caller.
`python -m mcp_router.bench.stubs` prints `PORT <n>` on stdout once it listens on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

SEARCH_RESULTS = 10
MAX_SAMPLES = 200_000
ANSWER = "Paris is the capital of France."


def searx_result(i: int, query: str) -> dict[str, Any]:
    """One result as SearXNG's JSON output format writes it."""
    url = f"https://example.org/{i}/{query.replace(' ', '-')[:40]}"
    return {
        "url": url,
        "title": f"Result {i} for {query}"[:120],
        "content": f"Snippet {i}: a short extract of the page that matches {query}."[:300],
        "engine": "duckduckgo",
        "parsed_url": ["https", "example.org", f"/{i}", "", "", ""],
        "template": "default.html",
        "engines": ["duckduckgo"],
        "positions": [i + 1],
        "score": 1.0 / (i + 1),
        "category": "general",
    }


def searx_body(query: str) -> bytes:
    return json.dumps(
        {
            "query": query,
            "number_of_results": 0,
            "results": [searx_result(i, query) for i in range(SEARCH_RESULTS)],
            "answers": [],
            "corrections": [],
            "infoboxes": [],
            "suggestions": [],
            "unresponsive_engines": [],
        }
    ).encode()


def chat_body(request: dict[str, Any], serial: int) -> bytes:
    """An OpenAI `chat.completion` object; prompt tokens estimated from the characters sent."""
    messages = request.get("messages") or []
    prompt_chars = sum(len(str(m.get("content", ""))) for m in messages if isinstance(m, dict))
    prompt_tokens = max(1, prompt_chars // 4)
    completion_tokens = 8
    return json.dumps(
        {
            "id": f"chatcmpl-stub{serial}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": str(request.get("model") or "stub"),
            "system_fingerprint": None,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": ANSWER, "refusal": None},
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }
    ).encode()


def response(status: int, body: bytes) -> bytes:
    reason = {200: "OK", 404: "Not Found", 400: "Bad Request"}.get(status, "OK")
    head = (
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: keep-alive\r\n\r\n"
    )
    return head.encode() + body


class Timings:
    """Handling times in seconds, bounded; read and reset through `GET /stats`."""

    def __init__(self) -> None:
        self.samples: list[float] = []
        self.serial = 0

    def add(self, seconds: float) -> None:
        self.serial += 1
        if len(self.samples) < MAX_SAMPLES:
            self.samples.append(seconds)

    def summary(self) -> dict[str, Any]:
        ordered = sorted(self.samples)
        n = len(ordered)

        def q(p: float) -> float | None:
            return round(ordered[min(n - 1, int(p * n))] * 1e6, 1) if n else None

        return {"requests": n, "p50_us": q(0.50), "p99_us": q(0.99), "max_us": q(1.0)}


def route(method: str, target: str, body: bytes, timings: Timings) -> bytes:
    url = urlsplit(target)
    if method == "GET" and url.path == "/search":
        query = parse_qs(url.query).get("q", [""])[0]
        return response(200, searx_body(query))
    if method == "POST" and url.path.rstrip("/").endswith("/chat/completions"):
        try:
            request = json.loads(body or b"{}")
        except ValueError:
            return response(400, b'{"error": {"message": "body is not JSON"}}')
        return response(200, chat_body(request if isinstance(request, dict) else {}, timings.serial))
    if method == "GET" and url.path == "/stats":
        summary = timings.summary()
        timings.samples.clear()
        return response(200, json.dumps(summary).encode())
    return response(404, b'{"error": {"message": "not found"}}')


class StubProtocol(asyncio.Protocol):
    """HTTP/1.1 with keep-alive and pipelining: requests are parsed straight off the buffer."""

    def __init__(self, timings: Timings) -> None:
        self.timings = timings
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while self._serve_one():
            pass

    def _serve_one(self) -> bool:
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0 or self.transport is None:
            return False
        started = time.perf_counter()
        head = self.buffer[:end].decode("latin-1").split("\r\n")
        length = 0
        for line in head[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length":
                length = int(value.strip())
        if len(self.buffer) < end + 4 + length:
            return False
        body = self.buffer[end + 4 : end + 4 + length]
        self.buffer = self.buffer[end + 4 + length :]
        method, target, _ = [*head[0].split(" "), "", ""][:3]
        out = route(method, target, body, self.timings)
        self.transport.write(out)
        if not target.startswith("/stats"):
            self.timings.add(time.perf_counter() - started)
        return True


async def serve() -> None:
    """Listen on an ephemeral loopback port, announce it, serve until SIGTERM or stdin closes."""
    loop = asyncio.get_running_loop()
    timings = Timings()
    server = await loop.create_server(lambda: StubProtocol(timings), "127.0.0.1", 0)
    await serve_until_stopped(server, server.sockets[0].getsockname()[1])


async def serve_until_stopped(server: asyncio.Server, port: int) -> None:
    """A child server's life: announce its port on stdout (`loopback_process` reads it), serve until
    SIGTERM, SIGINT or the parent's end of stdin closes."""
    loop = asyncio.get_running_loop()
    print(f"PORT {port}", flush=True)
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    loop.add_reader(sys.stdin.fileno(), lambda: stop.set() if not sys.stdin.buffer.read1(1) else None)
    async with server:
        await stop.wait()


@dataclass(frozen=True)
class Stub:
    base_url: str  # http://127.0.0.1:PORT

    @property
    def openai_base(self) -> str:
        return f"{self.base_url}/v1"

    @property
    def searx_base(self) -> str:
        return self.base_url


@contextmanager
def loopback_process(module: str, what: str) -> Iterator[str]:
    """`python -m module` in a child process, which prints `PORT <n>` once it listens on 127.0.0.1;
    yields its base URL and stops it (by its own pid) when the block ends. Its stdin is a pipe: the
    child exits when the parent dies and the pipe closes."""
    process = subprocess.Popen(
        [sys.executable, "-m", module], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        line = process.stdout.readline() if process.stdout else ""
        if not line.startswith("PORT "):
            raise RuntimeError(f"the {what} did not start (said {line!r})")
        yield f"http://127.0.0.1:{int(line.split()[1])}"
    finally:
        stop_process(process, 10)


@contextmanager
def stub_process() -> Iterator[Stub]:
    """The stub server in a child process."""
    with loopback_process("mcp_router.bench.stubs", "provider stub") as base_url:
        yield Stub(base_url=base_url)


def stop_process(process: subprocess.Popen, timeout_s: float) -> None:
    """Terminate a child and wait for it; kill it if it has not gone within `timeout_s`."""
    process.terminate()
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def stub_stats(stub: Stub) -> dict[str, Any]:
    """The stub's own handling times since the last read (and resets them)."""
    import httpx

    return httpx.get(f"{stub.base_url}/stats", timeout=10).json()


if __name__ == "__main__":
    asyncio.run(serve())
