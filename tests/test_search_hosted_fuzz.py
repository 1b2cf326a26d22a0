"""Property tests for the hosted web-search adapters: whatever comes back, only `ProviderError`s escape.

Arbitrary JSON (three times out of four shaped like the provider's answer) goes to each adapter's `parse`;
arbitrary statuses, `Retry-After` values and body bytes go through the full `call`, with respx in place of
the network. A successful parse must give well-formed hits, and no error may carry the API key.
"""

from __future__ import annotations

import json
import math
from typing import Any

import anyio
import httpx
import respx
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from providers import ProviderError, RateLimited, create_adapter
from providers.types import SearchHit, SearchRequest
from tests.providers_support import FAKE_KEY, all_text, json_values_of, make_env, shape_or_anything, spec

PARSE_SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
CALL_SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

TYPES = ["brave", "tavily", "exa", "serper", "serpapi", "searxng", "jina", "kagi"]

# ------------------------------------------------------------------------------------------- strategies

json_text = st.text(alphabet=st.characters(exclude_categories=()), max_size=30) | st.sampled_from(
    [
        "",
        "<strong>x</strong>",
        "&amp;&lt;&#39;",
        FAKE_KEY,
        f"Invalid API key {FAKE_KEY}",
        "Your account has run out of searches.",
        "Google hasn't returned any results for this query.",
        "Insufficient credit",
        "https://example.org/a",
    ]
)
json_values = json_values_of(json_text)
maybe = shape_or_anything(json_values)


def items(url: str = "url", snippet: str = "snippet", **extra: st.SearchStrategy) -> st.SearchStrategy:
    return st.lists(
        maybe(
            st.fixed_dictionaries(
                {url: maybe(json_text)},
                optional={"title": maybe(json_text), snippet: maybe(json_text), **extra},
            )
        ),
        max_size=4,
    )


def body(required: dict[str, st.SearchStrategy], **optional: st.SearchStrategy) -> st.SearchStrategy:
    return st.fixed_dictionaries({k: maybe(v) for k, v in required.items()}, optional=optional)


errors = st.lists(st.fixed_dictionaries({"msg": maybe(json_text), "code": json_values}), max_size=2)
BODIES: dict[str, st.SearchStrategy] = {
    "brave": body({"web": body({"results": items(snippet="description")})}, type=maybe(st.just("search"))),
    "tavily": body({"results": items(snippet="content")}, answer=json_values),
    "exa": body(
        {"results": items(snippet="text", highlights=maybe(st.lists(maybe(json_text), max_size=3)))},
        costDollars=json_values,
    ),
    "serper": body({"organic": items(url="link")}, searchParameters=json_values),
    "serpapi": body(
        {"organic_results": items(url="link")}, search_metadata=json_values, error=maybe(json_text)
    ),
    "searxng": body(
        {"results": items(snippet="content")},
        unresponsive_engines=maybe(st.lists(st.lists(maybe(json_text), max_size=2), max_size=3)),
    ),
    "jina": body({"data": items(snippet="description")}, code=json_values),
    "kagi": st.one_of(
        body({"data": items(t=st.sampled_from([0, 1, 0.0, True, "0"]))}, error=maybe(errors)),
        body({"data": body({"search": items()})}),
    ),
}

statuses = st.sampled_from([200, 200, 200, 204, 400, 401, 402, 403, 404, 422, 429, 432, 433, 500, 502, 503])
statuses = statuses | st.integers(min_value=100, max_value=599)
header_values = st.binary(max_size=40).filter(lambda b: b"\r" not in b and b"\n" not in b) | st.sampled_from(
    [b"0", b"120", b"-5", b"1e400", b"inf", b"nan", b"Wed, 21 Oct 2015 07:28:00 GMT"]
)
content_types = st.sampled_from([b"application/json", b"text/html; charset=utf-8", b"text/plain"])


def dumps(value: Any) -> bytes:
    return json.dumps(value, allow_nan=True).encode()


contents = st.one_of(
    st.binary(max_size=200),
    st.sampled_from(TYPES).flatmap(lambda t: BODIES[t]).map(dumps),
    json_values.map(dumps),
    st.sampled_from([b"", b"null", b"[" * 5000, b"\xef\xbb\xbf{}", dumps({"error": f"bad key {FAKE_KEY}"})]),
)

# ---------------------------------------------------------------------------------------------- helpers


def make(type_: str, env: Any = None) -> Any:
    fields: dict[str, Any] = {"timeout_s": 5.0}
    if type_ == "searxng":
        fields["base_url"] = "http://127.0.0.1:8888"
    else:
        fields["api_key"] = FAKE_KEY
    return create_adapter(spec(type_, f"{type_}-arm", **fields), env)  # parse needs no env


def check_error(exc: ProviderError, type_: str) -> None:
    """A ProviderError with a message; the key the adapter holds appears nowhere (searxng holds none)."""
    assert isinstance(exc.message, str) and exc.message
    if type_ != "searxng":
        assert FAKE_KEY not in all_text(exc)
    if isinstance(exc, RateLimited) and exc.retry_after is not None:
        assert 0.0 <= exc.retry_after < math.inf


def check_hits(hits: Any, type_: str, k: int) -> None:
    assert isinstance(hits, list) and len(hits) <= k
    for hit in hits:
        assert isinstance(hit, SearchHit) and hit.source == type_
        assert all(isinstance(v, str) for v in (hit.title, hit.url, hit.snippet))
        assert "<strong>" not in hit.snippet
        for text in (hit.title, hit.url, hit.snippet):
            text.encode("utf-8")  # no lone surrogates


# ---------------------------------------------------------------------------------------------- parsers


@PARSE_SETTINGS
@given(data=st.data(), type_=st.sampled_from(TYPES))
def test_parse_raises_only_provider_errors(data: st.DataObject, type_: str) -> None:
    value = data.draw(st.one_of(BODIES[type_], BODIES[type_], json_values), label="body")
    try:
        hits = make(type_).parse(value, 3)
    except ProviderError as exc:
        check_error(exc, type_)
    else:
        check_hits(hits, type_, 3)


# ------------------------------------------------------------------------------ full calls over the wire


def serve(type_: str, status: int, headers: list[tuple[bytes, bytes]], content: bytes) -> Any:
    async def go() -> Any:
        async with httpx.AsyncClient() as client:
            target = make(type_, make_env(client))
            with respx.mock() as router:
                router.route().mock(return_value=httpx.Response(status, headers=headers, content=content))
                try:
                    return await target.call(SearchRequest("fuzz", k=3, freshness="week"))
                except ProviderError as exc:
                    return exc

    return anyio.run(go)


@CALL_SETTINGS
@given(
    type_=st.sampled_from(TYPES),
    status=statuses,
    retry_after=st.none() | header_values,
    content_type=content_types,
    content=contents,
)
@example(type_="tavily", status=432, retry_after=None, content_type=b"application/json", content=b"[" * 5000)
@example(
    type_="serpapi",
    status=429,
    retry_after=b"1e400",
    content_type=b"application/json",
    content=dumps({"error": f"Your account has run out of searches {FAKE_KEY}"}),
)
@example(
    type_="kagi",
    status=401,
    retry_after=None,
    content_type=b"application/json",
    content=dumps({"error": [{"msg": "k" * 195 + FAKE_KEY}]}),
)
@example(type_="searxng", status=403, retry_after=None, content_type=b"text/html", content=b"<html>")
def test_full_call_raises_only_provider_errors(
    type_: str, status: int, retry_after: bytes | None, content_type: bytes, content: bytes
) -> None:
    headers = [(b"content-type", content_type)]
    if retry_after is not None:
        headers.append((b"retry-after", retry_after))
    outcome = serve(type_, status, headers, content)
    if isinstance(outcome, ProviderError):
        check_error(outcome, type_)
        if not 200 <= status < 300:
            assert f"HTTP {status}" in outcome.message
    else:
        assert 200 <= status < 300
        check_hits(outcome, type_, 3)
