"""A session budget holds when its turns arrive concurrently: admission and reservation happen in
one step of the event loop (MTRouter on its priors decides on the loop), against a priced
OpenAI-compatible endpoint in its own process that bills what it reports in `usage`."""

from __future__ import annotations

import sqlite3

import anyio
import pytest
from mcp import Client

from mcp_router.bench.overhead.setting import bench_setup
from mcp_router.config import load_config
from mcp_router.serving.server import create_server

pytestmark = [pytest.mark.anyio, pytest.mark.slow]
BUDGET = 0.0005


async def test_concurrent_turns_of_one_session_never_spend_past_its_budget() -> None:
    with bench_setup() as setup:
        db = setup.workdir / "r.db"
        async with Client(create_server(load_config(setup.config), db), cache=None) as client:
            served: list[float] = []
            refused: list[str] = []

            async def turn(i: int) -> None:
                result = await client.call_tool(
                    "llm_complete",
                    {
                        "messages": [{"role": "user", "content": f"Question {i}: what is the capital?"}],
                        "max_tokens": 8,
                        "session_id": "one-session",
                        "budget_usd": BUDGET,
                    },
                )
                if result.is_error:
                    refused.append(result.content[0].text)
                else:
                    served.append(result.structured_content["cost_usd"])

            async with anyio.create_task_group() as tg:
                for i in range(20):
                    tg.start_soon(turn, i)
        assert served and refused, (served, refused)
        assert sum(served) <= BUDGET
        assert all("no model can serve this call" in message for message in refused)
        with sqlite3.connect(db) as conn:
            (spent,) = conn.execute(
                "SELECT SUM(cost_usd) FROM llm_steps WHERE session_id = 'one-session'"
            ).fetchone()
        assert spent == pytest.approx(sum(served)) and spent <= BUDGET
