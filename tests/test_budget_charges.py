"""What a budgeted session is charged, against a priced OpenAI-compatible endpoint on loopback:
usage when the reply reports it, the model's worst case when it does not, the worst case of an attempt
the provider may have billed before it failed, and an operator cap no call can raise."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from mcp_router.config import load_config
from mcp_router.serving.server import create_server

pytestmark = pytest.mark.anyio
IN_PRICE, OUT_PRICE = 1e-6, 2e-6


class Chat(BaseHTTPRequestHandler):
    """`/<mode>/v1/chat/completions`: `usage` answers with usage, `bare` without, `slow` after 3 s."""

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        mode = self.path.split("/")[1]
        if mode == "slow":
            time.sleep(3)
        reply: dict[str, Any] = {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "model": body["model"],
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": "Paris."}, "finish_reason": "stop"}
            ],
        }
        if mode != "bare":
            reply["usage"] = {"prompt_tokens": 20, "completion_tokens": 3, "total_tokens": 23}
        data = json.dumps(reply).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def chat_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Chat)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def config(tmp_path: Path, chat_url: str, modes: list[str], mtrouter: str = "") -> Path:
    """One priced model whose endpoints answer in `modes`, tried in that order (round-robin warm-up)."""
    endpoints = "".join(
        f"""
[[tools.llm_complete.providers]]
name = "{mode}-ep"
type = "openai"
base_url = "{chat_url}/{mode}/v1"
model = "priced"
api_key_env = "MCP_ROUTER_TEST_CHAT_KEY"
enabled = true
input_cost_per_token = {IN_PRICE}
output_cost_per_token = {OUT_PRICE}
quality_prior = 0.5
timeout_s = {1 if mode == "slow" else 10}
"""
        for mode in modes
    )
    path = tmp_path / "router.toml"
    path.write_text(
        f"""auto_providers = false
[tools.llm_complete]
router = "round-robin"
max_attempts = 2
[tools.llm_complete.mtrouter]
{mtrouter}
{endpoints}
[judge]
enabled = false
"""
    )
    return path


async def ask(client: Client, session: str, budget: float | None = None) -> Any:
    args: dict[str, Any] = {"messages": [{"role": "user", "content": "Capital of France?"}], "max_tokens": 16}
    args |= {"session_id": session} | ({"budget_usd": budget} if budget is not None else {})
    return await client.call_tool("llm_complete", args)


def steps(db: Path, session: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(db) as conn:
        return conn.execute(
            "SELECT s.est_cost_usd, s.cost_usd, c.cost_usd, s.budget_usd FROM llm_steps s "
            "JOIN calls c ON c.call_id = s.call_id WHERE s.session_id = ? ORDER BY s.step_id",
            (session,),
        ).fetchall()


async def test_usage_is_charged_and_a_reply_without_usage_costs_its_worst_case(
    tmp_path: Path, chat_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MCP_ROUTER_TEST_CHAT_KEY", "k")
    db = tmp_path / "r.db"
    async with Client(
        create_server(load_config(config(tmp_path, chat_url, ["usage", "bare"])), db)
    ) as client:
        with_usage, without = await ask(client, "s", 1.0), await ask(client, "s")
    assert with_usage.structured_content["cost_usd"] == pytest.approx(20 * IN_PRICE + 3 * OUT_PRICE)
    (est_1, cost_1, call_1, _), (est_2, cost_2, call_2, _) = steps(db, "s")
    assert cost_1 == call_1 == pytest.approx(20 * IN_PRICE + 3 * OUT_PRICE)
    assert cost_1 < est_1
    assert cost_2 == call_2 == pytest.approx(est_2) == without.structured_content["cost_usd"]
    assert est_2 >= 16 * OUT_PRICE  # the worst case covers max_tokens of output


async def test_a_failed_attempt_the_provider_may_have_billed_is_charged(
    tmp_path: Path, chat_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MCP_ROUTER_TEST_CHAT_KEY", "k")
    db = tmp_path / "r.db"
    async with Client(
        create_server(load_config(config(tmp_path, chat_url, ["slow", "usage"])), db)
    ) as client:
        result = await ask(client, "s", 1.0)  # round-robin starts at `slow`: it times out, `usage` serves
    assert not result.is_error and result.structured_content["fallbacks"] == [
        "slow-ep: timeout (no answer within 1.0 s)"
    ]
    ((est, cost, _, _),) = steps(db, "s")
    assert cost == pytest.approx(20 * IN_PRICE + 3 * OUT_PRICE + est)


async def test_the_operator_cap_bounds_every_budget(
    tmp_path: Path, chat_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MCP_ROUTER_TEST_CHAT_KEY", "k")
    db = tmp_path / "r.db"
    cap = 0.0002
    loaded = load_config(config(tmp_path, chat_url, ["usage"], f"max_budget_usd = {cap}"))
    async with Client(create_server(loaded, db)) as client:
        served = refused = 0
        for _ in range(30):
            result = await ask(client, "greedy", budget=100.0)  # asks for far more than the cap
            served, refused = served + (not result.is_error), refused + result.is_error
        lower = await ask(client, "modest", budget=cap / 10)
        default = await ask(client, "unnamed")
    rows = steps(db, "greedy")
    assert refused and len(rows) == served and {budget for *_, budget in rows} == {cap}
    assert sum(cost for _, cost, _, _ in rows) <= cap
    assert lower.is_error and "budget" in lower.content[0].text  # a lower budget holds
    assert not default.is_error and steps(db, "unnamed")[0][3] == cap  # no budget named: the cap


async def test_a_reservation_whose_call_never_ran_is_released_at_once(
    tmp_path: Path, chat_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A plan whose call fails before it is recorded gives its reservation back when it ends, instead
    of holding the session's budget until the reservation lapses."""
    from mcp_router.serving.runtime import open_runtime
    from providers.types import ChatMessage, CompletionRequest

    monkeypatch.setenv("MCP_ROUTER_TEST_CHAT_KEY", "k")
    db = tmp_path / "r.db"
    rt = open_runtime(load_config(config(tmp_path, chat_url, ["usage"])), db)
    assert rt.planner is not None
    request = CompletionRequest(messages=(ChatMessage("user", "Capital of France?"),), max_tokens=16)
    rt.planner._current.set()  # no checkpoint to wait for
    with pytest.raises(RuntimeError, match="before the call"):
        async with rt.planner.plan(request, "s", 1.0):
            assert rt.store.count("reservations") == 1
            raise RuntimeError("failed before the call was dispatched")
    assert rt.store.count("reservations") == 0 and rt.store.session("s")["spent_usd"] == 0.0
    await rt.aclose()


async def test_a_call_without_a_session_reserves_nothing_and_its_budget_still_holds(
    tmp_path: Path, chat_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its session is its own (no other call can spend from it), so the decision's admission is the
    whole check: no reservation row, no commit before the provider call, and a budget below the
    model's worst case is still refused."""
    from mcp_router.serving.errors import BudgetExhausted
    from mcp_router.serving.runtime import open_runtime
    from providers.types import ChatMessage, CompletionRequest

    monkeypatch.setenv("MCP_ROUTER_TEST_CHAT_KEY", "k")
    rt = open_runtime(load_config(config(tmp_path, chat_url, ["usage"])), tmp_path / "r.db")
    assert rt.planner is not None
    request = CompletionRequest(messages=(ChatMessage("user", "Capital of France?"),), max_tokens=16)
    rt.planner._current.set()  # no checkpoint to wait for
    commits = rt.planner.writer.commits
    async with rt.planner.plan(request, None, 1.0) as plan:
        assert rt.store.count("reservations") == 0 and rt.planner.writer.commits == commits
        assert plan.step.reservation_id is None and plan.step.session_id.startswith("call:")
    async with rt.planner.plan(request, "named", 1.0) as plan:  # a named session does reserve
        assert rt.store.count("reservations") == 1 and plan.step.reservation_id is not None
    with pytest.raises(BudgetExhausted, match="no model can serve this call"):
        async with rt.planner.plan(request, None, 1e-9):
            pass
    await rt.aclose()
