"""The host's own model as the judge (`[judge] provider = "sampling"`): real `mcp.Client`s whose
sampling callback answers in the rubric's format, against the real server, in-process and over
streamable HTTP (a real subprocess), with the real bm25 arm and the real local judge as fallback."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import anyio
import pytest
from mcp import Client
from mcp.types import CreateMessageRequestParams, CreateMessageResult, TextContent

from mcp_router.config import load_config
from mcp_router.feedback.judge import SYSTEM_PROMPT, JudgeInput
from mcp_router.feedback.local_judge import LocalJudge
from mcp_router.serving.server import create_server
from tests.http_support import serve_http
from tests.test_quality_signals import arm_stats, recent_calls, wait_for

pytestmark = pytest.mark.anyio
QUERY = "how much sun do tomatoes need"
SECRET = "sk-sampling-test-secret-0123456789"


def sampling_config(tmp_path: Path, notes_dir: Path, timeout_s: float = 10) -> Path:
    """retrieve over the notes with bm25, every call judged, the judge opted into sampling; an OpenAI
    provider whose key is set, which the sampling judge must never use."""
    path = tmp_path / "sampling.toml"
    path.write_text(f"""
[collections.notes]
path = "{notes_dir}"

[tools.retrieve]
[[tools.retrieve.providers]]
name = "bm25"
type = "bm25"

[tools.llm_complete.mtrouter]
enabled = false

[[tools.llm_complete.providers]]
name = "openai"
type = "openai"
model = "gpt-4o-mini"
api_key_env = "OPENAI_API_KEY"
base_url = "http://127.0.0.1:9/v1"
quality_prior = 0.9

[judge]
provider = "sampling"
rate = 1.0
timeout_s = {timeout_s}
""")
    return path


def answer(text: str, model: str = "host-test-model") -> CreateMessageResult:
    return CreateMessageResult(role="assistant", content=TextContent(type="text", text=text), model=model)


class Host:
    """A client's sampling callback that records what it was asked and replies `reply` (or raises)."""

    def __init__(self, reply: str | Exception) -> None:
        self.reply = reply
        self.asked: list[CreateMessageRequestParams] = []

    async def __call__(self, context: object, params: CreateMessageRequestParams) -> CreateMessageResult:
        self.asked.append(params)
        if isinstance(self.reply, Exception):
            raise self.reply
        return answer(self.reply)


async def judge_call_of(client: Client, call_id: str) -> dict:
    """The judge's record for `call_id`, once the judge queue has processed its job."""
    with anyio.fail_after(15):
        while True:
            for call in await recent_calls(client):
                if call["tool"] == "judge" and call["request"]["judged_call"] == call_id:
                    return call
            await anyio.sleep(0.05)


@pytest.fixture
def keyed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)


def test_sampling_is_an_opt_in_judge_that_spends_no_key(
    tmp_path: Path, notes_dir: Path, keyed, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = load_config(sampling_config(tmp_path, notes_dir)).config
    assert config.sampling_judge()
    assert config.local_judge()  # the fallback for search and retrieve
    assert config.judge_provider() is None  # a hosted key is set, yet no hosted model judges
    monkeypatch.delenv("MCP_ROUTER_CONFIG", raising=False)
    default = load_config().config
    assert not default.sampling_judge()  # never on unless named
    assert default.judge_provider().name == "openai"  # the key's LLM judge, as before


async def test_the_host_model_judges_a_legacy_session_call(
    tmp_path: Path, notes_dir: Path, keyed, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    host = Host("Grades follow.\nPASSAGE 1: 4")
    server = create_server(load_config(sampling_config(tmp_path, notes_dir)), tmp_path / "s.db")
    async with Client(server, mode="legacy", sampling_callback=host, cache=None) as client:
        result = await client.call_tool("retrieve", {"query": QUERY, "k": 1})
        assert not result.is_error
        call_id = result.structured_content["call_id"]
        stats = await wait_for(client, "retrieve", "bm25", 1)
        judged = await judge_call_of(client, call_id)
    assert stats["quality_mean"] == pytest.approx(0.75)  # the host's 4 -> (4 - 1) / 4
    assert stats["router"]["score"]["n"] == 1  # the arm's LinUCB head learned it
    (asked,) = host.asked
    assert asked.system_prompt == SYSTEM_PROMPT and asked.temperature == 0.0
    prompt = asked.messages[-1].content.text
    passage = result.structured_content["passages"][0]["text"]
    assert QUERY in prompt and passage in prompt and prompt.endswith("PASSAGE 1: N")  # the LLM rubric
    (attempt,) = judged["attempts"]
    assert attempt["provider"] == "host-model" and attempt["status"] == "ok" and attempt["latency_s"] > 0
    assert judged["cost_usd"] == 0.0
    assert judged["request"]["judge"] == "sampling" and judged["request"]["model"] == "host-test-model"
    shown = json.dumps([p.model_dump(mode="json") for p in host.asked])
    assert SECRET not in shown and SECRET not in caplog.text
    assert all(SECRET.encode() not in f.read_bytes() for f in tmp_path.glob("s.db*"))  # db, WAL


@pytest.mark.parametrize(
    ("mode", "with_callback", "why"),
    [
        ("legacy", False, "declared no sampling capability"),
        ("auto", True, "the client speaks 2026-07-28"),
    ],
)
async def test_a_client_that_cannot_be_asked_gets_the_local_judge(
    tmp_path: Path,
    notes_dir: Path,
    caplog: pytest.LogCaptureFixture,
    mode: str,
    with_callback: bool,
    why: str,
) -> None:
    caplog.set_level(logging.INFO, logger="mcp_router.judge")
    host = Host("PASSAGE 1: 1")
    server = create_server(load_config(sampling_config(tmp_path, notes_dir)), tmp_path / "f.db")
    callback = {"sampling_callback": host} if with_callback else {}
    async with Client(server, mode=mode, cache=None, **callback) as client:
        results = [await client.call_tool("retrieve", {"query": QUERY, "k": 1}) for _ in range(2)]
        stats = await wait_for(client, "retrieve", "bm25", 2)
        judged = [await judge_call_of(client, r.structured_content["call_id"]) for r in results]
    assert host.asked == []  # the 2026-07-28 client declared sampling, but cannot be asked after the call
    passages = tuple(p["text"] for p in results[0].structured_content["passages"])
    expected = LocalJudge().score(JudgeInput("retrieve", QUERY, passages))
    assert stats["quality_mean"] == pytest.approx(expected, abs=1e-6)  # the local judge's grade
    assert {c["attempts"][0]["provider"] for c in judged} == {"local-judge"}
    told = [r.getMessage() for r in caplog.records if "sampling judge:" in r.getMessage()]
    assert len(told) == 1 and why in told[0]  # said once, not per call


@pytest.mark.parametrize(
    ("reply", "status"),
    [
        ("These passages look great to me!", "ok"),  # answered, but not in the rubric's format
        ("PASSAGE 1: 5\nPASSAGE 1: 5", "ok"),  # a duplicate key: ambiguous, rejected
        (RuntimeError("the host's model is down"), "unavailable"),
    ],
)
async def test_a_host_that_answers_garbage_or_fails_costs_only_the_signal(
    tmp_path: Path, notes_dir: Path, reply: str | Exception, status: str
) -> None:
    host = Host(reply)
    server = create_server(load_config(sampling_config(tmp_path, notes_dir)), tmp_path / "g.db")
    async with Client(server, mode="legacy", sampling_callback=host, cache=None) as client:
        result = await client.call_tool("retrieve", {"query": QUERY, "k": 1})
        assert not result.is_error and result.structured_content["passages"]
        judged = await judge_call_of(client, result.structured_content["call_id"])
        stats = await arm_stats(client, "retrieve", "bm25")
        again = await client.call_tool("retrieve", {"query": "sourdough flour", "k": 1})  # still serving
        recent = await recent_calls(client)
    assert len(host.asked) >= 1
    assert judged["attempts"][0]["status"] == status and judged["cost_usd"] == 0.0
    assert stats["quality_n"] == 0  # the parser rejected it, or there was nothing to parse: no update
    assert not again.is_error
    call = next(c for c in recent if c["call_id"] == result.structured_content["call_id"])
    assert call["attempts"][0]["status"] == "ok"  # the call's own record is intact


async def test_a_host_that_does_not_answer_in_time_is_a_timed_out_judge_call(
    tmp_path: Path, notes_dir: Path
) -> None:
    async def silent(context: object, params: CreateMessageRequestParams) -> CreateMessageResult:
        await anyio.sleep_forever()
        raise AssertionError("unreachable")

    server = create_server(load_config(sampling_config(tmp_path, notes_dir, timeout_s=1)), tmp_path / "t.db")
    async with Client(server, mode="legacy", sampling_callback=silent, cache=None) as client:
        result = await client.call_tool("retrieve", {"query": QUERY, "k": 1})
        assert not result.is_error
        judged = await judge_call_of(client, result.structured_content["call_id"])
        stats = await arm_stats(client, "retrieve", "bm25")
    assert judged["attempts"][0]["status"] == "timeout"
    assert stats["quality_n"] == 0


@pytest.mark.slow
async def test_over_http_a_job_whose_session_closed_is_dropped(tmp_path: Path, notes_dir: Path) -> None:
    """Two legacy sessions on one HTTP server (one judge queue). Session B's host holds the queue's
    worker; session A makes a call and leaves; when B's host answers, B's call is judged by it, and
    A's job finds its session gone and is dropped, with A's call record intact."""
    release = anyio.Event()
    grading = anyio.Event()

    async def slow_host(context: object, params: CreateMessageRequestParams) -> CreateMessageResult:
        grading.set()
        await release.wait()
        return answer("PASSAGE 1: 5")

    host_a = Host("PASSAGE 1: 1")
    log = tmp_path / "server.log"
    with serve_http(sampling_config(tmp_path, notes_dir, timeout_s=60), tmp_path / "h.db", log) as server:
        async with Client(server.url, mode="legacy", sampling_callback=slow_host, cache=None) as b:
            judged_b = await b.call_tool("retrieve", {"query": QUERY, "k": 1})
            with anyio.fail_after(30):
                await grading.wait()  # the worker is now waiting on B's host
            async with Client(server.url, mode="legacy", sampling_callback=host_a, cache=None) as a:
                left = await a.call_tool("retrieve", {"query": "sourdough flour", "k": 1})
                assert not left.is_error
            release.set()
            stats = await wait_for(b, "retrieve", "bm25", 1)
            with anyio.fail_after(15):
                while "dropped: its client session closed" not in log.read_text():
                    await anyio.sleep(0.05)
            recent = await recent_calls(b)
            stats = await arm_stats(b, "retrieve", "bm25")
    assert host_a.asked == []
    assert stats["quality_n"] == 1 and stats["quality_mean"] == 1.0  # B's host's grade only
    judged = {c["request"]["judged_call"]: c for c in recent if c["tool"] == "judge"}
    assert judged[judged_b.structured_content["call_id"]]["attempts"][0]["provider"] == "host-model"
    left_id = left.structured_content["call_id"]
    assert left_id not in judged  # dropped: no judge call
    assert next(c for c in recent if c["call_id"] == left_id)["attempts"][0]["status"] == "ok"


@pytest.mark.slow
async def test_over_stateless_http_the_local_judge_grades(tmp_path: Path, notes_dir: Path) -> None:
    """A stateless HTTP server keeps no session: the client's sampling is out of reach, so the
    local judge grades its calls (and says why, once)."""
    host = Host("PASSAGE 1: 1")
    log = tmp_path / "server.log"
    config = sampling_config(tmp_path, notes_dir)
    with serve_http(config, tmp_path / "sl.db", log, extra=("--stateless",)) as server:
        async with Client(server.url, mode="legacy", sampling_callback=host, cache=None) as client:
            result = await client.call_tool("retrieve", {"query": QUERY, "k": 1})
            judged = await judge_call_of(client, result.structured_content["call_id"])
    assert host.asked == []
    assert judged["attempts"][0]["provider"] == "local-judge"
    assert "keeps no session to ask the client on (stateless HTTP)" in log.read_text()
