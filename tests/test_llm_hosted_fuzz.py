"""Property tests for the `anthropic`, `gemini` and `ollama` adapters: whatever comes back, only
`ProviderError` subclasses escape, and a successful result has the promised shape.

Arbitrary JSON goes to each parser; arbitrary status codes, `Retry-After` values and body bytes go through
the full `call` with respx in place of the network.
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

from providers import ProviderError, RateLimited
from providers.llm.anthropic import AnthropicChat
from providers.llm.gemini import GeminiChat, retry_delay
from providers.llm.ollama import OllamaChat
from providers.llm.openai import OpenAIChat
from providers.types import ChatMessage, Completion, CompletionRequest
from tests.providers_support import FAKE_KEY, all_text, json_values_of, make_env, shape_or_anything, spec

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
CALL_SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
TYPES = {"anthropic": AnthropicChat, "gemini": GeminiChat, "ollama": OllamaChat, "openai": OpenAIChat}
REQUEST = CompletionRequest((ChatMessage("user", "hi"),), max_tokens=4)

json_text = st.text(alphabet=st.characters(exclude_categories=()), max_size=20) | st.sampled_from(
    ["", "text", "error", "SAFETY", "STOP", "overloaded_error", "rate_limit_error", FAKE_KEY]
)
json_ints = st.integers() | st.sampled_from([0, -1, 2**53, 10**400])
json_values = json_values_of(json_text, json_ints, st.floats())
maybe = shape_or_anything(json_values)


counts = maybe(json_ints)
anthropic_bodies = maybe(
    st.fixed_dictionaries(
        {
            "content": maybe(
                st.lists(
                    maybe(
                        st.fixed_dictionaries(
                            {"type": maybe(st.sampled_from(["text", "tool_use"]))},
                            optional={"text": maybe(json_text)},
                        )
                    ),
                    max_size=3,
                )
            )
        },
        optional={
            "type": maybe(st.sampled_from(["message", "error"])),
            "error": json_values,
            "usage": maybe(
                st.fixed_dictionaries({}, optional={"input_tokens": counts, "output_tokens": counts})
            ),
            "stop_reason": json_values,
            "model": json_values,
        },
    )
)
gemini_parts = maybe(st.fixed_dictionaries({}, optional={"text": maybe(json_text), "thought": json_values}))
gemini_bodies = maybe(
    st.fixed_dictionaries(
        {},
        optional={
            "candidates": maybe(
                st.lists(
                    maybe(
                        st.fixed_dictionaries(
                            {},
                            optional={
                                "content": maybe(
                                    st.fixed_dictionaries({"parts": maybe(st.lists(gemini_parts))})
                                ),
                                "finishReason": maybe(
                                    st.sampled_from(["STOP", "MAX_TOKENS", "SAFETY", "OTHER"])
                                ),
                            },
                        )
                    ),
                    max_size=2,
                )
            ),
            "promptFeedback": maybe(st.fixed_dictionaries({}, optional={"blockReason": json_values})),
            "usageMetadata": maybe(
                st.fixed_dictionaries(
                    {},
                    optional={
                        "promptTokenCount": counts,
                        "candidatesTokenCount": counts,
                        "thoughtsTokenCount": counts,
                    },
                )
            ),
            "modelVersion": json_values,
        },
    )
)
ollama_chunks = maybe(
    st.fixed_dictionaries(
        {},
        optional={
            "message": maybe(st.fixed_dictionaries({}, optional={"content": maybe(json_text)})),
            "done": maybe(st.booleans()),
            "done_reason": json_values,
            "prompt_eval_count": counts,
            "eval_count": counts,
            "error": json_values,
            "model": json_values,
        },
    )
)
ollama_streams = st.lists(ollama_chunks, max_size=5)
sse_chunks = maybe(
    st.fixed_dictionaries(
        {},
        optional={
            "choices": maybe(
                st.lists(
                    maybe(
                        st.fixed_dictionaries(
                            {},
                            optional={
                                "delta": maybe(
                                    st.fixed_dictionaries({}, optional={"content": maybe(json_text)})
                                ),
                                "finish_reason": maybe(st.sampled_from(["stop", "length"])),
                            },
                        )
                    ),
                    max_size=2,
                )
            ),
            "usage": maybe(
                st.fixed_dictionaries({}, optional={"prompt_tokens": counts, "completion_tokens": counts})
            ),
            "error": json_values,
            "model": json_values,
        },
    )
)
sse_lines = st.lists(
    st.one_of(
        sse_chunks.map(lambda c: "data: " + json.dumps(c, allow_nan=True)),
        st.sampled_from(["", ": ping", "event: message", "data: [DONE]", "data: {", "data:"]),
        json_text,
    ),
    max_size=6,
)


def dumps(value: Any) -> bytes:
    return json.dumps(value, allow_nan=True).encode()


def ndjson(chunks: list[Any]) -> bytes:
    return b"".join(dumps(c) + b"\n" for c in chunks)


bodies = st.one_of(
    st.binary(max_size=200),
    anthropic_bodies.map(dumps),
    gemini_bodies.map(dumps),
    ollama_streams.map(ndjson),
    sse_lines.map(lambda lines: "\n\n".join(lines).encode("utf-8", "surrogatepass")),
    st.sampled_from(
        [b"", b"null", b"[" * 5000, b'{"a":' * 3000, b"\xef\xbb\xbf{}", b"\x00" * 8, b"\xff\n{}"]
    ),
)
statuses = st.sampled_from([200, 200, 200, 400, 401, 403, 404, 429, 500, 503, 529]) | st.integers(100, 599)
header_values = st.binary(max_size=40).filter(lambda b: b"\r" not in b and b"\n" not in b) | st.sampled_from(
    [b"0", b"120", b"-5", b"1e400", b"nan", b"Wed, 21 Oct 2015 07:28:00 GMT"]
)
content_types = st.sampled_from(
    [b"application/json", b"application/x-ndjson", b"text/html; charset=utf-8", b"text/plain; charset=bogus"]
)


def make(type_: str, env: Any = None) -> Any:
    return TYPES[type_](
        spec(
            type_,
            type_,
            model="some-model",
            api_key=FAKE_KEY,
            timeout_s=5.0,
            input_cost_per_token=3e-6,
            output_cost_per_token=1.5e-5,
            options={"stream": True} if type_ == "openai" else {},
        ),
        env,
    )


def check_error(exc: ProviderError) -> None:
    assert isinstance(exc.message, str) and exc.message
    assert FAKE_KEY not in all_text(exc)
    if isinstance(exc, RateLimited) and exc.retry_after is not None:
        assert 0.0 <= exc.retry_after < math.inf


def check_completion(result: Any) -> None:
    assert isinstance(result, Completion)
    assert isinstance(result.text, str) and isinstance(result.model, str) and result.model
    result.text.encode("utf-8")  # no lone surrogates
    assert type(result.usage.prompt_tokens) is int and result.usage.prompt_tokens >= 0
    assert type(result.usage.completion_tokens) is int and result.usage.completion_tokens >= 0
    assert math.isfinite(result.cost_usd) and result.cost_usd >= 0
    assert result.finish_reason is None or isinstance(result.finish_reason, str)


def parse_outcome(type_: str, body: Any) -> None:
    try:
        result = make(type_).parse(body)
    except ProviderError as exc:
        check_error(exc)
    else:
        check_completion(result)


@SETTINGS
@given(body=anthropic_bodies)
@example(body={"type": "error", "error": {"type": "rate_limit_error", "message": FAKE_KEY}})
@example(body={"content": [{"type": "text", "text": "\ud800"}], "usage": {"input_tokens": 10**400}})
def test_anthropic_parse_raises_only_provider_errors(body: Any) -> None:
    parse_outcome("anthropic", body)


@SETTINGS
@given(body=gemini_bodies)
@example(body={"promptFeedback": {"blockReason": "SAFETY"}, "usageMetadata": {"thoughtsTokenCount": True}})
@example(body={"candidates": [{"finishReason": "SAFETY", "content": 7}]})
def test_gemini_parse_raises_only_provider_errors(body: Any) -> None:
    parse_outcome("gemini", body)


@SETTINGS
@given(chunks=ollama_streams)
@example(chunks=[{"error": FAKE_KEY}])
@example(chunks=[{"done": True, "eval_count": 2**53}])
def test_ollama_parse_raises_only_provider_errors(chunks: list[Any]) -> None:
    parse_outcome("ollama", chunks)


@SETTINGS
@given(lines=sse_lines)
@example(lines=['data: {"error": "sk-test-SECRET123"}'])
@example(lines=['data: {"choices": [{"delta": {"content": "x"}, "finish_reason": "stop"}]}'])
def test_openai_stream_parse_raises_only_provider_errors(lines: list[str]) -> None:
    try:
        result = make("openai").parse_stream(lines, REQUEST)
    except ProviderError as exc:
        check_error(exc)
    else:
        check_completion(result)


@SETTINGS
@given(body=json_values | st.fixed_dictionaries({"error": st.fixed_dictionaries({"details": json_values})}))
@example(body={"error": {"details": [{"@type": "google.rpc.RetryInfo", "retryDelay": "9" * 12 + "s"}]}})
def test_gemini_retry_delay_is_none_or_finite(body: Any) -> None:
    delay = retry_delay(body)
    assert delay is None or 0.0 <= delay < math.inf


def serve(type_: str, status: int, headers: list[tuple[bytes, bytes]], content: bytes) -> Any:
    async def go() -> Any:
        async with httpx.AsyncClient() as client:
            target = make(type_, make_env(client))
            with respx.mock() as router:
                router.route().mock(return_value=httpx.Response(status, headers=headers, content=content))
                try:
                    return await target.call(REQUEST)
                except ProviderError as exc:
                    return exc

    return anyio.run(go)


@CALL_SETTINGS
@given(
    type_=st.sampled_from(sorted(TYPES)),
    status=statuses,
    retry_after=st.none() | header_values,
    content_type=content_types,
    content=bodies,
)
@example(type_="gemini", status=429, retry_after=None, content_type=b"application/json", content=b"[" * 5000)
@example(type_="ollama", status=200, retry_after=None, content_type=b"application/json", content=b"[" * 5000)
@example(
    type_="anthropic",
    status=401,
    retry_after=None,
    content_type=b"application/json",
    content=dumps({"type": "error", "error": {"type": "x", "message": "y" * 190 + FAKE_KEY}}),
)
@example(
    type_="ollama",
    status=200,
    retry_after=None,
    content_type=b"application/x-ndjson",
    content=ndjson([{"error": "z" * 190 + FAKE_KEY}]),
)
def test_full_call_raises_only_provider_errors(
    type_: str, status: int, retry_after: bytes | None, content_type: bytes, content: bytes
) -> None:
    headers = [(b"content-type", content_type)]
    if retry_after is not None:
        headers.append((b"retry-after", retry_after))
    outcome = serve(type_, status, headers, content)
    if isinstance(outcome, ProviderError):
        check_error(outcome)
        if not 200 <= status < 300:
            assert f"HTTP {status}" in outcome.message
    else:
        assert 200 <= status < 300
        check_completion(outcome)
