"""Shared fixtures: a loopback MediaWiki stand-in serving recorded responses, and configured servers.

The loopback server is a real HTTP server, so the real `wikipedia` adapter crosses a real socket
both in-process and when the MCP server runs as a subprocess (where respx cannot reach).
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest

from mcp_router.demo import still_loading
from providers import ProviderEnv
from tests.providers_support import provider_env

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Collections' on-disk indexes go to a folder of this run (servers started as subprocesses inherit it),
# never to the user's cache.
os.environ.setdefault("MCP_ROUTER_INDEX_DIR", tempfile.mkdtemp(prefix="mcp-router-test-indexes-"))

FIXTURES = Path(__file__).parent / "fixtures"
CLOSED_PORT_URL = "http://127.0.0.1:9/w/api.php"  # discard port: nothing listens, connections are refused


class _MediaWikiHandler(BaseHTTPRequestHandler):
    """`/w/api.php` answers with the recorded search body, trimmed to `srlimit`; `/slow/...` stalls."""

    def do_GET(self) -> None:
        url = urlparse(self.path)
        params = parse_qs(url.query)
        if url.path.startswith("/slow"):
            time.sleep(3.0)
        body = json.loads((FIXTURES / "wikipedia_search.json").read_text())
        body["query"]["search"] = body["query"]["search"][: int(params.get("srlimit", ["10"])[0])]
        payload = json.dumps(body).encode()
        self.server.requests.append({"path": url.path, "params": params, "headers": dict(self.headers)})
        try:
            self.send_response(200)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up on a /slow request
            pass

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="session")
def wiki_server() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _MediaWikiHandler)
    server.requests = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="session")
def wiki_url(wiki_server: ThreadingHTTPServer) -> str:
    return f"http://127.0.0.1:{wiki_server.server_address[1]}/w/api.php"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def env() -> AsyncIterator[ProviderEnv]:
    """Adapters' shared environment (one HTTP pool, no collections), closed after the test."""
    async with provider_env() as provider_environment:
        yield provider_environment


@pytest.fixture
def notes_dir(tmp_path: Path) -> Path:
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "garden.md").write_text("# Garden\n\nTomatoes need six hours of sun and regular watering.\n")
    (notes / "kitchen.txt").write_text("Sourdough starter is fed with flour and water every day.\n")
    return notes


def wiki_provider(name: str, base_url: str, timeout_s: float = 5) -> str:
    """A `[[tools.search.providers]]` block for the wikipedia adapter pointed at `base_url`."""
    return f"""
[[tools.search.providers]]
name = "{name}"
type = "wikipedia"
base_url = "{base_url}"
timeout_s = {timeout_s}
"""


def router_config(wiki_url: str, notes_dir: Path, extra: str = "") -> str:
    """A config for tests: search falls back from a dead arm to the loopback MediaWiki, retrieve and
    llm_complete use the real local arms."""
    return f"""
[collections.docs]
path = "builtin:sample_docs"

[collections.notes]
path = "{notes_dir}"

[tools.search]
max_attempts = 3
timeout_s = 20
{wiki_provider("wiki-down", CLOSED_PORT_URL, timeout_s=2)}
{wiki_provider("wiki-local", wiki_url)}

[tools.retrieve]
[[tools.retrieve.providers]]
name = "bm25"
type = "bm25"

[[tools.retrieve.providers]]
name = "hybrid"
type = "hybrid"
timeout_s = 60

[tools.llm_complete]
timeout_s = 50

[[tools.llm_complete.providers]]
name = "smollm2"
type = "llamacpp"
model = "smollm2-135m"
timeout_s = 45
{extra}

[judge]
enabled = false  # judging is tested on its own (test_quality_signals.py); here it would only add noise
"""


@pytest.fixture
def config_file(tmp_path: Path, wiki_url: str, notes_dir: Path) -> Path:
    path = tmp_path / "router.toml"
    path.write_text(router_config(wiki_url, notes_dir))
    return path


async def warmed_up(client, limit_s: float = 120.0) -> None:
    """Wait until every arm's start-up warm-up (model load) and every folder collection's indexing
    have finished: until then the router passes over arms still loading, which tests of exact
    rotations must not see."""
    import anyio

    with anyio.fail_after(limit_s):
        while await still_loading(client):
            await anyio.sleep(0.1)
