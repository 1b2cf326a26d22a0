"""The server as hosts run it: a stdio subprocess (raw JSON-RPC and `mcp.Client`) and streamable HTTP."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from mcp import Client, StdioServerParameters

pytestmark = pytest.mark.slow


def serve_command(config_file: Path, db: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "mcp_router",
        "serve",
        "--config",
        str(config_file),
        "--db",
        str(db),
        *extra,
    ]


def test_stdout_carries_only_jsonrpc(config_file: Path, tmp_path: Path) -> None:
    process = subprocess.Popen(
        serve_command(config_file, tmp_path / "r.db"),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "MCP_ROUTER_LOG_LEVEL": "DEBUG"},
    )

    def send(message: dict) -> None:
        process.stdin.write(json.dumps(message) + "\n")
        process.stdin.flush()

    try:
        send(
            {
                "jsonrpc": "2.0",
                "id": 1,
                "method": "initialize",
                "params": {
                    "protocolVersion": "2025-06-18",
                    "capabilities": {},
                    "clientInfo": {"name": "raw", "version": "0"},
                },
            }
        )
        send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        send(
            {
                "jsonrpc": "2.0",
                "id": 2,
                "method": "tools/call",
                "params": {
                    "name": "llm_complete",
                    "_meta": {"progressToken": "p1"},
                    "arguments": {"messages": [{"role": "user", "content": "Say hello."}], "max_tokens": 8},
                },
            }
        )
        send(
            {
                "jsonrpc": "2.0",
                "id": 3,
                "method": "resources/read",
                "params": {"uri": "router://stats/search"},
            }
        )
        messages = []
        while len([m for m in messages if "id" in m]) < 3:
            line = process.stdout.readline()
            assert line, "server closed stdout early"
            messages.append(json.loads(line))  # a banner or stray print would fail here
    finally:
        process.stdin.close()
        process.wait(timeout=20)
    by_id = {m["id"]: m for m in messages if "id" in m}
    assert by_id[1]["result"]["protocolVersion"] == "2025-06-18"
    assert by_id[2]["result"]["structuredContent"]["provider"] == "smollm2"
    assert json.loads(by_id[3]["result"]["contents"][0]["text"])["tool"] == "search"
    progress = [m for m in messages if m.get("method") == "notifications/progress"]
    assert progress and all(p["params"]["progressToken"] == "p1" for p in progress)
    assert messages.index(progress[-1]) < messages.index(by_id[2])


@pytest.mark.anyio
@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_stdio_client(config_file: Path, tmp_path: Path, mode: str) -> None:
    command = serve_command(config_file, tmp_path / "r.db")
    params = StdioServerParameters(command=command[0], args=command[1:], env={"HF_HUB_OFFLINE": "1"})
    async with Client(params, mode=mode, read_timeout_seconds=120) as client:
        names = {t.name for t in (await client.list_tools()).tools}
        result = await client.call_tool("retrieve", {"query": "tomatoes", "collection": "notes", "k": 1})
    assert names == {"search", "retrieve", "llm_complete", "feedback"}
    assert not result.is_error and result.structured_content["passages"][0]["id"] == "garden.md#0"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def http_url(config_file: Path, tmp_path: Path) -> Iterator[str]:
    port = free_port()
    log = open(tmp_path / "http.log", "w")  # noqa: SIM115 - closed in finally
    process = subprocess.Popen(
        serve_command(config_file, tmp_path / "r.db", "--transport", "http", "--port", str(port)),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                assert process.poll() is None, (tmp_path / "http.log").read_text()
                assert time.monotonic() < deadline, "HTTP server did not start"
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        process.terminate()
        process.wait(timeout=20)
        log.close()


@pytest.mark.anyio
async def test_streamable_http_serves_both_eras_and_shares_state(http_url: str) -> None:
    for mode in ("auto", "legacy"):
        async with Client(http_url, mode=mode, cache=None) as client:
            result = await client.call_tool("search", {"query": "bandits", "k": 1})
            assert not result.is_error and len(result.structured_content["results"]) == 1
    async with Client(http_url, cache=None) as client:
        stats = json.loads((await client.read_resource("router://stats/search")).contents[0].text)
    assert stats["calls"] == 2  # one lifespan for all HTTP sessions
