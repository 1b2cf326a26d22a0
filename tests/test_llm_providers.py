"""LLM adapters on the wire.

(a) `openai` against a real `python -m llama_cpp.server` serving the packaged SmolLM2 on 127.0.0.1;
(b) `openai` against recorded OpenAI bodies through respx;
(c) `llamacpp` in-process with both packaged models.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import respx

from providers import BadRequest, BadResponse, ProviderEnv, ProviderError, RateLimited, Unavailable
from providers.llm.llamacpp import PACKAGED_MODELS, transcript_prompt
from providers.llm.openai import DEFAULT_BASE_URL, OpenAIChat
from providers.types import ChatMessage, Completion, CompletionRequest, Usage
from tests.providers_support import (
    FAKE_KEY,
    adapter,
    all_text,
    free_port,
    llama_server,
    openai_completion_body,
    openai_error_body,
    silent_listener,
    smollm2_gguf,
)

IN_COST = 1.5e-7
OUT_COST = 6e-7
SERVER_N_CTX = 512
CAPITAL = CompletionRequest(
    messages=(
        ChatMessage("system", "You are a concise assistant."),
        ChatMessage("user", "What is the capital of France? Answer in one sentence."),
    ),
    max_tokens=16,
    temperature=0.0,
)


# ------------------------------------------------------------------ (a) real llama_cpp.server on loopback


@pytest.fixture(scope="module")
def llama_base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    log = tmp_path_factory.mktemp("llama_server") / "server.log"
    with llama_server(smollm2_gguf(), log, alias="smollm2-135m", n_ctx=SERVER_N_CTX) as base:
        yield base


def local_openai(env: ProviderEnv, base_url: str, **fields) -> OpenAIChat:
    fields.setdefault("model", "smollm2-135m")
    fields.setdefault("timeout_s", 60.0)
    return adapter(env, "openai", "local-openai", base_url=base_url, api_key="anything", **fields)


@pytest.mark.slow
@pytest.mark.anyio
async def test_openai_against_llama_server_completes(env: ProviderEnv, llama_base_url: str) -> None:
    chat = local_openai(env, llama_base_url, input_cost_per_token=IN_COST, output_cost_per_token=OUT_COST)
    result = await chat.call(CAPITAL)

    assert isinstance(result, Completion)
    assert result.text.strip()
    assert result.model == "smollm2-135m"
    assert result.usage.prompt_tokens > 0
    assert 0 < result.usage.completion_tokens <= CAPITAL.max_tokens
    assert result.finish_reason in ("stop", "length")
    expected = result.usage.prompt_tokens * IN_COST + result.usage.completion_tokens * OUT_COST
    assert result.cost_usd == pytest.approx(expected)
    assert result.cost_usd > 0


@pytest.mark.slow
@pytest.mark.anyio
async def test_openai_against_llama_server_honours_max_tokens(env: ProviderEnv, llama_base_url: str) -> None:
    chat = local_openai(env, llama_base_url)
    request = CompletionRequest(
        messages=(ChatMessage("user", "Count from one to one hundred in words, separated by commas."),),
        max_tokens=4,
    )
    result = await chat.call(request)
    assert result.usage.completion_tokens <= 4
    assert result.finish_reason == "length"
    assert result.cost_usd == 0.0  # no prices configured: a local arm is free


@pytest.mark.slow
@pytest.mark.anyio
async def test_openai_context_overflow_is_bad_request(env: ProviderEnv, llama_base_url: str) -> None:
    """llama_cpp.server answers 400 `context_length_exceeded` when the prompt does not fit n_ctx."""
    chat = local_openai(env, llama_base_url)
    too_long = CompletionRequest(messages=(ChatMessage("user", "word " * (3 * SERVER_N_CTX)),), max_tokens=16)
    with pytest.raises(BadRequest) as caught:
        await chat.call(too_long)
    assert caught.value.provider == "local-openai"
    assert "HTTP 400" in caught.value.message
    assert "context length" in caught.value.message
    # and the server still serves normal requests afterwards
    assert (await chat.call(CAPITAL)).text


@pytest.mark.slow
@pytest.mark.anyio
async def test_openai_malformed_request_gets_llama_server_500(env: ProviderEnv, llama_base_url: str) -> None:
    """An invalid role fails llama_cpp.server's validation, which it reports as HTTP 500 (not 400/422)."""
    chat = local_openai(env, llama_base_url)
    bogus = CompletionRequest(messages=(ChatMessage("wizard", "hello"),), max_tokens=4)  # type: ignore[arg-type]
    with pytest.raises(ProviderError) as caught:
        await chat.call(bogus)
    assert isinstance(caught.value, Unavailable)  # 5xx is an outage as far as the status goes
    assert caught.value.message.startswith("HTTP 500")
    assert len(caught.value.message) <= len("HTTP 500: ") + 200


@pytest.mark.slow
@pytest.mark.anyio
async def test_openai_unknown_path_on_llama_server_is_bad_request(
    env: ProviderEnv, llama_base_url: str
) -> None:
    chat = local_openai(env, llama_base_url.removesuffix("/v1") + "/nope")
    with pytest.raises(BadRequest) as caught:
        await chat.call(CAPITAL)
    assert "HTTP 404" in caught.value.message


@pytest.mark.anyio
async def test_openai_closed_port_is_unavailable(env: ProviderEnv) -> None:
    chat = local_openai(env, f"http://127.0.0.1:{free_port()}/v1", timeout_s=5.0)
    with pytest.raises(Unavailable) as caught:
        await chat.call(CAPITAL)
    assert caught.value.message == "cannot reach 127.0.0.1: ConnectError"


@pytest.mark.anyio
async def test_openai_timeout_is_unavailable(env: ProviderEnv) -> None:
    """A peer that accepts the connection and never answers: the read times out."""
    with silent_listener() as port:
        chat = local_openai(env, f"http://127.0.0.1:{port}/v1", timeout_s=0.3)
        with pytest.raises(Unavailable) as caught:
            await chat.call(CAPITAL)
    assert caught.value.message == "timed out after 0.3 s"


# ---------------------------------------------------------------------- (b) recorded OpenAI bodies (respx)

COMPLETIONS = f"{DEFAULT_BASE_URL}/chat/completions"


@pytest.fixture
def openai_chat(env: ProviderEnv) -> OpenAIChat:
    return adapter(
        env,
        "openai",
        "openai",
        model="gpt-4o-mini",
        api_key=FAKE_KEY,
        timeout_s=10.0,
        input_cost_per_token=IN_COST,
        output_cost_per_token=OUT_COST,
    )


def assert_no_key(exc: BaseException) -> None:
    text = all_text(exc)
    assert FAKE_KEY not in text
    assert "SECRET123" not in text


@pytest.mark.anyio
async def test_openai_recorded_success(openai_chat: OpenAIChat) -> None:
    with respx.mock() as router:
        route = router.post(COMPLETIONS).mock(return_value=httpx.Response(200, json=openai_completion_body()))
        result = await openai_chat.call(CAPITAL)

    assert result == Completion(
        text="Paris is the capital of France.",
        model="gpt-4o-mini-2024-07-18",
        usage=Usage(prompt_tokens=24, completion_tokens=8),
        cost_usd=pytest.approx(24 * IN_COST + 8 * OUT_COST),
        finish_reason="stop",
    )
    sent = route.calls.last.request
    assert sent.headers["Authorization"] == f"Bearer {FAKE_KEY}"
    assert json.loads(sent.content) == {
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "system", "content": "You are a concise assistant."},
            {"role": "user", "content": "What is the capital of France? Answer in one sentence."},
        ],
        "max_tokens": 16,
        "temperature": 0.0,
    }


@pytest.mark.anyio
async def test_openai_base_url_trailing_slash_and_no_key(env: ProviderEnv) -> None:
    chat = adapter(
        env, "openai", "groq", model="llama-3.1-8b-instant", base_url="https://api.groq.com/openai/v1/"
    )
    with respx.mock() as router:
        route = router.post("https://api.groq.com/openai/v1/chat/completions").mock(
            return_value=httpx.Response(200, json=openai_completion_body(model="llama-3.1-8b-instant"))
        )
        result = await chat.call(CAPITAL)
    assert result.model == "llama-3.1-8b-instant"
    assert "Authorization" not in route.calls.last.request.headers
    assert result.cost_usd == 0.0


@pytest.mark.anyio
async def test_openai_null_content_usage_absent_and_model_absent(openai_chat: OpenAIChat) -> None:
    body = openai_completion_body(content=None, finish_reason="content_filter")
    del body["usage"]
    del body["model"]
    with respx.mock() as router:
        router.post(COMPLETIONS).mock(return_value=httpx.Response(200, json=body))
        result = await openai_chat.call(CAPITAL)
    assert result.text == ""
    assert result.usage == Usage(0, 0)
    assert result.model == "gpt-4o-mini"  # falls back to the configured model
    assert result.finish_reason == "content_filter"
    assert result.cost_usd == 0.0


@pytest.mark.anyio
async def test_openai_without_model_is_bad_request_and_sends_nothing(env: ProviderEnv) -> None:
    chat = adapter(env, "openai", "nomodel", api_key=FAKE_KEY)
    with respx.mock(assert_all_called=False) as router:
        route = router.post(COMPLETIONS).mock(return_value=httpx.Response(200, json=openai_completion_body()))
        with pytest.raises(BadRequest):
            await chat.call(CAPITAL)
    assert not route.called


@pytest.mark.anyio
@pytest.mark.parametrize(
    "message",
    [
        # OpenAI masks the key it echoes...
        "Incorrect API key provided: sk-test-*****T123. You can find your API key at "
        "https://platform.openai.com/account/api-keys.",
        # ...but not every OpenAI-compatible server does.
        f"Invalid API key: {FAKE_KEY}",
    ],
)
async def test_openai_401_never_shows_the_key(openai_chat: OpenAIChat, message: str) -> None:
    body = openai_error_body(message, "invalid_request_error", "invalid_api_key")
    with respx.mock() as router:
        router.post(COMPLETIONS).mock(return_value=httpx.Response(401, json=body))
        with pytest.raises(BadRequest) as caught:
            await openai_chat.call(CAPITAL)
    assert "HTTP 401" in caught.value.message
    assert "API key" in caught.value.message
    assert_no_key(caught.value)


@pytest.mark.anyio
async def test_openai_403_is_bad_request(openai_chat: OpenAIChat) -> None:
    body = openai_error_body(
        "Project does not have access to model gpt-4o-mini", "invalid_request_error", None
    )
    with respx.mock() as router:
        router.post(COMPLETIONS).mock(return_value=httpx.Response(403, json=body))
        with pytest.raises(BadRequest) as caught:
            await openai_chat.call(CAPITAL)
    assert "HTTP 403" in caught.value.message
    assert_no_key(caught.value)


@pytest.mark.anyio
async def test_openai_429_rate_limit_with_retry_after(openai_chat: OpenAIChat) -> None:
    body = openai_error_body(
        "Rate limit reached for gpt-4o-mini in organization org-abc123 on requests per min (RPM): Limit 3, "
        "Used 3, Requested 1. Please try again in 20s. Visit https://platform.openai.com/account/rate-limits "
        "to learn more.",
        "requests",
        "rate_limit_exceeded",
    )
    headers = {
        "retry-after": "20",
        "x-ratelimit-limit-requests": "3",
        "x-ratelimit-remaining-requests": "0",
        "x-ratelimit-reset-requests": "20s",
    }
    with respx.mock() as router:
        router.post(COMPLETIONS).mock(return_value=httpx.Response(429, json=body, headers=headers))
        with pytest.raises(RateLimited) as caught:
            await openai_chat.call(CAPITAL)
    assert caught.value.retry_after == 20.0
    assert caught.value.message.startswith("HTTP 429")
    assert_no_key(caught.value)


@pytest.mark.anyio
async def test_openai_429_without_retry_after(openai_chat: OpenAIChat) -> None:
    body = openai_error_body("Rate limit reached for requests", "requests", "rate_limit_exceeded")
    with respx.mock() as router:
        router.post(COMPLETIONS).mock(return_value=httpx.Response(429, json=body))
        with pytest.raises(RateLimited) as caught:
            await openai_chat.call(CAPITAL)
    assert caught.value.retry_after is None


@pytest.mark.anyio
@pytest.mark.parametrize(
    "body",
    [
        openai_error_body(
            "You exceeded your current quota, please check your plan and billing details. For more "
            "information on this error, read the docs: https://platform.openai.com/docs/guides/error-codes/"
            "api-errors.",
            "insufficient_quota",
            "insufficient_quota",
        ),
        # the documented signal is the code: a server may word the message differently
        openai_error_body("Your credit balance is too low.", "insufficient_quota", "insufficient_quota"),
    ],
)
async def test_openai_429_insufficient_quota_is_unavailable(openai_chat: OpenAIChat, body: dict) -> None:
    with respx.mock() as router:
        router.post(COMPLETIONS).mock(
            return_value=httpx.Response(429, json=body, headers={"retry-after": "1"})
        )
        with pytest.raises(ProviderError) as caught:
            await openai_chat.call(CAPITAL)
    assert type(caught.value) is Unavailable
    assert "429" in caught.value.message


@pytest.mark.anyio
async def test_openai_402_credits_exhausted_is_unavailable(openai_chat: OpenAIChat) -> None:
    body = {
        "error": {
            "message": "Insufficient credits. Add more using https://openrouter.ai/credits",
            "code": 402,
        }
    }
    with respx.mock() as router:
        router.post(COMPLETIONS).mock(return_value=httpx.Response(402, json=body))
        with pytest.raises(Unavailable) as caught:
            await openai_chat.call(CAPITAL)
    assert "credits" in caught.value.message


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("status", "body"),
    [
        (
            500,
            openai_error_body(
                "The server had an error while processing your request. Sorry about that!",
                "server_error",
                None,
            ),
        ),
        (
            503,
            openai_error_body(
                "The engine is currently overloaded, please try again later", "server_error", None
            ),
        ),
        (502, None),
        (504, None),
    ],
)
async def test_openai_5xx_is_unavailable(openai_chat: OpenAIChat, status: int, body: dict | None) -> None:
    response = (
        httpx.Response(status, json=body)
        if body is not None
        else httpx.Response(
            status,
            text="<html><body><h1>502 Bad Gateway</h1></body></html>",
            headers={"content-type": "text/html"},
        )
    )
    with respx.mock() as router:
        router.post(COMPLETIONS).mock(return_value=response)
        with pytest.raises(Unavailable) as caught:
            await openai_chat.call(CAPITAL)
    assert caught.value.message.startswith(f"HTTP {status}")
    assert "<html>" not in caught.value.message
    assert_no_key(caught.value)


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("status", "code", "message"),
    [
        (
            400,
            "context_length_exceeded",
            "This model's maximum context length is 128000 tokens. However, your messages resulted in "
            "130000 tokens. Please reduce the length of the messages.",
        ),
        (404, "model_not_found", "The model `gpt-99` does not exist or you do not have access to it."),
        (422, None, "Unprocessable Entity"),
    ],
)
async def test_openai_4xx_is_bad_request(
    openai_chat: OpenAIChat, status: int, code: str | None, message: str
) -> None:
    with respx.mock() as router:
        router.post(COMPLETIONS).mock(
            return_value=httpx.Response(
                status, json=openai_error_body(message, "invalid_request_error", code)
            )
        )
        with pytest.raises(BadRequest) as caught:
            await openai_chat.call(CAPITAL)
    assert caught.value.message == f"HTTP {status}: {message[:200]}"


@pytest.mark.anyio
@pytest.mark.parametrize(
    "content",
    [
        b'{"id": "chatcmpl-1", "object": "chat.completion", "choices": [{"index": 0, "message": {"role"',
        b'data: {"choices": []}\n\ndata: [DONE]\n\n',  # a stream where a JSON object was expected
        b"<html>Gateway login</html>",
        b"",
    ],
)
async def test_openai_malformed_body_is_bad_response(openai_chat: OpenAIChat, content: bytes) -> None:
    with respx.mock() as router:
        router.post(COMPLETIONS).mock(return_value=httpx.Response(200, content=content))
        with pytest.raises(BadResponse) as caught:
            await openai_chat.call(CAPITAL)
    assert "not JSON" in caught.value.message
    assert_no_key(caught.value)


def _without_choices() -> dict:
    body = openai_completion_body()
    del body["choices"]
    return body


@pytest.mark.anyio
@pytest.mark.parametrize(
    "body",
    [
        _without_choices(),
        {**openai_completion_body(), "choices": []},
        {**openai_completion_body(), "choices": None},
        {**openai_completion_body(), "choices": ["Paris"]},
        {**openai_completion_body(), "choices": [{"index": 0, "text": "legacy completions shape"}]},
        {**openai_completion_body(), "choices": [{"index": 0, "message": {"content": ["a", "b"]}}]},
        {**openai_completion_body(), "usage": {"prompt_tokens": "24", "completion_tokens": 8}},
        {**openai_completion_body(), "usage": {"prompt_tokens": -1, "completion_tokens": 8}},
        {**openai_completion_body(), "usage": [24, 8]},
        [openai_completion_body()],
        "Paris",
        None,
    ],
)
async def test_openai_wrong_shape_is_bad_response(openai_chat: OpenAIChat, body: object) -> None:
    with respx.mock() as router:
        router.post(COMPLETIONS).mock(return_value=httpx.Response(200, content=json.dumps(body).encode()))
        with pytest.raises(BadResponse) as caught:
            await openai_chat.call(CAPITAL)
    assert caught.value.message.startswith("unexpected response")


@pytest.mark.anyio
async def test_openai_connection_error_is_unavailable_without_key(openai_chat: OpenAIChat) -> None:
    with respx.mock() as router:
        router.post(COMPLETIONS).mock(side_effect=httpx.ConnectError("[Errno -3] Temporary failure"))
        with pytest.raises(Unavailable) as caught:
            await openai_chat.call(CAPITAL)
    assert caught.value.message == "cannot reach api.openai.com: ConnectError"
    assert_no_key(caught.value)


# ------------------------------------------------------------------------- (c) llamacpp in-process


@pytest.mark.slow
@pytest.mark.anyio
@pytest.mark.parametrize("model", ["smollm2-135m", "gemma3-270m"])
async def test_llamacpp_packaged_models_complete(env: ProviderEnv, model: str) -> None:
    chat = adapter(
        env,
        "llamacpp",
        f"local-{model}",
        model=model,
        input_cost_per_token=IN_COST,
        output_cost_per_token=OUT_COST,
        options={"n_ctx": 512},
    )
    result = await chat.call(CAPITAL)
    assert isinstance(result, Completion)
    assert result.text and result.text == result.text.strip()
    assert result.model == model
    assert result.usage.prompt_tokens > 0
    assert 0 < result.usage.completion_tokens <= CAPITAL.max_tokens
    assert result.cost_usd == pytest.approx(
        result.usage.prompt_tokens * IN_COST + result.usage.completion_tokens * OUT_COST
    )
    assert result.finish_reason in ("stop", "length")
    if PACKAGED_MODELS[model][1] == "transcript":
        # the transcript stops before the model invents the user's next turn
        assert "\nUser:" not in result.text


def test_transcript_prompt_ends_where_the_assistant_speaks() -> None:
    prompt = transcript_prompt(
        [{"role": "system", "content": " Be brief. "}, {"role": "user", "content": "Hi\n"}]
    )
    assert prompt == "System: Be brief.\nUser: Hi\nAssistant:"


@pytest.mark.anyio
async def test_llamacpp_unknown_packaged_model_is_bad_request(env: ProviderEnv) -> None:
    chat = adapter(env, "llamacpp", "local-unknown", model="llama-70b")
    with pytest.raises(BadRequest) as caught:
        await chat.call(CAPITAL)
    assert "llama-70b" in caught.value.message
    assert "smollm2-135m" in caught.value.message


@pytest.mark.anyio
async def test_llamacpp_missing_model_file_is_unavailable(env: ProviderEnv, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "model.gguf"
    chat = adapter(env, "llamacpp", "local-file", options={"model_path": str(missing)})
    with pytest.raises(Unavailable) as caught:
        await chat.call(CAPITAL)
    assert "model file not found" in caught.value.message


@pytest.mark.anyio
async def test_llamacpp_file_that_is_not_gguf_is_unavailable(env: ProviderEnv, tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.gguf"
    bogus.write_bytes(b"GGUF but not really" * 10)
    chat = adapter(env, "llamacpp", "local-bogus", options={"model_path": str(bogus)})
    with pytest.raises(Unavailable) as caught:
        await chat.call(CAPITAL)
    assert "bogus.gguf" in caught.value.message
