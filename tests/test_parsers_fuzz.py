"""Property tests: whatever a provider sends back, only `ProviderError` subclasses leave an HTTP adapter.

Arbitrary JSON values go to the parsers (`WikipediaSearch.parse`, `OpenAIChat.parse`,
`DuckDuckGoSearch.parse`); arbitrary status codes, headers and body bytes go through the full `call`,
with respx in place of the network. A successful parse is fine too, if its result has the promised shape.
"""

from __future__ import annotations

import json
import math
from typing import Any

import anyio
import httpx
import pytest
import respx
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from providers import ProviderError, RateLimited
from providers.http import parse_retry_after
from providers.llm.openai import OpenAIChat
from providers.search.ddgs import DuckDuckGoSearch
from providers.search.wikipedia import WikipediaSearch
from providers.types import ChatMessage, Completion, CompletionRequest, SearchHit, SearchRequest
from tests.providers_support import FAKE_KEY, all_text, json_values_of, make_env, shape_or_anything, spec

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
CALL_SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# ------------------------------------------------------------------------------------------- strategies

# json.loads produces lone surrogates from "\ud800" escapes, so the text strategy includes them.
json_text = st.text(alphabet=st.characters(exclude_categories=()), max_size=30) | st.sampled_from(
    ["", '<span class="searchmatch">x</span>', "&amp;&lt;&#039;", "insufficient_quota", FAKE_KEY]
)
json_ints = st.integers() | st.sampled_from([0, -1, 2**31, 2**63, 10**20, 10**400])
json_floats = st.floats(allow_nan=True, allow_infinity=True)
json_values = json_values_of(json_text, json_ints, json_floats)
maybe = shape_or_anything(json_values)


wiki_items = maybe(
    st.fixed_dictionaries(
        {"title": maybe(json_text)},
        optional={"ns": json_values, "pageid": maybe(json_ints), "snippet": maybe(json_text)},
    )
)
wiki_errors = maybe(st.fixed_dictionaries({}, optional={"code": maybe(json_text), "info": maybe(json_text)}))
wiki_results = st.fixed_dictionaries(
    {
        "query": maybe(
            st.fixed_dictionaries(
                {"search": maybe(st.lists(wiki_items, max_size=4))}, optional={"searchinfo": json_values}
            )
        )
    },
    optional={"batchcomplete": json_values, "continue": json_values},
)
wiki_bodies = st.one_of(
    wiki_results, wiki_results, st.fixed_dictionaries({"error": wiki_errors}), json_values
)

token_counts = maybe(json_ints)
openai_messages = maybe(
    st.fixed_dictionaries({"content": maybe(st.none() | json_text)}, optional={"role": maybe(json_text)})
)
openai_choices = maybe(
    st.fixed_dictionaries({"message": openai_messages}, optional={"finish_reason": maybe(json_text)})
)
openai_results = st.fixed_dictionaries(
    {"choices": maybe(st.lists(openai_choices, min_size=1, max_size=3))},
    optional={
        "usage": maybe(
            st.fixed_dictionaries(
                {}, optional={"prompt_tokens": token_counts, "completion_tokens": token_counts}
            )
        ),
        "model": maybe(json_text),
        "object": json_values,
    },
)
openai_bodies = st.one_of(
    openai_results, openai_results, st.fixed_dictionaries({"error": json_values}), json_values
)


def dumps(value: Any) -> bytes:
    """JSON as a (lenient) server would send it: NaN/Infinity allowed, lone surrogates escaped."""
    return json.dumps(value, allow_nan=True).encode()


bodies = st.one_of(
    st.binary(max_size=200),
    openai_bodies.map(dumps),
    wiki_bodies.map(dumps),
    st.sampled_from([b"", b"null", b"[" * 5000, b'{"a":' * 3000, b"\xef\xbb\xbf{}", b"\x00" * 8]),
)
statuses = st.sampled_from(
    [200, 200, 200, 201, 204, 301, 400, 401, 402, 403, 404, 408, 409, 422, 429, 500, 503]
)
statuses = statuses | st.integers(min_value=100, max_value=599)
header_values = st.binary(max_size=40).filter(lambda b: b"\r" not in b and b"\n" not in b) | st.sampled_from(
    [
        b"0",
        b"120",
        b"-5",
        b"1e400",
        b"inf",
        b"nan",
        b"Wed, 21 Oct 2015 07:28:00 GMT",
        b"Fri, 31 Dec 9999 23:59:59 GMT",
    ]
)
content_types = st.sampled_from(
    [b"application/json", b"text/html; charset=utf-8", b"text/plain", b"application/json; charset=latin-1"]
)

# ---------------------------------------------------------------------------------------------- helpers


def wikipedia() -> WikipediaSearch:
    return WikipediaSearch(spec("wikipedia", "wiki"), None)  # type: ignore[arg-type]  # parse needs no env


def openai() -> OpenAIChat:
    return OpenAIChat(
        spec(
            "openai",
            "openai",
            model="gpt-4o-mini",
            api_key=FAKE_KEY,
            input_cost_per_token=1.5e-7,
            output_cost_per_token=6e-7,
        ),
        None,  # type: ignore[arg-type]
    )


def check_error(exc: ProviderError, secret: str | None = None) -> None:
    """A ProviderError with a message; `secret` (the key the adapter sent) appears nowhere in it."""
    assert isinstance(exc.message, str) and exc.message
    if secret is not None:
        assert secret not in all_text(exc)
    if isinstance(exc, RateLimited) and exc.retry_after is not None:
        assert 0.0 <= exc.retry_after < math.inf


def check_hits(hits: Any) -> None:
    assert isinstance(hits, list)
    for hit in hits:
        assert isinstance(hit, SearchHit)
        assert all(isinstance(v, str) for v in (hit.title, hit.url, hit.snippet, hit.source))
        assert "<span" not in hit.snippet


def check_completion(result: Any) -> None:
    assert isinstance(result, Completion)
    assert isinstance(result.text, str) and isinstance(result.model, str) and result.model
    assert isinstance(result.usage.prompt_tokens, int) and result.usage.prompt_tokens >= 0
    assert isinstance(result.usage.completion_tokens, int) and result.usage.completion_tokens >= 0
    assert math.isfinite(result.cost_usd) and result.cost_usd >= 0
    assert result.finish_reason is None or isinstance(result.finish_reason, str)


# ---------------------------------------------------------------------------------------------- parsers


@SETTINGS
@given(body=wiki_bodies)
@example(body={"query": {"search": [{"title": "Lone \ud800 surrogate", "snippet": "x"}]}})
@example(body={"error": {"code": ["ratelimited"], "info": None}})
@example(body={"error": "ratelimited"})
def test_wikipedia_parse_raises_only_provider_errors(body: Any) -> None:
    try:
        hits = wikipedia().parse(body)
    except ProviderError as exc:
        check_error(exc)
    else:
        check_hits(hits)


@SETTINGS
@given(body=openai_bodies)
@example(body={"choices": [{"message": {"content": "x"}}], "usage": {"prompt_tokens": 10**400}})
@example(body={"choices": [{"message": {"content": "x"}}], "usage": {"prompt_tokens": True}})
@example(body={"choices": [{"message": {"content": "x"}, "finish_reason": 7}], "model": ""})
def test_openai_parse_raises_only_provider_errors(body: Any) -> None:
    try:
        result = openai().parse(body)
    except ProviderError as exc:
        check_error(exc, FAKE_KEY)
    else:
        check_completion(result)


@SETTINGS
@given(
    rows=maybe(
        st.lists(
            maybe(
                st.fixed_dictionaries(
                    {}, optional={"title": json_values, "href": json_values, "body": json_values}
                )
            ),
            max_size=4,
        )
    )
)
def test_ddgs_parse_raises_only_provider_errors(rows: Any) -> None:
    ddgs = DuckDuckGoSearch(spec("ddgs"), None)  # type: ignore[arg-type]
    try:
        hits = ddgs.parse(rows)
    except ProviderError as exc:
        check_error(exc)
    else:
        check_hits(hits)


@SETTINGS
@given(value=st.text(max_size=40) | header_values.map(lambda b: b.decode("latin-1")))
@example(value="inf")
@example(value="1e400")
@example(value="Mon, 01 Jan 0001 00:00:00 -0000")
def test_parse_retry_after_is_none_or_finite_seconds(value: str) -> None:
    result = parse_retry_after(value)
    assert result is None or (isinstance(result, float) and 0.0 <= result < math.inf)


# ------------------------------------------------------------------------------ full calls over the wire

WIKI_API = "https://en.wikipedia.org/w/api.php"
OPENAI_API = "https://api.openai.com/v1/chat/completions"


def serve(type_: str, status: int, headers: list[tuple[bytes, bytes]], content: bytes) -> Any:
    """Run one real adapter call against a respx-served response; return the result or the ProviderError."""

    async def go() -> Any:
        async with httpx.AsyncClient() as client:
            env = make_env(client)
            if type_ == "wikipedia":
                target: Any = WikipediaSearch(spec("wikipedia", "wiki", timeout_s=5.0), env)
                request: Any = SearchRequest("fuzz", k=3)
            else:
                target = OpenAIChat(
                    spec(
                        "openai",
                        "openai",
                        model="gpt-4o-mini",
                        api_key=FAKE_KEY,
                        timeout_s=5.0,
                        input_cost_per_token=1.5e-7,
                        output_cost_per_token=6e-7,
                    ),
                    env,
                )
                request = CompletionRequest((ChatMessage("user", "hi"),), max_tokens=4)
            with respx.mock() as router:
                router.route().mock(return_value=httpx.Response(status, headers=headers, content=content))
                try:
                    return await target.call(request)
                except ProviderError as exc:
                    return exc

    return anyio.run(go)


@CALL_SETTINGS
@given(
    type_=st.sampled_from(["wikipedia", "openai"]),
    status=statuses,
    retry_after=st.none() | header_values,
    content_type=content_types,
    content=bodies,
)
@example(type_="openai", status=200, retry_after=None, content_type=b"application/json", content=b"[" * 5000)
@example(type_="openai", status=429, retry_after=None, content_type=b"application/json", content=b"[" * 5000)
@example(type_="wikipedia", status=503, retry_after=b"1e400", content_type=b"text/html", content=b"<html>")
@example(
    type_="openai",
    status=401,
    retry_after=None,
    content_type=b"application/json",
    content=json.dumps({"error": {"message": f"bad key {FAKE_KEY}" + "x" * 300}}).encode(),
)
@example(
    type_="openai",
    status=400,
    retry_after=None,
    content_type=b"application/json",
    content=json.dumps({"error": {"message": "y" * 190 + FAKE_KEY}}).encode(),
)
def test_full_call_raises_only_provider_errors(
    type_: str, status: int, retry_after: bytes | None, content_type: bytes, content: bytes
) -> None:
    headers = [(b"content-type", content_type)]
    if retry_after is not None:
        headers.append((b"retry-after", retry_after))
    outcome = serve(type_, status, headers, content)
    if isinstance(outcome, ProviderError):
        check_error(outcome, FAKE_KEY if type_ == "openai" else None)
        if not 200 <= status < 300:
            assert f"HTTP {status}" in outcome.message
    elif type_ == "wikipedia":
        assert 200 <= status < 300
        check_hits(outcome)
    else:
        assert 200 <= status < 300
        check_completion(outcome)


@pytest.mark.parametrize("type_", ["wikipedia", "openai"])
@pytest.mark.parametrize("status", [200, 429, 500])
def test_deeply_nested_json_body_is_a_provider_error(type_: str, status: int) -> None:
    """Valid JSON nested deeper than the recursion limit: json.loads raises RecursionError, not ValueError."""
    deep = b"[" * 100_000 + b"]" * 100_000
    outcome = serve(type_, status, [(b"content-type", b"application/json")], deep)
    assert isinstance(outcome, ProviderError)
    check_error(outcome, FAKE_KEY if type_ == "openai" else None)
