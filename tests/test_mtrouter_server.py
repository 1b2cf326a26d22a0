"""MTRouter through the MCP server, against a real `llama_cpp.server` on 127.0.0.1.

Two priced models (`premium`, `economy`) are served by `openai` providers pointing at the same local
server, so costs are real usage × price. A session with a budget never spends past it and ends with
a clear error; its steps are in SQLite; `mcp-router train --from-db` on a scripted database yields a
checkpoint that a restarted server then uses.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from mcp import Client

from mcp_router.config import load_config
from mcp_router.serving.server import create_server
from tests.providers_support import llama_server, smollm2_gguf

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

PREMIUM_PRICES = (2e-5, 4e-5)  # USD per input / output token
ECONOMY_PRICES = (2e-6, 4e-6)


@pytest.fixture(scope="module")
def llama_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    log = tmp_path_factory.mktemp("llama_server") / "server.log"
    with llama_server(smollm2_gguf(), log, alias="smollm2-135m", n_ctx=2048) as base:
        yield base


def pool_config(base_url: str, *, beta: float, lam: float, embedder: str = "hashing") -> str:
    endpoints = ""
    for name, (cin, cout), prior in (("premium", PREMIUM_PRICES, 0.9), ("economy", ECONOMY_PRICES, 0.4)):
        endpoints += f"""
[[tools.llm_complete.providers]]
name = "{name}-ep"
type = "openai"
base_url = "{base_url}"
model = "smollm2-135m"
timeout_s = 60
input_cost_per_token = {cin}
output_cost_per_token = {cout}

[[tools.llm_complete.models]]
name = "{name}"
endpoints = ["{name}-ep"]
context_window = 2048
quality_prior = {prior}
"""
    return f"""
auto_providers = false

[tools.llm_complete]
timeout_s = 120
max_attempts = 2

[tools.llm_complete.mtrouter]
beta = {beta}
lambda = {lam}
embedder = "{embedder}"
{endpoints}
[judge]
enabled = false
"""


def write_config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "router.toml"
    path.write_text(text)
    return path


async def test_session_budget_is_never_exceeded_and_ends_with_a_clear_error(
    tmp_path: Path, llama_url: str
) -> None:
    config = write_config(tmp_path, pool_config(llama_url, beta=1.0, lam=0.0))
    db = tmp_path / "router.db"
    budget = 0.004
    messages: list[dict[str, str]] = []
    served: list[dict] = []
    async with Client(create_server(load_config(config), db), cache=None) as client:
        for turn in range(40):
            messages.append({"role": "user", "content": f"Turn {turn}: name a colour."})
            arguments = {"messages": messages, "max_tokens": 16, "session_id": "s1"}
            if turn == 0:
                arguments["budget_usd"] = budget  # later turns inherit the session's budget
            result = await client.call_tool("llm_complete", arguments)
            if result.is_error:
                error = result.content[0].text
                break
            data = result.structured_content
            served.append(data)
            messages.append({"role": "assistant", "content": data["text"]})
        else:
            pytest.fail("the budget never ran out")
        models = json.loads((await client.read_resource("router://models")).contents[0].text)

    spent = sum(d["cost_usd"] for d in served)
    assert 0 < spent <= budget
    assert len(served) >= 3
    assert "no model can serve this call (session spent $" in error and f"of ${budget:.6f}" in error
    assert "premium: budget: needs up to $" in error and "economy: budget" in error
    assert "Raise budget_usd" in error
    chosen = [d["model_choice"]["chosen"] for d in served]
    assert chosen[0] == "premium" and chosen[-1] == "economy"  # the dear model drops out first
    remaining = [d["model_choice"]["budget_remaining_usd"] for d in served]
    assert remaining == sorted(remaining, reverse=True) and remaining[-1] >= 0
    session = next(s for s in models["sessions"] if s["session_id"] == "s1")
    assert session["steps"] == len(served) and session["spent_usd"] == pytest.approx(spent, abs=1e-8)

    with sqlite3.connect(db) as conn:
        conn.row_factory = sqlite3.Row
        steps = conn.execute("SELECT * FROM llm_steps ORDER BY step_id").fetchall()
    assert [s["turn"] for s in steps] == list(range(len(served)))
    assert [s["chosen_model"] for s in steps] == chosen
    for step, data in zip(steps, served, strict=True):
        assert step["session_id"] == "s1" and step["status"] == "ok"
        assert step["propensity"] == 1.0 and step["policy"] in ("greedy", "only")
        assert step["cost_usd"] == pytest.approx(data["cost_usd"])
        assert step["prompt_tokens"] == data["usage"]["prompt_tokens"]
        assert step["cost_usd"] <= step["est_cost_usd"] + 1e-12  # the worst case really bounds it
        assert step["budget_usd"] == budget and step["latency_s"] > 0
        assert set(json.loads(step["q_values"])) <= {"premium", "economy"}
    assert "premium" in json.loads(steps[-1]["excluded"])


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mcp_router", *args], capture_output=True, text=True, timeout=600
    )


async def test_train_from_db_produces_a_checkpoint_the_server_then_uses(
    tmp_path: Path, llama_url: str
) -> None:
    config = write_config(tmp_path, pool_config(llama_url, beta=0.5, lam=0.0))
    db = tmp_path / "router.db"
    empty = run_cli("train", "--from-db", "--config", str(config), "--db", str(db))
    assert empty.returncode == 1 and "none is rated yet" in empty.stderr

    # A scripted user: economy answers are rated good, premium answers poor, in every session.
    async with Client(create_server(load_config(config), db), cache=None) as client:
        for session in range(12):
            messages: list[dict[str, str]] = []
            for turn in range(2):
                messages.append({"role": "user", "content": f"Question {turn} of session {session}?"})
                result = await client.call_tool(
                    "llm_complete", {"messages": messages, "max_tokens": 8, "session_id": f"s{session}"}
                )
                data = result.structured_content
                messages.append({"role": "assistant", "content": data["text"]})
                score = 1.0 if data["model_choice"]["chosen"] == "economy" else 0.0
                await client.call_tool("feedback", {"call_id": data["call_id"], "score": score})

    with sqlite3.connect(db) as conn:
        logged = conn.execute("SELECT chosen_model, propensity, policy, q_values FROM llm_steps").fetchall()
    assert len(logged) == 24 and {p for _, _, p, _ in logged} == {"greedy", "explore"}
    for chosen, propensity, _, q_values in logged:  # beta = 0.5 over two models: 0.75 greedy, 0.25 other
        q = json.loads(q_values)
        assert propensity == (0.75 if chosen == max(q, key=q.get) else 0.25)

    done = run_cli("train", "--from-db", "--config", str(config), "--db", str(db))
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["promoted"] and not report["forced"]
    assert (
        report["gate"]["baseline"] == "prior"
        and report["gate"]["mse"]["held_out_mse"] < report["gate"]["mse"]["baseline_mse"]
    )
    assert report["episodes"]["train"] + report["episodes"]["held_out"] == 12
    assert Path(report["path"]).is_file()

    greedy = write_config(tmp_path, pool_config(llama_url, beta=1.0, lam=0.0))
    async with Client(create_server(load_config(greedy), db), cache=None) as client:
        result = await client.call_tool(
            "llm_complete", {"messages": [{"role": "user", "content": "A new question?"}], "max_tokens": 8}
        )
        models = json.loads((await client.read_resource("router://models")).contents[0].text)
    choice = result.structured_content["model_choice"]
    # the prior would pick premium (0.9 > 0.4); the checkpoint learned that economy is rated better
    assert choice["stage"] == "checkpoint" and choice["chosen"] == "economy"
    assert models["checkpoint"]["in_use"] == report["checkpoint_id"]
    assert models["checkpoint"]["promoted"]["checkpoint_id"] == report["checkpoint_id"]
    with sqlite3.connect(db) as conn:
        last = conn.execute(
            "SELECT stage, checkpoint_id FROM llm_steps ORDER BY step_id DESC LIMIT 1"
        ).fetchone()
    assert last == ("checkpoint", report["checkpoint_id"])
