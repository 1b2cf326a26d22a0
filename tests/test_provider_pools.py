"""One connection pool per provider: a provider whose connections are all held by slow calls makes only
its own calls wait, and a call that cannot get a connection in time says so (not "timed out").

Real loopback servers and the real Brave adapter: "slow" holds every request until the test releases
it, "fast" answers at once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import AsyncIterator, Callable

import anyio
import httpx
import pytest

from providers import ProviderEnv, Unavailable, create_adapter
from providers.retrieve.collections import CollectionLibrary
from providers.types import SearchHit, SearchRequest
from tests.providers_support import (
    FAKE_KEY,
    Answer,
    Seen,
    all_text,
    json_answer,
    loopback,
    provider_env,
    spec,
)

pytestmark = pytest.mark.anyio

BODY = {
    "type": "search",
    "web": {"results": [{"title": "T", "url": "https://a.example/", "description": "D"}]},
}
REQUEST = SearchRequest(query="coffee", k=1)
POOL_TIMEOUT_S = 0.3


@pytest.fixture
async def env() -> AsyncIterator[ProviderEnv]:
    async with provider_env() as environment:
        yield environment


async def wait_for(condition: Callable[[], bool], timeout_s: float = 5.0) -> None:
    with anyio.fail_after(timeout_s):
        while not condition():
            await anyio.sleep(0.01)


async def test_a_saturated_provider_starves_only_itself(env: ProviderEnv) -> None:
    release = threading.Event()

    def hold(seen: Seen) -> Answer:
        release.wait(10.0)
        return json_answer(BODY)

    with loopback(hold) as slow_server, loopback(lambda seen: json_answer(BODY)) as fast_server:
        slow = create_adapter(
            spec(
                "brave",
                "slow",
                api_key=FAKE_KEY,
                base_url=slow_server.url,
                max_connections=2,
                pool_timeout_s=POOL_TIMEOUT_S,
            ),
            env,
        )
        fast = create_adapter(spec("brave", "fast", api_key=FAKE_KEY, base_url=fast_server.url), env)
        held: list[list[SearchHit]] = []

        async def held_call() -> None:
            held.append(await slow.call(REQUEST))

        async with anyio.create_task_group() as tg:
            for _ in range(2):
                tg.start_soon(held_call)
            await wait_for(lambda: len(slow_server.seen) == 2)  # both of slow's connections are busy

            started = time.monotonic()
            results: list[list[SearchHit]] = []

            async def fast_call() -> None:
                results.append(await fast.call(REQUEST))

            async with anyio.create_task_group() as fast_calls:
                for _ in range(4):
                    fast_calls.start_soon(fast_call)
            assert [[hit.title for hit in hits] for hits in results] == [["T"]] * 4
            assert time.monotonic() - started < 1.0

            started = time.monotonic()
            with pytest.raises(Unavailable) as caught:
                await slow.call(REQUEST)
            waited = time.monotonic() - started
            assert caught.value.message == (
                f"connection pool exhausted (2 connections busy, none free within {POOL_TIMEOUT_S:g} s)"
            )
            assert caught.value.provider == "slow" and caught.value.kind == "unavailable"
            assert "timed out" not in all_text(caught.value)
            assert POOL_TIMEOUT_S - 0.05 <= waited < POOL_TIMEOUT_S + 0.7
            assert len(slow_server.seen) == 2  # the third call never reached the server

            release.set()
        assert [[hit.title for hit in hits] for hits in held] == [["T"]] * 2


async def test_each_provider_has_its_own_client_until_the_env_closes() -> None:
    env = ProviderEnv(collections=CollectionLibrary(()))
    a, b = spec("brave", "a", max_connections=2), spec("brave", "b")
    client_a = env.client(a)
    assert env.client(a) is client_a and env.client(b) is not client_a
    await env.aclose()
    assert client_a.is_closed and env.client(b).is_closed is False  # a fresh one after closing
    await env.aclose()


async def test_a_shared_client_serves_every_provider_and_stays_open() -> None:
    async with httpx.AsyncClient() as shared:
        env = ProviderEnv(collections=CollectionLibrary(()), http=shared)
        assert env.client(spec("brave", "a")) is shared and env.client(spec("brave", "b")) is shared
        await env.aclose()
        assert not shared.is_closed
