"""Hosted and local LLM adapters (`anthropic`, `gemini`, `ollama`) against recorded bodies via respx.

Bodies follow the documented wire formats (docs/reference providers.md §2.2–§2.4); the adapters are the
real ones, only the network is replaced.
"""

from __future__ import annotations

import json

import httpx
import pytest
import respx

from providers import BadRequest, BadResponse, ProviderEnv, ProviderError, RateLimited, Unavailable
from providers.llm.anthropic import AnthropicChat
from providers.llm.gemini import GeminiChat
from providers.llm.ollama import OllamaChat
from providers.types import ChatMessage, Completion, CompletionRequest, Usage
from tests.providers_support import FAKE_KEY, adapter, all_text

IN_COST = 3e-6
OUT_COST = 1.5e-5
SYSTEM = "You are a concise assistant."
CONVERSATION = CompletionRequest(
    messages=(
        ChatMessage("system", SYSTEM),
        ChatMessage("user", "What is the capital of France?"),
        ChatMessage("assistant", "Paris."),
        ChatMessage("user", "And of Italy? Answer in one sentence."),
    ),
    max_tokens=32,
    temperature=0.2,
)
HTML_PAGE = "<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1></body></html>"


def assert_no_key(exc: BaseException) -> None:
    text = all_text(exc)
    assert FAKE_KEY not in text
    assert "SECRET123" not in text


def html_response(status: int) -> httpx.Response:
    return httpx.Response(status, text=HTML_PAGE, headers={"content-type": "text/html"})


# ------------------------------------------------------------------------------------------- anthropic

ANTHROPIC_URL = "https://api.anthropic.com/v1/messages"


@pytest.fixture
def claude(env: ProviderEnv) -> AnthropicChat:
    return adapter(
        env,
        "anthropic",
        "claude",
        model="claude-sonnet-4-5",
        api_key=FAKE_KEY,
        timeout_s=10.0,
        input_cost_per_token=IN_COST,
        output_cost_per_token=OUT_COST,
    )


def anthropic_body(
    blocks: list[dict] | None = None,
    *,
    stop_reason: str = "end_turn",
    input_tokens: int = 31,
    output_tokens: int = 9,
) -> dict:
    """A Messages API response as documented."""
    return {
        "id": "msg_013Zva2CMHLNnXjNJJKqJ2EF",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-5-20250929",
        "content": blocks
        if blocks is not None
        else [{"type": "text", "text": "Rome is the capital of Italy."}],
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": {
            "input_tokens": input_tokens,
            "output_tokens": output_tokens,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
        },
    }


def anthropic_error(type_: str, message: str) -> dict:
    return {"type": "error", "error": {"type": type_, "message": message}}


@pytest.mark.anyio
async def test_anthropic_success_builds_request_and_costs(claude: AnthropicChat) -> None:
    with respx.mock() as router:
        route = router.post(ANTHROPIC_URL).mock(return_value=httpx.Response(200, json=anthropic_body()))
        result = await claude.call(CONVERSATION)
    assert result == Completion(
        text="Rome is the capital of Italy.",
        model="claude-sonnet-4-5-20250929",
        usage=Usage(31, 9),
        cost_usd=pytest.approx(31 * IN_COST + 9 * OUT_COST),
        finish_reason="stop",
    )
    sent = route.calls.last.request
    assert sent.headers["x-api-key"] == FAKE_KEY
    assert sent.headers["anthropic-version"] == "2023-06-01"
    assert sent.headers["content-type"] == "application/json"
    assert "authorization" not in sent.headers
    assert json.loads(sent.content) == {
        "model": "claude-sonnet-4-5",
        "max_tokens": 32,
        "system": SYSTEM,
        "messages": [
            {"role": "user", "content": "What is the capital of France?"},
            {"role": "assistant", "content": "Paris."},
            {"role": "user", "content": "And of Italy? Answer in one sentence."},
        ],
        "temperature": 0.2,
    }


@pytest.mark.anyio
async def test_anthropic_concatenates_text_blocks_skips_others_and_maps_max_tokens(
    claude: AnthropicChat,
) -> None:
    blocks = [
        {"type": "thinking", "thinking": "The user asks...", "signature": "EqQBCgIYAhIM"},
        {"type": "text", "text": "Rome is "},
        {"type": "tool_use", "id": "toolu_01", "name": "lookup", "input": {"q": "Italy"}},
        {"type": "text", "text": "the capital"},
    ]
    body = anthropic_body(blocks, stop_reason="max_tokens")
    with respx.mock() as router:
        router.post(ANTHROPIC_URL).mock(return_value=httpx.Response(200, json=body))
        result = await claude.call(CONVERSATION)
    assert result.text == "Rome is the capital"
    assert result.finish_reason == "length"


@pytest.mark.anyio
async def test_anthropic_without_system_omits_field_and_custom_base(env: ProviderEnv) -> None:
    chat = adapter(env, "anthropic", "proxy", model="claude-haiku-4-5", base_url="https://gw.example/v1/")
    with respx.mock() as router:
        route = router.post("https://gw.example/v1/messages").mock(
            return_value=httpx.Response(200, json=anthropic_body())
        )
        result = await chat.call(CompletionRequest((ChatMessage("user", "hi"),), max_tokens=5))
    body = json.loads(route.calls.last.request.content)
    assert "system" not in body
    assert "x-api-key" not in route.calls.last.request.headers
    assert result.cost_usd == 0.0


@pytest.mark.anyio
async def test_anthropic_refusal_is_a_completion(claude: AnthropicChat) -> None:
    with respx.mock() as router:
        router.post(ANTHROPIC_URL).mock(
            return_value=httpx.Response(200, json=anthropic_body([], stop_reason="refusal", output_tokens=0))
        )
        result = await claude.call(CONVERSATION)
    assert (result.text, result.finish_reason) == ("", "safety")


@pytest.mark.anyio
async def test_anthropic_without_model_sends_nothing(env: ProviderEnv) -> None:
    chat = adapter(env, "anthropic", "nomodel", api_key=FAKE_KEY)
    with respx.mock(assert_all_called=False) as router:
        route = router.post(ANTHROPIC_URL).mock(return_value=httpx.Response(200, json=anthropic_body()))
        with pytest.raises(BadRequest):
            await chat.call(CONVERSATION)
    assert not route.called


@pytest.mark.anyio
@pytest.mark.parametrize(("status", "type_"), [(401, "authentication_error"), (403, "permission_error")])
async def test_anthropic_auth_errors_are_bad_request_without_key(
    claude: AnthropicChat, status: int, type_: str
) -> None:
    body = anthropic_error(type_, f"invalid x-api-key {FAKE_KEY}")
    with respx.mock() as router:
        router.post(ANTHROPIC_URL).mock(return_value=httpx.Response(status, json=body))
        with pytest.raises(BadRequest) as caught:
            await claude.call(CONVERSATION)
    assert caught.value.message.startswith(f"HTTP {status}: invalid x-api-key ***")
    assert_no_key(caught.value)


@pytest.mark.anyio
async def test_anthropic_429_rate_limited_with_retry_after(claude: AnthropicChat) -> None:
    body = anthropic_error(
        "rate_limit_error",
        "This request would exceed the rate limit for your organization of 50 requests per minute.",
    )
    headers = {
        "retry-after": "17",
        "anthropic-ratelimit-requests-limit": "50",
        "anthropic-ratelimit-requests-remaining": "0",
        "anthropic-ratelimit-requests-reset": "2025-01-01T00:00:17Z",
        "request-id": "req_018EeWyXxfu5pfWkrYcMdjWG",
    }
    with respx.mock() as router:
        router.post(ANTHROPIC_URL).mock(return_value=httpx.Response(429, json=body, headers=headers))
        with pytest.raises(RateLimited) as caught:
            await claude.call(CONVERSATION)
    assert caught.value.retry_after == 17.0
    assert caught.value.message.startswith("HTTP 429: This request would exceed the rate limit")


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("status", "response"),
    [
        (529, httpx.Response(529, json=anthropic_error("overloaded_error", "Overloaded"))),
        (500, httpx.Response(500, json=anthropic_error("api_error", "Internal server error"))),
        (502, html_response(502)),
    ],
)
async def test_anthropic_overload_and_5xx_are_unavailable(
    claude: AnthropicChat, status: int, response: httpx.Response
) -> None:
    with respx.mock() as router:
        router.post(ANTHROPIC_URL).mock(return_value=response)
        with pytest.raises(Unavailable) as caught:
            await claude.call(CONVERSATION)
    assert caught.value.message.startswith(f"HTTP {status}")
    assert "<html>" not in caught.value.message


@pytest.mark.anyio
async def test_anthropic_400_is_bad_request(claude: AnthropicChat) -> None:
    body = anthropic_error("invalid_request_error", "messages: roles must alternate")
    with respx.mock() as router:
        router.post(ANTHROPIC_URL).mock(return_value=httpx.Response(400, json=body))
        with pytest.raises(BadRequest) as caught:
            await claude.call(CONVERSATION)
    assert caught.value.message == "HTTP 400: messages: roles must alternate"


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("type_", "error"),
    [
        ("overloaded_error", Unavailable),
        ("rate_limit_error", RateLimited),
        ("invalid_request_error", BadRequest),
    ],
)
async def test_anthropic_error_body_with_200_is_classified(
    claude: AnthropicChat, type_: str, error: type[ProviderError]
) -> None:
    with respx.mock() as router:
        router.post(ANTHROPIC_URL).mock(
            return_value=httpx.Response(200, json=anthropic_error(type_, f"nope {FAKE_KEY}"))
        )
        with pytest.raises(error) as caught:
            await claude.call(CONVERSATION)
    assert type(caught.value) is error
    assert_no_key(caught.value)


@pytest.mark.anyio
@pytest.mark.parametrize(
    "content", [b'{"id": "msg_01", "type": "message", "content": [{"type"', HTML_PAGE.encode(), b""]
)
async def test_anthropic_malformed_body_is_bad_response(claude: AnthropicChat, content: bytes) -> None:
    with respx.mock() as router:
        router.post(ANTHROPIC_URL).mock(return_value=httpx.Response(200, content=content))
        with pytest.raises(BadResponse) as caught:
            await claude.call(CONVERSATION)
    assert "not JSON" in caught.value.message


@pytest.mark.anyio
@pytest.mark.parametrize(
    "body",
    [
        {**anthropic_body(), "content": None},
        {**anthropic_body(), "content": "Rome"},
        {**anthropic_body(), "content": [{"type": "text"}]},
        {**anthropic_body(), "usage": {"input_tokens": "31", "output_tokens": 9}},
        {**anthropic_body(), "usage": {"input_tokens": 31, "output_tokens": True}},
        [anthropic_body()],
    ],
)
async def test_anthropic_wrong_shape_is_bad_response(claude: AnthropicChat, body: object) -> None:
    with respx.mock() as router:
        router.post(ANTHROPIC_URL).mock(return_value=httpx.Response(200, json=body))
        with pytest.raises(BadResponse) as caught:
            await claude.call(CONVERSATION)
    assert caught.value.message.startswith("unexpected response")


@pytest.mark.anyio
async def test_anthropic_connection_error_is_unavailable(claude: AnthropicChat) -> None:
    with respx.mock() as router:
        router.post(ANTHROPIC_URL).mock(side_effect=httpx.ConnectError("boom"))
        with pytest.raises(Unavailable) as caught:
            await claude.call(CONVERSATION)
    assert caught.value.message == "cannot reach api.anthropic.com: ConnectError"


# ---------------------------------------------------------------------------------------------- gemini

GEMINI_URL = "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:generateContent"


@pytest.fixture
def gemini(env: ProviderEnv) -> GeminiChat:
    return adapter(
        env,
        "gemini",
        "gemini",
        model="gemini-2.5-flash",
        api_key=FAKE_KEY,
        timeout_s=10.0,
        input_cost_per_token=IN_COST,
        output_cost_per_token=OUT_COST,
    )


def gemini_body(
    parts: list[dict] | None = None,
    *,
    finish: str = "STOP",
    prompt: int = 18,
    candidates: int = 8,
    thoughts: int | None = None,
) -> dict:
    """A `GenerateContentResponse` as documented."""
    usage = {"promptTokenCount": prompt, "candidatesTokenCount": candidates}
    if thoughts is not None:
        usage["thoughtsTokenCount"] = thoughts
    usage["totalTokenCount"] = prompt + candidates + (thoughts or 0)
    return {
        "candidates": [
            {
                "content": {
                    "parts": parts if parts is not None else [{"text": "Rome is the capital of Italy."}],
                    "role": "model",
                },
                "finishReason": finish,
                "index": 0,
            }
        ],
        "usageMetadata": usage,
        "modelVersion": "gemini-2.5-flash",
        "responseId": "mNpCaOLWBYGOz7IPsoaK2AQ",
    }


def gemini_error(code: int, status: str, message: str, details: list | None = None) -> dict:
    error: dict = {"code": code, "message": message, "status": status}
    if details is not None:
        error["details"] = details
    return {"error": error}


@pytest.mark.anyio
async def test_gemini_success_builds_request_and_costs(gemini: GeminiChat) -> None:
    with respx.mock() as router:
        route = router.post(GEMINI_URL).mock(return_value=httpx.Response(200, json=gemini_body()))
        result = await gemini.call(CONVERSATION)
    assert result == Completion(
        text="Rome is the capital of Italy.",
        model="gemini-2.5-flash",
        usage=Usage(18, 8),
        cost_usd=pytest.approx(18 * IN_COST + 8 * OUT_COST),
        finish_reason="stop",
    )
    sent = route.calls.last.request
    assert sent.headers["x-goog-api-key"] == FAKE_KEY
    assert FAKE_KEY not in str(sent.url)
    assert not sent.url.query
    assert json.loads(sent.content) == {
        "contents": [
            {"role": "user", "parts": [{"text": "What is the capital of France?"}]},
            {"role": "model", "parts": [{"text": "Paris."}]},
            {"role": "user", "parts": [{"text": "And of Italy? Answer in one sentence."}]},
        ],
        "systemInstruction": {"parts": [{"text": SYSTEM}]},
        "generationConfig": {"maxOutputTokens": 32, "temperature": 0.2},
    }


@pytest.mark.anyio
async def test_gemini_skips_thoughts_counts_them_as_output_and_maps_max_tokens(gemini: GeminiChat) -> None:
    parts = [{"text": "Considering the question...", "thought": True}, {"text": "Rome"}, {"text": " is"}]
    body = gemini_body(parts, finish="MAX_TOKENS", thoughts=20)
    with respx.mock() as router:
        router.post(GEMINI_URL).mock(return_value=httpx.Response(200, json=body))
        result = await gemini.call(CONVERSATION)
    assert result.text == "Rome is"
    assert result.finish_reason == "length"
    assert result.usage == Usage(18, 28)
    assert result.cost_usd == pytest.approx(18 * IN_COST + 28 * OUT_COST)


@pytest.mark.anyio
async def test_gemini_models_prefix_and_base_with_version(env: ProviderEnv) -> None:
    chat = adapter(
        env, "gemini", "g", model="models/gemini-2.5-flash", base_url="https://proxy.example/v1beta/"
    )
    with respx.mock() as router:
        route = router.post("https://proxy.example/v1beta/models/gemini-2.5-flash:generateContent").mock(
            return_value=httpx.Response(200, json=gemini_body())
        )
        await chat.call(CompletionRequest((ChatMessage("user", "hi"),)))
    body = json.loads(route.calls.last.request.content)
    assert "systemInstruction" not in body
    assert "x-goog-api-key" not in route.calls.last.request.headers


@pytest.mark.anyio
async def test_gemini_blocked_prompt_is_an_empty_safety_completion(gemini: GeminiChat) -> None:
    body = {
        "promptFeedback": {
            "blockReason": "SAFETY",
            "safetyRatings": [{"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH"}],
        },
        "usageMetadata": {"promptTokenCount": 12, "totalTokenCount": 12},
        "modelVersion": "gemini-2.5-flash",
    }
    with respx.mock() as router:
        router.post(GEMINI_URL).mock(return_value=httpx.Response(200, json=body))
        result = await gemini.call(CONVERSATION)
    assert result == Completion("", "gemini-2.5-flash", Usage(12, 0), pytest.approx(12 * IN_COST), "safety")


@pytest.mark.anyio
async def test_gemini_safety_finish_is_an_empty_safety_completion(gemini: GeminiChat) -> None:
    body = gemini_body(finish="SAFETY", candidates=0)
    del body["candidates"][0]["content"]
    with respx.mock() as router:
        router.post(GEMINI_URL).mock(return_value=httpx.Response(200, json=body))
        result = await gemini.call(CONVERSATION)
    assert (result.text, result.finish_reason, result.usage) == ("", "safety", Usage(18, 0))


@pytest.mark.anyio
async def test_gemini_401_403_are_bad_request_without_key(gemini: GeminiChat) -> None:
    body = gemini_error(
        403, "PERMISSION_DENIED", f"Method doesn't allow unregistered callers. key={FAKE_KEY}"
    )
    for status in (401, 403):
        with respx.mock() as router:
            router.post(GEMINI_URL).mock(return_value=httpx.Response(status, json=body))
            with pytest.raises(BadRequest) as caught:
                await gemini.call(CONVERSATION)
        assert caught.value.message.startswith(f"HTTP {status}")
        assert_no_key(caught.value)


@pytest.mark.anyio
async def test_gemini_400_invalid_key_is_bad_request(gemini: GeminiChat) -> None:
    body = gemini_error(400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key.")
    with respx.mock() as router:
        router.post(GEMINI_URL).mock(return_value=httpx.Response(400, json=body))
        with pytest.raises(BadRequest) as caught:
            await gemini.call(CONVERSATION)
    assert caught.value.message == "HTTP 400: API key not valid. Please pass a valid API key."


RETRY_DETAILS = [
    {
        "@type": "type.googleapis.com/google.rpc.QuotaFailure",
        "violations": [
            {
                "quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests",
                "quotaId": "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
                "quotaValue": "10",
            }
        ],
    },
    {"@type": "type.googleapis.com/google.rpc.Help", "links": [{"description": "Learn more"}]},
    {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "12s"},
]
QUOTA_MESSAGE = (
    "You exceeded your current quota, please check your plan and billing details. For more information on "
    "this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits."
)


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("headers", "expected"), [({}, 12.0), ({"retry-after": "3"}, 3.0), ({"retry-after": "soon"}, 12.0)]
)
async def test_gemini_429_is_rate_limited_with_retry_delay(
    gemini: GeminiChat, headers: dict, expected: float
) -> None:
    body = gemini_error(429, "RESOURCE_EXHAUSTED", QUOTA_MESSAGE, RETRY_DETAILS)
    with respx.mock() as router:
        router.post(GEMINI_URL).mock(return_value=httpx.Response(429, json=body, headers=headers))
        with pytest.raises(RateLimited) as caught:
            await gemini.call(CONVERSATION)
    assert type(caught.value) is RateLimited  # "quota" in the message does not make it Unavailable
    assert caught.value.retry_after == expected
    assert caught.value.message.startswith("HTTP 429: You exceeded your current quota")


@pytest.mark.anyio
@pytest.mark.parametrize("response", [httpx.Response(429, json={"error": {}}), html_response(429)])
async def test_gemini_429_without_any_delay(gemini: GeminiChat, response: httpx.Response) -> None:
    with respx.mock() as router:
        router.post(GEMINI_URL).mock(return_value=response)
        with pytest.raises(RateLimited) as caught:
            await gemini.call(CONVERSATION)
    assert caught.value.retry_after is None
    assert caught.value.message == "HTTP 429"


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("status", "response"),
    [
        (500, httpx.Response(500, json=gemini_error(500, "INTERNAL", "An internal error has occurred."))),
        (503, httpx.Response(503, json=gemini_error(503, "UNAVAILABLE", "The model is overloaded."))),
        (504, httpx.Response(504, json=gemini_error(504, "DEADLINE_EXCEEDED", "Deadline exceeded"))),
        (502, html_response(502)),
    ],
)
async def test_gemini_5xx_is_unavailable(gemini: GeminiChat, status: int, response: httpx.Response) -> None:
    with respx.mock() as router:
        router.post(GEMINI_URL).mock(return_value=response)
        with pytest.raises(Unavailable) as caught:
            await gemini.call(CONVERSATION)
    assert caught.value.message.startswith(f"HTTP {status}")
    assert "<html>" not in caught.value.message


@pytest.mark.anyio
@pytest.mark.parametrize("content", [b'{"candidates": [{"content": {"parts"', HTML_PAGE.encode(), b""])
async def test_gemini_malformed_body_is_bad_response(gemini: GeminiChat, content: bytes) -> None:
    with respx.mock() as router:
        router.post(GEMINI_URL).mock(return_value=httpx.Response(200, content=content))
        with pytest.raises(BadResponse) as caught:
            await gemini.call(CONVERSATION)
    assert "not JSON" in caught.value.message


@pytest.mark.anyio
@pytest.mark.parametrize(
    "body",
    [
        {"usageMetadata": {"promptTokenCount": 3}},
        {**gemini_body(), "candidates": []},
        {**gemini_body(), "candidates": ["Rome"]},
        {**gemini_body(), "candidates": [{"content": {"parts": [{"text": 7}]}}]},
        {**gemini_body(), "candidates": [{"content": {"parts": "Rome"}}]},
        {**gemini_body(), "usageMetadata": {"promptTokenCount": -1}},
        {**gemini_body(), "promptFeedback": "blocked"},
        "Rome",
    ],
)
async def test_gemini_wrong_shape_is_bad_response(gemini: GeminiChat, body: object) -> None:
    with respx.mock() as router:
        router.post(GEMINI_URL).mock(return_value=httpx.Response(200, json=body))
        with pytest.raises(BadResponse) as caught:
            await gemini.call(CONVERSATION)
    assert caught.value.message.startswith("unexpected response")


@pytest.mark.anyio
async def test_gemini_timeout_is_unavailable(gemini: GeminiChat) -> None:
    with respx.mock() as router:
        router.post(GEMINI_URL).mock(side_effect=httpx.ReadTimeout("slow"))
        with pytest.raises(Unavailable) as caught:
            await gemini.call(CONVERSATION)
    assert caught.value.message == "timed out after 10 s"
    assert_no_key(caught.value)


# ---------------------------------------------------------------------------------------------- ollama

OLLAMA_URL = "http://localhost:11434/api/chat"


@pytest.fixture
def ollama(env: ProviderEnv) -> OllamaChat:
    return adapter(env, "ollama", "ollama", model="llama3.2", timeout_s=10.0)


def ndjson(*objects: dict) -> bytes:
    return b"".join(json.dumps(o).encode() + b"\n" for o in objects)


def ollama_chunk(content: str) -> dict:
    return {
        "model": "llama3.2",
        "created_at": "2025-01-01T00:00:00.000Z",
        "message": {"role": "assistant", "content": content},
        "done": False,
    }


def ollama_done(reason: str = "stop", prompt: int = 26, completion: int = 7) -> dict:
    return {
        "model": "llama3.2",
        "created_at": "2025-01-01T00:00:01.000Z",
        "message": {"role": "assistant", "content": ""},
        "done": True,
        "done_reason": reason,
        "total_duration": 4883583458,
        "load_duration": 1334875,
        "prompt_eval_count": prompt,
        "prompt_eval_duration": 342546000,
        "eval_count": completion,
        "eval_duration": 4535599000,
    }


STREAM = ndjson(ollama_chunk("Rome"), ollama_chunk(" is the"), ollama_chunk(" capital."), ollama_done())


@pytest.mark.anyio
async def test_ollama_stream_builds_request_and_is_free(ollama: OllamaChat) -> None:
    with respx.mock() as router:
        route = router.post(OLLAMA_URL).mock(
            return_value=httpx.Response(200, content=STREAM, headers={"content-type": "application/x-ndjson"})
        )
        result = await ollama.call(CONVERSATION)
    assert result == Completion("Rome is the capital.", "llama3.2", Usage(26, 7), 0.0, "stop")
    sent = route.calls.last.request
    assert "authorization" not in sent.headers
    assert json.loads(sent.content) == {
        "model": "llama3.2",
        "messages": [
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": "What is the capital of France?"},
            {"role": "assistant", "content": "Paris."},
            {"role": "user", "content": "And of Italy? Answer in one sentence."},
        ],
        "stream": True,
        "options": {"temperature": 0.2, "num_predict": 32},
    }


@pytest.mark.anyio
async def test_ollama_priced_remote_with_key_and_length(env: ProviderEnv) -> None:
    chat = adapter(
        env,
        "ollama",
        "ollama-remote",
        model="gpt-oss:20b",
        base_url="https://ollama.example/api/",
        api_key=FAKE_KEY,
        input_cost_per_token=IN_COST,
        output_cost_per_token=OUT_COST,
    )
    stream = ndjson(ollama_chunk("Rome"), ollama_done("length", 26, 32)).replace(b"\n", b"\r\n")
    with respx.mock() as router:
        route = router.post("https://ollama.example/api/chat").mock(
            return_value=httpx.Response(200, content=b"\n" + stream)
        )
        result = await chat.call(CONVERSATION)
    assert route.calls.last.request.headers["authorization"] == f"Bearer {FAKE_KEY}"
    assert result.finish_reason == "length"
    assert result.cost_usd == pytest.approx(26 * IN_COST + 32 * OUT_COST)


@pytest.mark.anyio
async def test_ollama_non_streamed_answer_and_cached_prompt(ollama: OllamaChat) -> None:
    final = {**ollama_done(), "message": {"role": "assistant", "content": "Rome."}}
    del final["prompt_eval_count"]  # Ollama omits it when the whole prompt came from its cache
    with respx.mock() as router:
        router.post(OLLAMA_URL).mock(return_value=httpx.Response(200, json=final))
        result = await ollama.call(CONVERSATION)
    assert (result.text, result.usage) == ("Rome.", Usage(0, 7))


@pytest.mark.anyio
async def test_ollama_404_model_not_found_is_bad_request(ollama: OllamaChat) -> None:
    with respx.mock() as router:
        router.post(OLLAMA_URL).mock(
            return_value=httpx.Response(
                404, json={"error": "model 'llama3.2' not found, try pulling it first"}
            )
        )
        with pytest.raises(BadRequest) as caught:
            await ollama.call(CONVERSATION)
    assert caught.value.message == "HTTP 404: model 'llama3.2' not found, try pulling it first"


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("status", "response", "error"),
    [
        (500, httpx.Response(500, json={"error": "llama runner process has terminated"}), Unavailable),
        (502, html_response(502), Unavailable),
        (401, httpx.Response(401, json={"error": f"unauthorized {FAKE_KEY}"}), BadRequest),
        (429, httpx.Response(429, text="busy", headers={"retry-after": "4"}), RateLimited),
    ],
)
async def test_ollama_http_errors(
    env: ProviderEnv, status: int, response: httpx.Response, error: type[ProviderError]
) -> None:
    chat = adapter(env, "ollama", "ollama", model="llama3.2", api_key=FAKE_KEY)
    with respx.mock() as router:
        router.post(OLLAMA_URL).mock(return_value=response)
        with pytest.raises(error) as caught:
            await chat.call(CONVERSATION)
    assert type(caught.value) is error
    assert caught.value.message.startswith(f"HTTP {status}")
    assert "<html>" not in caught.value.message
    if error is RateLimited:
        assert caught.value.retry_after == 4.0
    assert_no_key(caught.value)


@pytest.mark.anyio
async def test_ollama_error_line_mid_stream_is_unavailable(env: ProviderEnv) -> None:
    chat = adapter(env, "ollama", "ollama", model="llama3.2", api_key=FAKE_KEY)
    stream = ndjson(ollama_chunk("Rome"), {"error": f"model runner crashed ({FAKE_KEY})"})
    with respx.mock() as router:
        router.post(OLLAMA_URL).mock(return_value=httpx.Response(200, content=stream))
        with pytest.raises(Unavailable) as caught:
            await chat.call(CONVERSATION)
    assert caught.value.message == "stream error: model runner crashed (***)"
    assert_no_key(caught.value)


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("content", "message"),
    [
        (ndjson(ollama_chunk("Rome")), "unexpected response: stream ended before `done`"),
        (b"", "unexpected response: stream ended before `done`"),
        (ndjson(ollama_chunk("Rome")) + b'{"model": "llama3.2", "mess\n', "stream line is not JSON"),
        (HTML_PAGE.encode(), "stream line is not JSON"),
        (b'data: {"choices": []}\n\ndata: [DONE]\n', "stream line is not JSON"),
        (ndjson({**ollama_done(), "eval_count": "7"}), "unexpected response: token counts"),
        (b"[1, 2]\n", "unexpected response: stream line is not a JSON object"),
        (ndjson({"message": {"content": ["a"]}, "done": True}), "unexpected response: `message.content`"),
    ],
)
async def test_ollama_malformed_stream_is_bad_response(
    ollama: OllamaChat, content: bytes, message: str
) -> None:
    with respx.mock() as router:
        router.post(OLLAMA_URL).mock(return_value=httpx.Response(200, content=content))
        with pytest.raises(BadResponse) as caught:
            await ollama.call(CONVERSATION)
    assert caught.value.message.startswith(message)


@pytest.mark.anyio
async def test_ollama_closed_daemon_is_unavailable(ollama: OllamaChat) -> None:
    with respx.mock() as router:
        router.post(OLLAMA_URL).mock(side_effect=httpx.ConnectError("connection refused"))
        with pytest.raises(Unavailable) as caught:
            await ollama.call(CONVERSATION)
    assert caught.value.message == "cannot reach localhost: ConnectError"


# ------------------------------------------------------------------- openai-compatible streaming (SSE)

OPENAI_URL = "https://api.openai.com/v1/chat/completions"


def sse(*chunks: dict | str) -> bytes:
    return b"".join(
        b"data: " + (c if isinstance(c, str) else json.dumps(c)).encode() + b"\n\n" for c in chunks
    )


def openai_chunk(delta: dict, finish: str | None = None, model: str = "gpt-4o-mini-2024-07-18") -> dict:
    return {
        "id": "chatcmpl-123",
        "object": "chat.completion.chunk",
        "created": 1694268190,
        "model": model,
        "system_fingerprint": "fp_44709d6fcb",
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
    }


OPENAI_USAGE_CHUNK = {
    "id": "chatcmpl-123",
    "object": "chat.completion.chunk",
    "created": 1694268190,
    "model": "gpt-4o-mini-2024-07-18",
    "choices": [],
    "usage": {"prompt_tokens": 40, "completion_tokens": 6, "total_tokens": 46},
}
OPENAI_STREAM_CHUNKS = (
    openai_chunk({"role": "assistant", "content": ""}),
    openai_chunk({"content": "Rome is"}),
    openai_chunk({"content": " the capital."}),
    openai_chunk({}, "stop"),
)


@pytest.fixture
def openai_stream(env: ProviderEnv):
    return adapter(
        env,
        "openai",
        "openai-stream",
        model="gpt-4o-mini",
        api_key=FAKE_KEY,
        timeout_s=10.0,
        input_cost_per_token=IN_COST,
        output_cost_per_token=OUT_COST,
        options={"stream": True},
    )


@pytest.mark.anyio
async def test_openai_stream_with_usage_chunk(openai_stream) -> None:
    body = b": keep-alive\n\n" + sse(*OPENAI_STREAM_CHUNKS, OPENAI_USAGE_CHUNK, "[DONE]")
    with respx.mock() as router:
        route = router.post(OPENAI_URL).mock(
            return_value=httpx.Response(200, content=body, headers={"content-type": "text/event-stream"})
        )
        result = await openai_stream.call(CONVERSATION)
    assert result == Completion(
        "Rome is the capital.",
        "gpt-4o-mini-2024-07-18",
        Usage(40, 6),
        pytest.approx(40 * IN_COST + 6 * OUT_COST),
        "stop",
    )
    sent = json.loads(route.calls.last.request.content)
    assert sent["stream"] is True
    assert sent["stream_options"] == {"include_usage": True}
    assert sent["max_tokens"] == 32 and sent["temperature"] == 0.2
    assert route.calls.last.request.headers["authorization"] == f"Bearer {FAKE_KEY}"


@pytest.mark.anyio
async def test_openai_stream_without_usage_estimates_tokens(openai_stream) -> None:
    with respx.mock() as router:
        router.post(OPENAI_URL).mock(
            return_value=httpx.Response(200, content=sse(*OPENAI_STREAM_CHUNKS, "[DONE]"))
        )
        result = await openai_stream.call(CONVERSATION)
    prompt_chars = sum(len(m.content) for m in CONVERSATION.messages)
    expected = Usage(-(-prompt_chars // 4), -(-len("Rome is the capital.") // 4))
    assert result.usage == expected
    assert result.cost_usd == pytest.approx(
        expected.prompt_tokens * IN_COST + expected.completion_tokens * OUT_COST
    )
    assert result.finish_reason == "stop"


@pytest.mark.anyio
async def test_openai_stream_error_event_is_unavailable_without_key(openai_stream) -> None:
    body = sse(
        openai_chunk({"content": "Ro"}), {"error": {"message": f"upstream died {FAKE_KEY}", "type": "x"}}
    )
    with respx.mock() as router:
        router.post(OPENAI_URL).mock(return_value=httpx.Response(200, content=body))
        with pytest.raises(Unavailable) as caught:
            await openai_stream.call(CONVERSATION)
    assert caught.value.message == "stream error: upstream died ***"
    assert_no_key(caught.value)


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("content", "message"),
    [
        (sse(openai_chunk({"content": "Ro"})), "unexpected response: stream ended before `[DONE]`"),
        (b'data: {"choices": [\n\n', "stream chunk is not JSON"),
        (sse(openai_chunk({"content": 7}), "[DONE]"), "unexpected response: `delta.content`"),
        (json.dumps(OPENAI_USAGE_CHUNK).encode(), "unexpected response: stream ended"),
        (HTML_PAGE.encode(), "unexpected response: stream ended"),
    ],
)
async def test_openai_stream_malformed_is_bad_response(openai_stream, content: bytes, message: str) -> None:
    with respx.mock() as router:
        router.post(OPENAI_URL).mock(return_value=httpx.Response(200, content=content))
        with pytest.raises(BadResponse) as caught:
            await openai_stream.call(CONVERSATION)
    assert caught.value.message.startswith(message)


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("response", "error"),
    [
        (
            httpx.Response(
                429,
                json={"error": {"message": "slow down", "code": "rate_limit_exceeded"}},
                headers={"retry-after": "7"},
            ),
            RateLimited,
        ),
        (httpx.Response(401, json={"error": {"message": f"bad key {FAKE_KEY}"}}), BadRequest),
        (html_response(503), Unavailable),
    ],
)
async def test_openai_stream_http_errors(openai_stream, response: httpx.Response, error: type) -> None:
    with respx.mock() as router:
        router.post(OPENAI_URL).mock(return_value=response)
        with pytest.raises(error) as caught:
            await openai_stream.call(CONVERSATION)
    assert caught.value.message.startswith(f"HTTP {response.status_code}")
    if error is RateLimited:
        assert caught.value.retry_after == 7.0
    assert_no_key(caught.value)


@pytest.fixture(scope="module")
def llama_stream_base(tmp_path_factory: pytest.TempPathFactory):
    from tests.providers_support import llama_server, smollm2_gguf

    log = tmp_path_factory.mktemp("llama_stream") / "server.log"
    with llama_server(smollm2_gguf(), log, alias="smollm2-135m", n_ctx=512) as base:
        yield base


@pytest.mark.slow
@pytest.mark.anyio
async def test_openai_stream_against_llama_server_estimates_usage(
    env: ProviderEnv, llama_stream_base: str
) -> None:
    """llama_cpp.server streams without a usage chunk even when asked: tokens are estimated."""
    chat = adapter(
        env,
        "openai",
        "local-stream",
        base_url=llama_stream_base,
        model="smollm2-135m",
        timeout_s=60.0,
        input_cost_per_token=IN_COST,
        output_cost_per_token=OUT_COST,
        options={"stream": True},
    )
    result = await chat.call(CompletionRequest((ChatMessage("user", "Name a colour."),), max_tokens=8))
    assert result.text.strip()
    assert result.model == "smollm2-135m"
    assert result.finish_reason in ("stop", "length")
    assert result.usage.prompt_tokens == -(-len("Name a colour.") // 4)
    assert result.usage.completion_tokens == -(-len(result.text) // 4)
    assert result.cost_usd > 0
