"""No key leaves its origin: every HTTP adapter, against a real loopback server that redirects.

The first server answers each request with a 301/302/307/308 to a second loopback server on another
port (another origin), which records whatever reaches it. The real adapters run with a fake key: the
redirect must be refused before anything is sent there (so no header, query parameter or body carrying
the key can leak), with an `Unavailable` that names the provider and the target's origin only. A
redirect within the origin is followed, credentials included, since they go nowhere new.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest

from providers import ProviderEnv, Unavailable, create_adapter, known_types
from providers.retrieve import _remote
from providers.types import ChatMessage, CompletionRequest, RetrieveRequest, SearchRequest
from tests.providers_support import (
    FAKE_KEY,
    Answer,
    Loopback,
    Seen,
    all_text,
    json_answer,
    loopback,
    provider_env,
    spec,
)

pytestmark = pytest.mark.anyio

REDIRECTS = (301, 302, 307, 308)
SEARCH = SearchRequest(query="coffee", k=1)
RETRIEVE = RetrieveRequest(query="coffee", collection="docs", k=1)
COMPLETE = CompletionRequest(messages=(ChatMessage("user", "Say OK."),), max_tokens=4)
# what the key looks like on the wire when it is a Basic password (OpenSearch)
BASIC = base64.b64encode(f"admin:{FAKE_KEY}".encode()).decode()
# adapter types that speak no HTTP of their own: local indexes, llama.cpp in process, ddgs, PostgreSQL
NOT_HTTP = {"bm25", "dense", "hybrid", "llamacpp", "ddgs", "pgvector"}


@dataclass(frozen=True)
class Case:
    """One adapter configuration: `path` is appended to the server's origin to make its `base_url`."""

    type: str
    request: Any
    path: str = ""
    keyed: bool = True
    fields: dict[str, Any] = field(default_factory=dict)

    def adapter(self, env: ProviderEnv, origin: str) -> Any:
        key = FAKE_KEY if self.keyed else None
        return create_adapter(spec(self.type, api_key=key, base_url=origin + self.path, **self.fields), env)


CASES = {
    "brave": Case("brave", SEARCH, "/res/v1/web/search"),
    "tavily": Case("tavily", SEARCH, "/search"),
    "exa": Case("exa", SEARCH, "/search"),
    "serper": Case("serper", SEARCH, "/search"),
    "serpapi": Case("serpapi", SEARCH, "/search.json"),
    "jina": Case("jina", SEARCH, "/"),
    "kagi-v0": Case("kagi", SEARCH, "/api/v0/search"),
    "kagi-v1": Case("kagi", SEARCH, "/api/v1/search", fields={"options": {"api_version": "v1"}}),
    "searxng": Case("searxng", SEARCH, keyed=False),
    "wikipedia": Case("wikipedia", SEARCH, "/w/api.php", keyed=False),
    "openai": Case("openai", COMPLETE, "/v1", fields={"model": "gpt-test"}),
    "openai-stream": Case(
        "openai", COMPLETE, "/v1", fields={"model": "gpt-test", "options": {"stream": True}}
    ),
    "anthropic": Case("anthropic", COMPLETE, fields={"model": "claude-test"}),
    "gemini": Case("gemini", COMPLETE, fields={"model": "gemini-test"}),
    "ollama": Case("ollama", COMPLETE, fields={"model": "llama-test"}),
    "chroma": Case("chroma", RETRIEVE, fields={"options": {"collection_id": "c0ffee"}}),
    "qdrant": Case("qdrant", RETRIEVE),
    "elasticsearch": Case("elasticsearch", RETRIEVE),
    "opensearch": Case("opensearch", RETRIEVE, fields={"options": {"username": "admin"}}),
}


def carries_key(seen: Sequence[Seen]) -> bool:
    return any(FAKE_KEY in s.text() or BASIC in s.text() for s in seen)


@pytest.fixture(autouse=True)
def _embedder(monkeypatch: pytest.MonkeyPatch) -> None:
    """Remote vector stores embed the query locally: a fixed vector spares loading MiniLM."""
    monkeypatch.setattr(_remote, "embed_texts", lambda texts: np.ones((len(texts), 384), dtype=np.float32))


@pytest.fixture
async def env() -> AsyncIterator[ProviderEnv]:
    async with provider_env() as environment:
        yield environment


@pytest.fixture(scope="module")
def elsewhere() -> Iterator[Loopback]:
    """The other origin: records every request and answers 200 `{}`."""
    with loopback(lambda seen: json_answer({})) as server:
        yield server


def redirect_to(target: str, status: int) -> Callable[[Seen], Answer]:
    return lambda seen: (status, {"Location": target}, b"")


def test_every_http_adapter_type_has_a_case() -> None:
    """A new HTTP adapter must join the cases below, so its keys are checked too."""
    assert {case.type for case in CASES.values()} == set(known_types()) - NOT_HTTP


@pytest.mark.parametrize("status", REDIRECTS)
@pytest.mark.parametrize("name", list(CASES))
async def test_cross_origin_redirect_is_refused_before_anything_is_sent(
    env: ProviderEnv, elsewhere: Loopback, name: str, status: int
) -> None:
    case = CASES[name]
    before = len(elsewhere.seen)
    with (
        loopback(redirect_to(f"{elsewhere.url}/landing?next=1", status)) as home,
        pytest.raises(Unavailable) as caught,
    ):
        await case.adapter(env, home.url).call(case.request)
    assert caught.value.provider == case.type
    assert caught.value.message == (
        f"refused an HTTP {status} redirect to another origin ({elsewhere.url}): credentials go only to "
        "the origin of the configured endpoint"
    )
    assert len(home.seen) == 1 and carries_key(home.seen) == case.keyed  # the key went to its origin
    assert elsewhere.seen[before:] == []  # and nothing at all went to the other one
    assert not carries_key(elsewhere.seen)
    text = all_text(caught.value)
    assert FAKE_KEY not in text and "landing" not in text and "next=1" not in text


@pytest.mark.parametrize("name", ["brave", "serpapi", "anthropic", "ollama"])
async def test_redirect_to_another_scheme_on_the_same_host_and_port_is_refused(
    env: ProviderEnv, name: str
) -> None:
    """`https://` on the same host and port is still another origin; nothing is sent (no TLS attempt)."""
    case = CASES[name]

    def respond(seen: Seen) -> Answer:
        return 308, {"Location": f"https://127.0.0.1:{port}/secure"}, b""

    with loopback(respond) as home:
        port = home.url.rsplit(":", 1)[1]
        with pytest.raises(Unavailable, match="redirect to another origin") as caught:
            await case.adapter(env, home.url).call(case.request)
    assert f"(https://127.0.0.1:{port})" in caught.value.message  # not "cannot reach": no TLS attempt
    assert len(home.seen) == 1


async def test_a_key_echoed_into_the_redirect_host_is_masked(env: ProviderEnv, elsewhere: Loopback) -> None:
    """The server was sent the key, so it can name it as the host (which httpx lower-cases)."""
    port = elsewhere.url.rsplit(":", 1)[1]
    before = len(elsewhere.seen)
    with (
        loopback(redirect_to(f"http://{FAKE_KEY}.localhost:{port}/", 302)) as home,
        pytest.raises(Unavailable) as caught,
    ):
        await CASES["brave"].adapter(env, home.url).call(SEARCH)
    assert f"(http://***.localhost:{port})" in caught.value.message
    assert FAKE_KEY.lower() not in all_text(caught.value).lower()
    assert elsewhere.seen[before:] == []


# ---------------------------------------------------------------------------------------- same origin

BRAVE_BODY = {
    "type": "search",
    "web": {"results": [{"title": "T", "url": "https://a.example/", "description": "D"}]},
}
SERPAPI_BODY = {"organic_results": [{"title": "T", "link": "https://a.example/", "snippet": "D"}]}
ANTHROPIC_BODY = {
    "type": "message",
    "model": "claude-test",
    "content": [{"type": "text", "text": "OK"}],
    "stop_reason": "end_turn",
    "usage": {"input_tokens": 3, "output_tokens": 1},
}
OLLAMA_BODY = {"model": "llama-test", "message": {"content": "OK"}, "done": True, "done_reason": "stop"}
FINAL = {"brave": BRAVE_BODY, "serpapi": SERPAPI_BODY, "anthropic": ANTHROPIC_BODY, "ollama": OLLAMA_BODY}


def outcome(result: Any) -> Any:
    """Search hits → their titles; a completion → its text."""
    return [hit.title for hit in result] if isinstance(result, list) else result.text


def moved_within(status: int, body: dict[str, Any]) -> Callable[[Seen], Answer]:
    """Redirect every request outside `/moved` into it (query kept, as real servers do); answer there."""

    def respond(seen: Seen) -> Answer:
        if seen.target.startswith("/moved"):
            return json_answer(body)
        return status, {"Location": "/moved" + seen.target}, b""

    return respond


@pytest.mark.parametrize("status", REDIRECTS)
@pytest.mark.parametrize("name", list(FINAL))
async def test_same_origin_redirect_is_followed_with_its_credentials(
    env: ProviderEnv, name: str, status: int
) -> None:
    case = CASES[name]
    with loopback(moved_within(status, FINAL[name])) as home:
        result = await case.adapter(env, home.url).call(case.request)
    assert outcome(result) == (["T"] if case.request is SEARCH else "OK")
    first, final = home.seen
    assert final.target.startswith("/moved") and carries_key([final])
    if first.method == "POST" and status in (307, 308):  # the method and body survive a 307/308
        assert (final.method, json.loads(final.body)) == ("POST", json.loads(first.body))


async def test_a_redirect_loop_within_the_origin_ends(env: ProviderEnv) -> None:
    with (
        loopback(lambda seen: (302, {"Location": "/again"}, b"")) as home,
        pytest.raises(Unavailable) as caught,
    ):
        await CASES["brave"].adapter(env, home.url).call(SEARCH)
    assert caught.value.message == "more than 5 redirects"
    assert len(home.seen) == 6
