"""A cancelled `llamacpp` call stops llama.cpp's generation and frees the model within a second.

Real models, real llama.cpp. Each long call asks for 4,096 tokens with a prompt the model answers at
length (here it runs to its token limit: minutes of generation on two cores), and is cancelled after
0.5 s, the way the dispatcher's timeout (`anyio.move_on_after`) or an MCP client's cancellation (its
request's cancel scope, cancelled from another task) does it. The long prompt is evaluated once
beforehand (llama.cpp reuses it from its cache), so the cancellation lands in generation, which
stops per token: evaluating a prompt cannot be interrupted, and on a busy machine even this one's
can take most of a second. The models load once per process (`llamacpp` keeps them by path and
context size), so each test pays only for its own generations.
"""

from __future__ import annotations

from dataclasses import replace

import anyio
import pytest

from providers import ProviderEnv
from providers.llm.llamacpp import LlamaCppChat, _models
from providers.types import ChatMessage, CompletionRequest
from tests.providers_support import adapter

pytestmark = [pytest.mark.slow, pytest.mark.anyio]

N_CTX = 4608  # room for the whole 4,096-token answer, so llama.cpp does not cut max_tokens to the context
CANCEL_AFTER_S = 0.5
# The model is free within about a token of the cancel (10–150 ms measured); the bound is generous
# because a shared 2-core machine stalls threads, and what it tells apart is a generation that stops
# from one that runs on for its 4,096 tokens (minutes here).
FREE_WITHIN_S = 3.0
LONG = CompletionRequest(
    messages=(
        ChatMessage(
            "user",
            "Write a very long, detailed story about a dragon who travels the world, with many "
            "chapters. Make it at least 3000 words.",
        ),
    ),
    max_tokens=4096,
    temperature=0.0,
)
SHORT = CompletionRequest(messages=(ChatMessage("user", "Say hello."),), max_tokens=4, temperature=0.0)


def local(env: ProviderEnv, model: str) -> LlamaCppChat:
    chat = adapter(env, "llamacpp", f"local-{model}", model=model, options={"n_ctx": N_CTX})
    chat.prepare()  # loads the model once per process; later adapters of the same model reuse it
    return chat


def model_busy(chat: LlamaCppChat) -> bool:
    assert chat._key is not None
    return _models[chat._key].lock.locked()


async def own_time(chat: LlamaCppChat) -> float:
    """How long a short call takes on its own, with the model idle: the allowance a call queued
    behind a cancelled one gets beyond `FREE_WITHIN_S`."""
    started = anyio.current_time()
    result = await chat.call(SHORT)
    assert 0 < result.usage.completion_tokens <= SHORT.max_tokens
    return anyio.current_time() - started


async def cache_long_prompt(chat: LlamaCppChat) -> None:
    await chat.call(replace(LONG, max_tokens=1))


async def wait_until_free(chat: LlamaCppChat, limit_s: float) -> float:
    """Seconds until no thread of `chat` generates and its model's lock is free; fails past `limit_s`."""
    started = anyio.current_time()
    with anyio.fail_after(limit_s):
        while chat.running or model_busy(chat):
            await anyio.sleep(0.005)
    return anyio.current_time() - started


@pytest.mark.parametrize(
    "model",
    [
        "smollm2-135m",  # chat: create_chat_completion, stopped through its logits processor
        "gemma3-270m",  # transcript: create_completion, stopped by its stopping criteria
    ],
)
async def test_timeout_stops_the_generation_and_frees_the_model(
    env: ProviderEnv, model: str, capfd: pytest.CaptureFixture[str]
) -> None:
    chat = local(env, model)
    own = await own_time(chat)
    await cache_long_prompt(chat)
    generating_at_cancel: list[bool] = []

    async def watch(deadline: float) -> None:
        await anyio.sleep_until(deadline - 0.05)
        generating_at_cancel.append(chat.running == 1 and model_busy(chat))

    async with anyio.create_task_group() as tg:
        with anyio.move_on_after(CANCEL_AFTER_S) as scope:
            tg.start_soon(watch, scope.deadline)
            await chat.call(LONG)
    returned = anyio.current_time()

    assert scope.cancelled_caught, "the long generation ended on its own before the timeout"
    assert generating_at_cancel == [True]
    # the call waits for its thread to leave the model, so the model is free once it returns
    assert returned - scope.deadline <= FREE_WITHIN_S
    assert chat.running == 0 and not model_busy(chat)
    await own_time(chat)  # and the next call gets it
    assert anyio.current_time() - scope.deadline <= FREE_WITHIN_S + own + 0.5 * own
    assert capfd.readouterr().out == ""  # llama.cpp logs nothing to stdout, cancelled or not


async def test_call_queued_behind_a_timed_out_one_gets_the_model_within_a_second(env: ProviderEnv) -> None:
    chat = local(env, "smollm2-135m")
    own = await own_time(chat)
    await cache_long_prompt(chat)
    short_done: list[float] = []

    async def long_call_with_timeout() -> float:
        with anyio.move_on_after(CANCEL_AFTER_S) as scope:
            await chat.call(LONG)
        assert scope.cancelled_caught
        return scope.deadline

    async def short_call_queued() -> None:
        await anyio.sleep(0.1)  # after the long call has taken the model
        await chat.call(SHORT)
        short_done.append(anyio.current_time())

    async with anyio.create_task_group() as tg:
        tg.start_soon(short_call_queued)
        cancelled_at = await long_call_with_timeout()

    assert short_done and short_done[0] - cancelled_at <= FREE_WITHIN_S + own
    assert await wait_until_free(chat, FREE_WITHIN_S) < FREE_WITHIN_S


async def test_client_cancellation_stops_the_generation_and_the_queued_call(env: ProviderEnv) -> None:
    """The MCP SDK cancels a request by cancelling its scope from another task. Here both the running
    generation and a call queued behind it are cancelled; neither may hold the model afterwards, and
    the queued one must not evaluate its prompt once the model is free."""
    chat = local(env, "smollm2-135m")
    own = await own_time(chat)
    await cache_long_prompt(chat)
    scopes = [anyio.CancelScope(), anyio.CancelScope()]
    finished: list[str] = []

    async def client_call(scope: anyio.CancelScope, request: CompletionRequest, name: str) -> None:
        with scope:
            await chat.call(request)
            finished.append(name)

    async with anyio.create_task_group() as tg:
        tg.start_soon(client_call, scopes[0], LONG, "long")
        await anyio.sleep(0.1)
        tg.start_soon(client_call, scopes[1], LONG, "queued")
        await anyio.sleep(CANCEL_AFTER_S - 0.1)
        assert chat.running == 2 and model_busy(chat)  # one generating, one waiting for the model
        cancelled_at = anyio.current_time()
        for scope in scopes:
            scope.cancel()
    returned = anyio.current_time()

    assert finished == []
    assert returned - cancelled_at <= FREE_WITHIN_S
    assert chat.running == 0 and not model_busy(chat)
    await own_time(chat)
    assert anyio.current_time() - cancelled_at <= FREE_WITHIN_S + own + 0.5 * own
