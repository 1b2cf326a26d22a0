"""No `retrieve` call outlives its deadline, whatever a local arm is doing: a ranking stuck in its
worker thread is abandoned at the arm's timeout (the call falls back), and with no other arm the tool
answers with a clear error within its `timeout_s`. Through a real in-process MCP client."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import anyio
import pytest
from mcp import Client

from mcp_router.config import load_config
from mcp_router.serving.server import create_server
from providers.retrieve.local import DenseRetriever
from tests.test_collection_index import write_notes

pytestmark = pytest.mark.anyio
STUCK_S = 60.0  # far beyond every deadline below


def config(tmp_path: Path, arms: str, timeout_s: float) -> Path:
    path = tmp_path / "router.toml"
    path.write_text(
        f"""
auto_providers = false

[collections.notes]
path = "{tmp_path / "notes"}"

[tools.retrieve]
router = "round-robin"
max_attempts = 3
timeout_s = {timeout_s}
{arms}

[judge]
enabled = false
""",
        encoding="utf-8",
    )
    return path


DENSE_THEN_BM25 = """
[[tools.retrieve.providers]]
name = "dense"
type = "dense"
timeout_s = 1

[[tools.retrieve.providers]]
name = "bm25"
type = "bm25"
"""

DENSE_ONLY = """
[[tools.retrieve.providers]]
name = "dense"
type = "dense"
"""


@pytest.fixture
def stuck_dense(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[threading.Event]:
    """The dense arm's ranking blocks its worker thread until released (at the end of the test)."""
    write_notes(tmp_path / "notes", 5)
    release = threading.Event()

    def stuck_rank(self: DenseRetriever, collection: object, query: str, k: int) -> list:
        release.wait(STUCK_S)
        return []

    monkeypatch.setattr(DenseRetriever, "rank", stuck_rank)
    yield release
    release.set()


async def client_for(path: Path, tmp_path: Path) -> AsyncIterator[Client]:
    server = create_server(load_config(path), tmp_path / "router.db")
    async with Client(server, cache=None) as client:
        yield client


async def until_indexed(client: Client) -> None:
    """The arms' indexes are published (the test is about a stuck ranking, not about indexing)."""
    with anyio.fail_after(30):
        while True:
            text = (await client.read_resource("router://collections")).contents[0].text
            notes = json.loads(text)["collections"]["notes"]
            if notes["lexical"]["ready"] and notes["dense"]["ready"]:
                return
            await anyio.sleep(0.05)


async def test_a_stuck_arm_is_abandoned_at_its_timeout_and_the_call_falls_back(
    stuck_dense: threading.Event, tmp_path: Path
) -> None:
    async for client in client_for(config(tmp_path, DENSE_THEN_BM25, timeout_s=10), tmp_path):
        await until_indexed(client)
        for _ in range(2):  # round-robin: one call starts on dense, the other on bm25
            started = time.monotonic()
            result = await client.call_tool("retrieve", {"query": "word3", "collection": "notes"})
            elapsed = time.monotonic() - started
            assert not result.is_error, result
            data = result.structured_content
            assert data["provider"] == "bm25"
            assert data["passages"][0]["metadata"]["path"] == "note003.md"
            if data["fallbacks"]:
                assert data["fallbacks"][0].startswith("dense: timeout")
                assert elapsed < 1.0 + 2.0  # the dense arm's 1 s, then bm25; never the stuck 60 s


async def test_with_no_other_arm_the_tool_fails_clearly_within_its_deadline(
    stuck_dense: threading.Event, tmp_path: Path
) -> None:
    async for client in client_for(config(tmp_path, DENSE_ONLY, timeout_s=1.5), tmp_path):
        await until_indexed(client)
        started = time.monotonic()
        result = await client.call_tool("retrieve", {"query": "word3", "collection": "notes"})
        elapsed = time.monotonic() - started
        assert result.is_error
        assert "dense" in result.content[0].text and "timeout" in result.content[0].text
        assert elapsed < 1.5 + 1.5
        # the server is not wedged by the abandoned thread: the next call is answered as promptly
        started = time.monotonic()
        again = await client.call_tool("retrieve", {"query": "word1", "collection": "notes"})
        assert again.is_error and time.monotonic() - started < 1.5 + 1.5
