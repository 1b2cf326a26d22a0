"""Fault injection through the real server: every fault of `mcp_router.bench.faults`, on each wire
protocol it applies to (SearXNG JSON, OpenAI JSON, OpenAI SSE), against a router whose tool has a
faulty arm and a healthy one, driven by an in-process `mcp.Client`.

Each case asserts what the failed attempt is recorded as (the mapping of `providers/http.py`,
`providers/llm/openai.py` and `serving/dispatch.py`), that the call falls back and says so, what the
guards make of it (cooldown after a 429, breaker after five failures, its half-open probe), the error
when no arm can serve, and that every call is recorded exactly once (calls, attempts, events).

One fault server (a child process) serves every test of the module; each test has its own router
and database. LQM warms up its cold arms round-robin in config order, so a fresh router's first
call tries the first configured arm (the faulty one) first.
"""

from __future__ import annotations

import json
import re
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from mcp import Client, MCPError

from mcp_router.bench.faults import (
    FAULTS,
    MIX_FAULTS,
    RETRY_AFTER_S,
    Fault,
    FaultServer,
    fault_server,
    parse_schedule,
    serve,
)
from mcp_router.bench.stubs import ANSWER
from mcp_router.config import load_config
from mcp_router.serving.server import create_server

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

KEY_ENV = "MCP_ROUTER_FAULTS_TEST_KEY"
MODEL = "fault-model"
TIMEOUT_S = 1.0
# slowloris sends a byte per second: under a 2 s per-read timeout httpx never times out, so only the
# dispatcher's own deadline can end the attempt
SLOW_TIMEOUT_S = 2.0
PROTOCOLS = ("search", "chat", "stream")
TOOL = {"search": "search", "chat": "llm_complete", "stream": "llm_complete"}
HOST = "127.0.0.1"

# (status, error) of the faulty arm's attempt, per fault and protocol ("*": every protocol).
EXPECTED: dict[str, dict[str, tuple[str, str]]] = {
    "timeout": {"*": ("timeout", f"no answer within {TIMEOUT_S:.1f} s")},
    "slowloris": {"*": ("timeout", f"no answer within {SLOW_TIMEOUT_S:.1f} s")},
    "429s": {"*": ("rate_limited", "HTTP 429: rate limit reached (fault 429s)")},
    "429date": {"*": ("rate_limited", "HTTP 429: rate limit reached (fault 429date)")},
    "500": {"*": ("unavailable", "HTTP 500: fault 500")},
    "502": {"*": ("unavailable", "HTTP 502: fault 502")},
    "503": {"*": ("unavailable", "HTTP 503: fault 503")},
    "reset": {"*": ("unavailable", f"cannot reach {HOST}: ReadError")},
    "badjson": {
        "search": ("bad_response", "HTTP 200 body is not JSON (application/json)"),
        "chat": ("bad_response", "HTTP 200 body is not JSON (application/json)"),
        "stream": ("bad_response", "stream chunk is not JSON"),
    },
    "html": {"*": ("unavailable", "HTTP 502")},  # not JSON: no detail to quote
    "html200": {
        "search": ("bad_response", "HTTP 200 body is not JSON (text/html; charset=utf-8)"),
        "chat": ("bad_response", "HTTP 200 body is not JSON (text/html; charset=utf-8)"),
        "stream": ("bad_response", "unexpected response: stream ended before `[DONE]`"),
    },
    # the connection closes mid-body: a JSON body is a transport failure; a stream that began (a 2xx
    # head and some events) is a broken answer the provider may have billed
    "truncated_sse": {
        "stream": ("bad_response", "stream broken after 4 line(s): RemoteProtocolError"),
        "*": ("unavailable", f"cannot reach {HOST}: RemoteProtocolError"),
    },
    "sse_nodone": {"stream": ("bad_response", "unexpected response: stream ended before `[DONE]`")},
}


def expected(fault: str, protocol: str) -> tuple[str, str] | None:
    table = EXPECTED.get(fault, {})
    return table.get(protocol) or table.get("*")


CASES = [(p, f) for f in FAULTS if f != "ok" for p in PROTOCOLS if expected(f, p) is not None]


# -- fixtures and helpers --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def faults() -> Iterator[FaultServer]:
    with fault_server() as server:
        yield server


@pytest.fixture(autouse=True)
def _api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, "fault-test-key")


@dataclass(frozen=True)
class Arm:
    name: str
    fault: str
    timeout_s: float = TIMEOUT_S


def provider_block(faults: FaultServer, protocol: str, arm: Arm) -> str:
    if protocol == "search":
        return f"""
[[tools.search.providers]]
name = "{arm.name}"
type = "searxng"
base_url = "{faults.searx_base(arm.fault)}"
timeout_s = {arm.timeout_s}
"""
    return f"""
[[tools.llm_complete.providers]]
name = "{arm.name}"
type = "openai"
base_url = "{faults.openai_base(arm.fault)}"
model = "{MODEL}"
api_key_env = "{KEY_ENV}"
timeout_s = {arm.timeout_s}
options = {{ stream = {"true" if protocol == "stream" else "false"} }}
"""


def config_text(
    faults: FaultServer,
    protocol: str,
    arms: list[Arm],
    guards: dict[str, float] | None = None,
    deadline_s: float = 10.0,
) -> str:
    """One tool with `arms` (both endpoints of one model for llm_complete), LQM, small guard values."""
    tool = TOOL[protocol]
    guard_lines = "".join(f"{k} = {v}\n" for k, v in (guards or {}).items())
    # MTRouter stays on (one model, so it always picks it); its hashing embedder loads nothing
    mtrouter = '\n[tools.llm_complete.mtrouter]\nembedder = "hashing"\n' if tool == "llm_complete" else ""
    blocks = "".join(provider_block(faults, protocol, arm) for arm in arms)
    return f"""auto_providers = false

[tools.{tool}]
router = "lqm"
max_attempts = 3
timeout_s = {deadline_s}

[tools.{tool}.guards]
{guard_lines}{mtrouter}{blocks}
[judge]
enabled = false
"""


@dataclass
class Routed:
    client: Client
    db: Path
    protocol: str
    arms: list[str]
    made: dict[str, int] = field(default_factory=dict)  # call_id -> attempts, from each call's own answer

    @property
    def tool(self) -> str:
        return TOOL[self.protocol]

    async def call(self, text: str = "capital of France") -> Any:
        """One tool call; what it says about itself is kept in `made` (served: the arm that served
        plus its fallbacks; failed: every arm its error names)."""
        if self.protocol == "search":
            result = await self.client.call_tool("search", {"query": text, "k": 3})
        else:
            messages = [{"role": "user", "content": text}]
            result = await self.client.call_tool("llm_complete", {"messages": messages, "max_tokens": 16})
        if result.is_error:
            message = result.content[0].text
            names = "|".join(map(re.escape, self.arms))
            self.made[failed_call_id(message)] = len(re.findall(rf"(?:: |; )(?:{names}): ", message))
        else:
            data = result.structured_content
            self.made[data["call_id"]] = 1 + len(data["fallbacks"])
        return result

    async def served(self, text: str = "capital of France") -> dict[str, Any]:
        result = await self.call(text)
        assert not result.is_error, result.content
        return result.structured_content

    async def read(self, uri: str) -> dict[str, Any]:
        return json.loads((await self.client.read_resource(uri)).contents[0].text)

    async def last_call(self) -> dict[str, Any]:
        return (await self.read("router://calls/recent"))["calls"][0]

    async def guards(self, arm: str) -> dict[str, Any]:
        return (await self.read(f"router://stats/{self.tool}"))["arms"][arm]["router"]["guards"]

    async def wait_for(self, arm: str, ready: Callable[[dict[str, Any]], bool], limit_s: float = 5.0) -> None:
        with anyio.fail_after(limit_s):
            while not ready(await self.guards(arm)):
                await anyio.sleep(0.05)

    def rows(self, sql: str, args: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        with sqlite3.connect(self.db) as conn:
            conn.row_factory = sqlite3.Row
            return [dict(r) for r in conn.execute(sql, args)]


@asynccontextmanager
async def routed(tmp_path: Path, protocol: str, text: str) -> AsyncIterator[Routed]:
    config = tmp_path / "router.toml"
    config.write_text(text)
    db = tmp_path / "router.db"
    loaded = load_config(config)
    arms = [p.name for p in loaded.config.tool(TOOL[protocol]).providers]
    async with Client(create_server(loaded, db), cache=None) as client:
        yield Routed(client, db, protocol, arms)


def attempts_of(call: dict[str, Any]) -> list[tuple[str, str, str | None]]:
    return [(a["provider"], a["status"], a["error"]) for a in call["attempts"]]


def assert_recorded_once(r: Routed) -> None:
    """Every tool call of the test has exactly one `calls` row, with the attempts its answer reported
    (numbered 1..n), one `call` event, one `attempt` event per attempt, and one llm step."""
    attempts = r.made
    calls = r.rows("SELECT call_id, attempts FROM calls")
    assert sorted(c["call_id"] for c in calls) == sorted(attempts), "each call exactly one row"
    assert {c["call_id"]: c["attempts"] for c in calls} == attempts
    rows = r.rows("SELECT call_id, n FROM attempts ORDER BY call_id, n")
    by_call: dict[str, list[int]] = {}
    for row in rows:
        by_call.setdefault(row["call_id"], []).append(row["n"])
    assert by_call == {c: list(range(1, n + 1)) for c, n in attempts.items() if n}
    kinds = {e["kind"]: e["n"] for e in r.rows("SELECT kind, COUNT(*) AS n FROM events GROUP BY kind")}
    assert kinds.get("call") == len(attempts), kinds
    assert kinds.get("attempt", 0) == sum(attempts.values()), kinds
    failed_sampled = r.rows(
        "SELECT COUNT(*) AS n FROM attempts a JOIN calls c USING (call_id) "
        "WHERE a.status != 'ok' AND c.sampled"
    )[0]["n"]
    assert kinds.get("quality", 0) == failed_sampled, kinds  # a sampled failure is one quality 0
    if r.tool == "llm_complete":
        steps = r.rows("SELECT call_id FROM llm_steps")
        assert sorted(s["call_id"] for s in steps) == sorted(attempts)


def failed_call_id(text: str) -> str:
    match = re.search(r"\(call (call_[0-9a-f]{16})\)", text)
    assert match, text
    return match.group(1)


async def call_until_tried(r: Routed, arm: str, limit: int = 3) -> dict[str, Any]:
    """Call until `arm` is attempted (LQM's warm-up alternates which arm goes first); the last call."""
    for _ in range(limit):
        result = await r.call()
        call = await r.last_call()
        if arm in [a["provider"] for a in call["attempts"]]:
            return {"result": result, "call": call}
    raise AssertionError(f"{arm} was not tried in {limit} calls")


# -- the fault server on its own -------------------------------------------------------------------


def test_schedules_are_deterministic() -> None:
    assert parse_schedule("503").at(1) == Fault("503")
    assert parse_schedule("429s-7").at(3) == Fault("429s", 7)
    assert parse_schedule("nope") is None and parse_schedule("mix0") is None
    assert parse_schedule("mix3-bogus") is None and parse_schedule("first2") is None
    mix = parse_schedule("mix10")
    got = [mix.at(k).name for k in range(1, 10 * len(MIX_FAULTS) + 1)]
    assert [n for n in got if n != "ok"] == list(MIX_FAULTS)  # every 10th, rotating
    assert all(got[k - 1] != "ok" for k in range(10, len(got) + 1, 10))
    assert [parse_schedule("mix2-503.tag").at(k).name for k in (1, 2, 3, 4)] == ["ok", "503", "ok", "503"]
    assert [parse_schedule("first2-reset.x").at(k).name for k in (1, 2, 3)] == ["reset", "reset", "ok"]


async def test_in_process_serve_and_mix_counts() -> None:
    ports: list[int] = []
    async with anyio.create_task_group() as tg:
        tg.start_soon(serve, 0, ports.append)
        with anyio.fail_after(5):
            while not ports:
                await anyio.sleep(0.01)
        base = f"http://{HOST}:{ports[0]}"
        async with httpx.AsyncClient() as http:
            codes = [
                (await http.get(f"{base}/mix3-503/search", params={"q": "x", "format": "json"})).status_code
                for _ in range(9)
            ]
            assert codes == [200, 200, 503] * 3
            stats = (await http.get(f"{base}/_stats")).json()
            assert stats == {"requests": 9, "faults": {"ok": 6, "503": 3}}
            unknown = await http.get(f"{base}/nope/search")
            assert unknown.status_code == 404 and "faults:" in unknown.json()["error"]["message"]
        tg.cancel_scope.cancel()


# -- each fault, each protocol ---------------------------------------------------------------------


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_healthy_arm_serves_first_call_without_fallback(
    faults: FaultServer, tmp_path: Path, protocol: str
) -> None:
    text = config_text(faults, protocol, [Arm("first", "ok"), Arm("second", "ok")])
    async with routed(tmp_path, protocol, text) as r:
        data = await r.served()
        assert data["provider"] == "first" and data["fallbacks"] == []
        if protocol != "search":
            assert data["text"] == ANSWER and data["usage"]["completion_tokens"] == 8
        assert r.made == {data["call_id"]: 1}
        assert_recorded_once(r)


@pytest.mark.parametrize(("protocol", "fault"), CASES, ids=[f"{p}-{f}" for p, f in CASES])
async def test_fault_is_classified_and_falls_back(
    faults: FaultServer, tmp_path: Path, protocol: str, fault: str
) -> None:
    status, error = expected(fault, protocol)
    timeout = SLOW_TIMEOUT_S if fault == "slowloris" else TIMEOUT_S
    text = config_text(faults, protocol, [Arm("faulty", fault, timeout), Arm("healthy", "ok")])
    async with routed(tmp_path, protocol, text) as r:
        data = await r.served()
        # the result names the arm that served and the failure it fell back from
        assert data["provider"] == "healthy"
        assert data["fallbacks"] == [f"faulty: {status} ({error})"]
        if protocol == "search":
            assert len(data["results"]) == 3
        else:
            assert data["text"] == ANSWER and data["model"] == MODEL
        call = await r.last_call()
        assert call["call_id"] == data["call_id"] and call["status"] == "ok"
        assert call["decision"]["order"] == ["faulty", "healthy"] and call["decision"]["excluded"] == {}
        assert attempts_of(call) == [("faulty", status, error), ("healthy", "ok", None)]
        [failed] = r.rows("SELECT * FROM attempts WHERE call_id = ? AND n = 1", (data["call_id"],))
        if fault == "429s":
            assert failed["retry_after"] == RETRY_AFTER_S
        elif fault == "429date":  # an HTTP date has whole seconds: now + 2 s rounded up, read a bit later
            assert RETRY_AFTER_S - 0.5 < failed["retry_after"] <= RETRY_AFTER_S + 1
        else:
            assert failed["retry_after"] is None
        if status == "timeout":
            assert failed["latency_s"] == pytest.approx(timeout, abs=0.3)
        # the router's event (what a replay or another process learns from) says the same
        [event] = r.rows(
            "SELECT status, retry_after FROM events WHERE kind = 'attempt' AND provider = 'faulty'"
        )
        assert event == {"status": status, "retry_after": failed["retry_after"]}
        guards = await r.guards("faulty")
        assert guards["breaker"] == "closed" and guards["consecutive_failures"] == 1
        if status == "rate_limited":  # excluded for the Retry-After period
            assert guards["excluded_because"].startswith("rate limited: cooling down")
            assert 0 < guards["cooldown_s"] <= failed["retry_after"]
        else:
            assert guards["excluded_because"] is None and guards["cooldown_s"] == 0
        stats = (await r.read(f"router://stats/{r.tool}"))["arms"]
        assert stats["faulty"]["last_status"] == status and stats["faulty"]["failures"] == 1
        assert stats["healthy"]["ok"] == 1
        assert r.made == {data["call_id"]: 2}
        assert_recorded_once(r)


# -- guards ----------------------------------------------------------------------------------------

COOLDOWN_CASES = [("search", "429s-1"), ("search", "429date-1"), ("stream", "429s-1")]


@pytest.mark.parametrize(("protocol", "fault"), COOLDOWN_CASES, ids=[f"{p}-{f}" for p, f in COOLDOWN_CASES])
async def test_rate_limited_arm_cools_down_for_retry_after(
    faults: FaultServer, tmp_path: Path, protocol: str, fault: str
) -> None:
    text = config_text(faults, protocol, [Arm("faulty", fault), Arm("healthy", "ok")])
    async with routed(tmp_path, protocol, text) as r:
        first = await r.served()
        assert first["fallbacks"][0].startswith("faulty: rate_limited (HTTP 429")
        [limited] = r.rows(
            "SELECT retry_after FROM attempts WHERE call_id = ? AND n = 1", (first["call_id"],)
        )
        retry_after = limited["retry_after"]
        assert 0.5 < retry_after <= 2.0  # 1 s, or an HTTP date 1 s ahead of a rounded-up second
        cooled_at = time.monotonic()
        # within the cooldown, the next two calls (the second one's turn would be the faulty arm's)
        # never try it: excluded before ranking
        for _ in range(2):
            data = await r.served()
            call = await r.last_call()
            assert call["decision"]["order"] == ["healthy"]
            assert call["decision"]["excluded"]["faulty"].startswith("rate limited: cooling down")
            assert attempts_of(call) == [("healthy", "ok", None)] and data["fallbacks"] == []
        assert time.monotonic() - cooled_at < retry_after, "the machine is too slow for this test"
        # after Retry-After the arm is eligible again, and tried again
        await r.wait_for("faulty", lambda g: g["excluded_because"] is None, limit_s=retry_after + 2)
        again = await call_until_tried(r, "faulty")
        assert "faulty" not in again["call"]["decision"]["excluded"]
        assert attempts_of(again["call"])[0][:2] == ("faulty", "rate_limited")
        assert len(r.made) >= 4
        assert_recorded_once(r)


BREAKER_CASES = [("search", "503"), ("stream", "truncated_sse")]


@pytest.mark.parametrize(("protocol", "fault"), BREAKER_CASES, ids=[f"{p}-{f}" for p, f in BREAKER_CASES])
async def test_breaker_opens_after_five_failures_and_probes_half_open(
    faults: FaultServer, tmp_path: Path, protocol: str, fault: str
) -> None:
    # the first six requests fail: five open the breaker, the first half-open probe fails and reopens
    # it, the second probe succeeds and closes it
    arm_fault = f"first6-{fault}.{tmp_path.name}"
    guards = {"breaker_failures": 5, "breaker_open_s": 1}
    text = config_text(faults, protocol, [Arm("faulty", arm_fault), Arm("healthy", "ok")], guards)
    async with routed(tmp_path, protocol, text) as r:
        failures = 0
        for _ in range(12):
            data = await r.served()
            call = await r.last_call()
            if call["attempts"][0]["provider"] == "faulty":
                failures += 1
                state = await r.guards("faulty")
                assert state["consecutive_failures"] == failures
                assert state["breaker"] == ("open" if failures == 5 else "closed")
            if failures == 5:
                break
        assert failures == 5
        state = await r.guards("faulty")
        assert state["excluded_because"].startswith("circuit breaker open for")
        # while open the arm is not tried, whichever arm's turn it is
        for _ in range(2):
            data = await r.served()
            call = await r.last_call()
            assert call["decision"]["order"] == ["healthy"] and data["fallbacks"] == []
            assert call["decision"]["excluded"]["faulty"].startswith("circuit breaker open for")
        # after breaker_open_s: half-open, eligible; the probe (request 6) fails and reopens it at once
        await r.wait_for("faulty", lambda g: g["breaker"] == "half_open", limit_s=3)
        assert (await r.guards("faulty"))["excluded_because"] is None
        probe = await call_until_tried(r, "faulty")
        assert probe["call"]["attempts"][0]["provider"] == "faulty"
        assert probe["call"]["attempts"][0]["status"] != "ok"
        state = await r.guards("faulty")
        assert state["breaker"] == "open" and state["consecutive_failures"] == 6
        # the next probe (request 7) succeeds: the breaker closes and the arm serves
        await r.wait_for("faulty", lambda g: g["breaker"] == "half_open", limit_s=3)
        probe = await call_until_tried(r, "faulty")
        assert attempts_of(probe["call"]) == [("faulty", "ok", None)]
        assert probe["result"].structured_content["provider"] == "faulty"
        state = await r.guards("faulty")
        assert state["breaker"] == "closed" and state["consecutive_failures"] == 0
        assert state["excluded_because"] is None
        assert len(r.made) >= 10
        assert_recorded_once(r)


# -- no healthy arm --------------------------------------------------------------------------------

BOTH_FAULTY = [
    ("search", "503", "reset", 10.0),
    ("chat", "429s", "badjson", 10.0),
    ("stream", "truncated_sse", "html200", 10.0),
    # the tool's deadline (1.5 s) leaves the second arm only what the first one did not use
    ("search", "timeout", "slowloris", 1.5),
]


@pytest.mark.parametrize(
    ("protocol", "fault_a", "fault_b", "deadline_s"),
    BOTH_FAULTY,
    ids=[f"{p}-{a}-{b}" for p, a, b, _ in BOTH_FAULTY],
)
async def test_no_healthy_arm_is_an_error_naming_each_failure(
    faults: FaultServer, tmp_path: Path, protocol: str, fault_a: str, fault_b: str, deadline_s: float
) -> None:
    arms = [Arm("faulty-a", fault_a), Arm("faulty-b", fault_b, SLOW_TIMEOUT_S)]
    text = config_text(faults, protocol, arms, deadline_s=deadline_s)
    async with routed(tmp_path, protocol, text) as r:
        result = await r.call()
        assert result.is_error
        message = result.content[0].text
        status_a, error_a = expected(fault_a, protocol)
        status_b, error_b = expected(fault_b, protocol)
        # slowloris after a timeout: whatever the deadline left, to a tenth of a second
        slow = r"no answer within 0\.[3-5] s"
        error_b = slow if fault_b == "slowloris" else re.escape(error_b)
        pattern = (
            rf"Error executing tool {r.tool}: every `{r.tool}` provider failed \(call call_[0-9a-f]{{16}}\): "
            rf"faulty-a: {status_a} \({re.escape(error_a)}\); faulty-b: {status_b} \({error_b}\)"
        )
        assert re.fullmatch(pattern, message), message
        call_id = failed_call_id(message)
        call = await r.last_call()
        assert call["call_id"] == call_id and call["status"] == "failed" and call["provider"] is None
        assert [a["provider"] for a in call["attempts"]] == ["faulty-a", "faulty-b"]
        assert call["error"] == call["attempts"][-1]["error"]
        if r.tool == "llm_complete":
            [step] = r.rows("SELECT served_model FROM llm_steps WHERE call_id = ?", (call_id,))
            assert step["served_model"] is None
        assert r.made == {call_id: 2}
        assert_recorded_once(r)


# -- under load: a share of faults, concurrent calls -----------------------------------------------


@pytest.mark.parametrize("protocol", ["search", "stream"])
async def test_concurrent_calls_under_mixed_faults_are_recorded_once(
    faults: FaultServer, tmp_path: Path, protocol: str
) -> None:
    # every second request of the first arm fails with a rotating fault (503, 429, reset, 500, ...);
    # high breaker threshold and no cooldown so the guards do not take the arm out
    arms = [Arm("mixed", f"mix2.{tmp_path.name}"), Arm("healthy", "ok")]
    guards = {"breaker_failures": 1000, "cooldown_s": 0.0}
    text = config_text(faults, protocol, arms, guards)
    n = 24
    async with routed(tmp_path, protocol, text) as r:
        results: list[dict[str, Any]] = []

        async def one(i: int) -> None:
            results.append(await r.served(f"question {i}"))

        async with anyio.create_task_group() as tg:
            for i in range(n):
                tg.start_soon(one, i)
        assert len(results) == n and len({d["call_id"] for d in results}) == n
        for data in results:
            assert data["provider"] in ("mixed", "healthy")
            assert all(f.startswith("mixed: ") for f in data["fallbacks"])
        assert len(r.made) == n and sum(len(d["fallbacks"]) for d in results) >= 1
        assert_recorded_once(r)


# -- guard state across a restart, and a probe whose call is cancelled ------------------------------


async def test_breaker_and_cooldown_survive_a_restart(faults: FaultServer, tmp_path: Path) -> None:
    # one 429 with a 30 s Retry-After: a failure (breaker_failures = 1 opens the breaker) and a cooldown
    guards = {"breaker_failures": 1, "breaker_open_s": 30}
    text = config_text(faults, "search", [Arm("faulty", "429s-30"), Arm("healthy", "ok")], guards)
    async with routed(tmp_path, "search", text) as r:
        data = await r.served()
        assert data["fallbacks"] == ["faulty: rate_limited (HTTP 429: rate limit reached (fault 429s))"]
        before = dict(r.made)
    # a new server process on the same database rebuilds both deadlines from what was recorded
    async with routed(tmp_path, "search", text) as r:
        state = await r.guards("faulty")
        assert state["breaker"] == "open" and state["excluded_because"].startswith("circuit breaker open")
        assert 25 < state["cooldown_s"] <= 30
        for _ in range(2):  # whichever arm's turn it is, the faulty one is not tried
            data = await r.served()
            call = await r.last_call()
            assert call["decision"]["order"] == ["healthy"] and "faulty" in call["decision"]["excluded"]
            assert data["fallbacks"] == []
        r.made.update(before)
        assert_recorded_once(r)


async def test_cancelled_half_open_probe_does_not_exclude_the_arm_forever(
    faults: FaultServer, tmp_path: Path
) -> None:
    guards = {"breaker_failures": 1, "breaker_open_s": 1}
    text = config_text(faults, "search", [Arm("faulty", "timeout"), Arm("healthy", "ok")], guards)
    async with routed(tmp_path, "search", text) as r:
        first = await r.served()  # the faulty arm times out: the breaker opens
        assert first["fallbacks"] == [f"faulty: timeout (no answer within {TIMEOUT_S:.1f} s)"]
        await r.wait_for("faulty", lambda g: g["breaker"] == "half_open", limit_s=3)
        await r.served()  # the healthy arm's turn: nothing is probed
        assert (await r.last_call())["decision"]["order"][0] == "healthy"
        in_flight: list[str | None] = []

        async def probe() -> None:  # the faulty arm's turn: the probe hangs, the client gives up
            with pytest.raises(MCPError, match="Timed out"):
                await r.client.call_tool("search", {"query": "probe", "k": 3}, read_timeout_seconds=0.5)

        async with anyio.create_task_group() as tg:
            tg.start_soon(probe)
            await anyio.sleep(0.25)
            in_flight.append((await r.guards("faulty"))["excluded_because"])
        assert in_flight == ["circuit breaker half-open: its probe is in flight"]
        # the server cancels the call and records it (no attempt completed)
        with anyio.fail_after(3):
            while not (cancelled := r.rows("SELECT call_id FROM calls WHERE status = 'failed'")):
                await anyio.sleep(0.05)
        r.made[cancelled[0]["call_id"]] = 0
        assert_recorded_once(r)
        # the probe is no longer in flight: the half-open arm may be probed again
        await anyio.sleep(0.5)
        assert (await r.guards("faulty"))["excluded_because"] is None
