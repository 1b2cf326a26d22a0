"""The HTTP face: a non-loopback bind needs a bearer token; every request passes the guard (healthz,
rate limit, Host/Origin, token) before the MCP app.

The guard's rules are tested in process on a stand-in app (httpx's ASGITransport); the binding
behaviour and the whole path, up to a real `mcp.Client` initialize, on real `python -m mcp_router
serve --transport http` subprocesses bound to loopback. The refusal case never binds: the port it
names is held by the test on loopback, and the process must exit before trying it.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from starlette.types import Receive, Scope, Send

from mcp_router.cli import build_parser
from mcp_router.serving.network.guard import NetworkGuard, token_digest
from mcp_router.serving.network.hosts import HostPolicy, host_entry, is_loopback, matches
from mcp_router.serving.network.options import (
    TOKEN_ENV,
    NetworkOptions,
    NetworkRefusal,
    options_from_args,
)
from mcp_router.serving.network.ratelimit import RateLimit, RateLimiter, retry_after_s
from tests.conftest import wiki_provider
from tests.providers_support import free_port

TOKEN = "test-token-SECRET-0123456789abcdef"
START_TIMEOUT_S = 60


# --- options: what the command line may start -------------------------------------------------


def serve_args(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(["serve", "--transport", "http", *argv])


def options(*argv: str, env: dict[str, str] | None = None) -> NetworkOptions:
    return options_from_args(serve_args(*argv), env or {})


def test_non_loopback_without_token_is_refused_naming_the_variable_and_the_flag() -> None:
    for host in ("0.0.0.0", "::", "192.168.1.10", "myhost.example"):
        with pytest.raises(NetworkRefusal) as refused:
            options("--host", host, "--port", "8123")
        assert TOKEN_ENV in str(refused.value) and "--token-file" in str(refused.value)


def test_loopback_needs_no_token_and_keeps_todays_behaviour() -> None:
    for host in ("127.0.0.1", "localhost", "::1", "127.0.0.2"):
        face = options("--host", host)
        assert face.token is None and face.rate_limit is None


def test_a_given_token_is_used_on_loopback_too_and_never_shown() -> None:
    face = options(env={TOKEN_ENV: f"  {TOKEN}\n"})
    assert face.token is not None and face.token.reveal() == TOKEN
    assert TOKEN not in repr(face) and TOKEN not in face.describe()
    assert "from MCP_ROUTER_TOKEN" in face.describe()


def test_non_loopback_defaults_to_a_rate_limit() -> None:
    face = options("--host", "0.0.0.0", env={TOKEN_ENV: TOKEN})
    assert face.rate_limit == RateLimit(per_s=20.0, burst=40)
    assert options("--host", "0.0.0.0", "--rate-limit", "off", env={TOKEN_ENV: TOKEN}).rate_limit is None
    custom = options("--rate-limit", "600/min", "--burst", "7")
    assert custom.rate_limit == RateLimit(per_s=10.0, burst=7)


@pytest.mark.parametrize("token", ["zq9XwK", "has a space in it 0123", "nonascii-é-0123456789"])
def test_weak_or_unsendable_tokens_are_refused_without_echo(token: str) -> None:
    with pytest.raises(NetworkRefusal) as refused:
        options(env={TOKEN_ENV: token})
    assert token not in str(refused.value) and TOKEN_ENV in str(refused.value)


def test_token_file_must_be_private(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text(TOKEN + "\n")
    for mode in (0o644, 0o640, 0o604, 0o620):
        path.chmod(mode)
        with pytest.raises(NetworkRefusal, match=f"chmod 600 {path}") as refused:
            options("--host", "0.0.0.0", "--token-file", str(path))
        assert TOKEN not in str(refused.value)
    path.chmod(0o600)
    face = options("--host", "0.0.0.0", "--token-file", str(path), env={TOKEN_ENV: "x" * 20})
    assert face.token is not None and face.token.reveal() == TOKEN  # the flag wins over the variable
    with pytest.raises(NetworkRefusal, match="cannot read the token file"):
        options("--token-file", str(tmp_path / "absent"))


def test_allowed_hosts_default_to_the_bind_and_loopback_names_on_any_port() -> None:
    policy = HostPolicy.for_bind("0.0.0.0")
    assert policy.hosts == ("127.0.0.1", "127.0.0.1:*", "localhost", "localhost:*", "[::1]", "[::1]:*")
    assert not policy.allows_host("0.0.0.0:8123")  # nobody's name: add the one clients use
    assert HostPolicy.for_bind("10.0.0.5").hosts[:2] == ("10.0.0.5", "10.0.0.5:*")
    assert HostPolicy.for_bind("fe80::1").allows_host("[fe80::1]:9")
    assert HostPolicy.for_bind("::1").allows_origin("http://[::1]:3000")
    extra = HostPolicy.for_bind("0.0.0.0", [host_entry("MCP.example.com"), host_entry("10.0.0.5:9000")])
    assert extra.allows_host("mcp.example.com") and extra.allows_host("mcp.example.com:443")
    assert extra.allows_host("10.0.0.5:9000") and not extra.allows_host("10.0.0.5:9001")
    assert extra.allows_origin("https://mcp.example.com") and not extra.allows_origin("https://evil.example")
    assert extra.allows_origin(None)  # no Origin: not a browser


def test_host_patterns_are_never_looser_than_the_sdks() -> None:
    assert matches("localhost:8000", ["localhost:*"])
    assert not matches("localhost:8000.evil.example", ["localhost:*"])
    assert not matches("localhost.evil.example:8000", ["localhost:*"])
    assert not matches("", ["localhost:*"])
    for bad in ("evil.example/x", "user@host", "*.example.com", "host:99999", "host:port", ""):
        with pytest.raises(argparse.ArgumentTypeError):
            host_entry(bad)
    assert host_entry("::1") == "[::1]" and host_entry("[::1]:8000") == "[::1]:8000"


def test_loopback_detection() -> None:
    assert all(is_loopback(h) for h in ("127.0.0.1", "127.1.2.3", "::1", "[::1]", "LOCALHOST"))
    assert not any(is_loopback(h) for h in ("0.0.0.0", "::", "10.0.0.1", "example.com", ""))


# --- the token bucket ---------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_bucket_allows_the_burst_then_the_rate() -> None:
    clock = Clock()
    limiter = RateLimiter(RateLimit(per_s=2.0, burst=3), clock=clock)
    assert [limiter.wait("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.wait("a") == pytest.approx(0.5)
    assert limiter.wait("b") == 0.0  # another client has its own bucket
    clock.now += 0.5
    assert limiter.wait("a") == 0.0 and limiter.wait("a") > 0
    assert retry_after_s(0.01) == 1 and retry_after_s(1.2) == 2


def test_idle_buckets_are_evicted_and_memory_is_capped() -> None:
    clock = Clock()
    limiter = RateLimiter(RateLimit(per_s=10.0, burst=20), max_clients=100, clock=clock)
    for n in range(50):
        limiter.wait(f"10.0.0.{n}")
    assert len(limiter) == 50
    clock.now += 2.0  # burst / rate: every bucket is full again, as good as new
    limiter.wait("fresh")
    assert len(limiter) == 1
    for n in range(500):
        limiter.wait(f"flood-{n}")
    assert len(limiter) == 100


# --- the guard, in process ------------------------------------------------------------------------


@dataclass
class Seen:
    scopes: list[Scope]


def guarded(*, token: str | None = TOKEN, limit: RateLimit | None = None, trust_proxy: bool = False):
    """A guard around a stand-in app that records what reaches it."""
    seen = Seen([])

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.scopes.append(scope)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"mcp"})

    guard = NetworkGuard(
        app,
        policy=HostPolicy.for_bind("127.0.0.1"),
        digest=token_digest(token) if token else None,
        limiter=RateLimiter(limit) if limit else None,
        trust_proxy=trust_proxy,
    )
    return guard, seen


def client_for(guard: NetworkGuard, peer: str = "127.0.0.1") -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=guard, client=(peer, 5000)), base_url="http://127.0.0.1:8000"
    )


BEARER = {"Authorization": f"Bearer {TOKEN}"}


@pytest.mark.anyio
async def test_token_is_required_compared_and_stripped() -> None:
    guard, seen = guarded()
    async with client_for(guard) as http:
        missing = await http.post("/mcp")
        wrong = await http.post("/mcp", headers={"Authorization": "Bearer not-the-token-0123456789"})
        basic = await http.post("/mcp", headers={"Authorization": f"Basic {TOKEN}"})
        right = await http.post("/mcp", headers=BEARER)
        lower = await http.post("/mcp", headers={"Authorization": f"bearer {TOKEN}"})
    for refused in (missing, wrong, basic):
        assert refused.status_code == 401 and refused.headers["www-authenticate"].startswith("Bearer")
        assert TOKEN not in refused.text
    assert 'error="invalid_token"' in wrong.headers["www-authenticate"]
    assert right.status_code == lower.status_code == 200 and len(seen.scopes) == 2
    assert all(name != b"authorization" for scope in seen.scopes for name, _ in scope["headers"])


@pytest.mark.anyio
async def test_loopback_without_token_passes_as_today() -> None:
    guard, seen = guarded(token=None)
    async with client_for(guard) as http:
        assert (await http.post("/mcp")).status_code == 200
    assert len(seen.scopes) == 1


@pytest.mark.anyio
async def test_foreign_host_and_origin_are_refused_even_with_the_token() -> None:
    guard, seen = guarded()
    async with client_for(guard) as http:
        host = await http.post("/mcp", headers={**BEARER, "Host": "evil.example"})
        rebound = await http.post("/mcp", headers={**BEARER, "Host": "evil.example:8000"})
        origin = await http.post("/mcp", headers={**BEARER, "Origin": "http://evil.example"})
        local_page = await http.post("/mcp", headers={**BEARER, "Origin": "http://localhost:8000"})
    assert host.status_code == rebound.status_code == 421
    assert origin.status_code == 403
    assert local_page.status_code == 200 and len(seen.scopes) == 1


@pytest.mark.anyio
async def test_healthz_is_open_minimal_and_host_agnostic() -> None:
    guard, seen = guarded(limit=RateLimit(per_s=1.0, burst=1))
    async with client_for(guard) as http:
        probes = [await http.get("/healthz", headers={"Host": "10.1.2.3:8000"}) for _ in range(5)]
        post = await http.post("/healthz")
    assert all(p.status_code == 200 and p.json() == {"status": "ok"} for p in probes)
    assert post.status_code == 405 and not seen.scopes


@pytest.mark.anyio
async def test_rate_limit_answers_429_with_retry_after_per_client() -> None:
    guard, _ = guarded(limit=RateLimit(per_s=0.5, burst=3))
    async with client_for(guard, peer="10.0.0.1") as one, client_for(guard, peer="10.0.0.2") as two:
        first = [(await one.post("/mcp", headers=BEARER)).status_code for _ in range(3)]
        over = await one.post("/mcp", headers=BEARER)
        guesses = await one.post("/mcp")  # token guesses draw on the same bucket
        other = await two.post("/mcp", headers=BEARER)
    assert first == [200, 200, 200]
    assert over.status_code == guesses.status_code == 429
    assert int(over.headers["retry-after"]) >= 1
    assert other.status_code == 200


@pytest.mark.anyio
async def test_forwarded_for_counts_only_behind_a_trusted_proxy() -> None:
    limit = RateLimit(per_s=0.1, burst=1)
    for trust, expected in ((False, [200, 429]), (True, [200, 200])):
        guard, _ = guarded(limit=limit, trust_proxy=trust)
        async with client_for(guard, peer="10.0.0.9") as proxy:
            codes = [
                (
                    await proxy.post("/mcp", headers={**BEARER, "X-Forwarded-For": f"spoof, 192.0.2.{n}"})
                ).status_code
                for n in range(2)
            ]
        assert codes == expected


# --- real servers ---------------------------------------------------------------------------------


def minimal_config(tmp: Path, wiki_url: str) -> Path:
    """Search over the loopback MediaWiki stand-in only: the server starts in about a second."""
    path = tmp / "router.toml"
    path.write_text(
        "auto_providers = false\n[tools.search]\n"
        + wiki_provider("wiki", wiki_url)
        + "\n[judge]\nenabled = false\n"
    )
    return path


def serve_argv(config: Path, db: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "mcp_router",
        "serve",
        "--config",
        str(config),
        "--db",
        str(db),
        "--transport",
        "http",
        *extra,
    ]


def environment(token: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != TOKEN_ENV}
    return env if token is None else {**env, TOKEN_ENV: token}


@pytest.mark.slow
def test_cli_refuses_a_non_loopback_bind_without_token_and_never_binds(tmp_path: Path, wiki_url: str) -> None:
    with socket.socket() as held:  # should the refusal ever come too late, the bind fails instead
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        done = subprocess.run(
            serve_argv(
                minimal_config(tmp_path, wiki_url),
                tmp_path / "r.db",
                "--host",
                "0.0.0.0",
                "--port",
                str(port),
            ),
            capture_output=True,
            text=True,
            timeout=60,
            env=environment(None),
        )
    assert done.returncode == 2, done.stderr
    assert TOKEN_ENV in done.stderr and "--token-file" in done.stderr and f"0.0.0.0:{port}" in done.stderr
    assert "Uvicorn running" not in done.stderr and "address already in use" not in done.stderr
    assert done.stdout == ""


@pytest.mark.slow
def test_cli_refuses_a_group_readable_token_file(tmp_path: Path, wiki_url: str) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)
    token_file.chmod(0o640)
    done = subprocess.run(
        serve_argv(minimal_config(tmp_path, wiki_url), tmp_path / "r.db", "--token-file", str(token_file)),
        capture_output=True,
        text=True,
        timeout=60,
        env=environment(None),
    )
    assert done.returncode == 2 and f"chmod 600 {token_file}" in done.stderr
    assert TOKEN not in done.stderr + done.stdout


@dataclass
class Served:
    base: str  # http://127.0.0.1:PORT
    process: subprocess.Popen[bytes]
    stdout: Path
    stderr: Path


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, wiki_url: str) -> Iterator[Served]:
    """A loopback server with a token, a small burst, `--trust-proxy` (so each test draws on its own
    bucket through `X-Forwarded-For`) and DEBUG logs (so "never in the logs" means something)."""
    tmp = tmp_path_factory.mktemp("network_face")
    port = free_port()
    out, err = tmp / "stdout.log", tmp / "stderr.log"
    argv = serve_argv(
        minimal_config(tmp, wiki_url),
        tmp / "r.db",
        "--port",
        str(port),
        "--rate-limit",
        "2/s",
        "--burst",
        "20",
        "--trust-proxy",
    )
    with open(out, "wb") as stdout, open(err, "wb") as stderr:
        process = subprocess.Popen(
            [*argv[:3], "--log-level", "DEBUG", *argv[3:]],
            stdout=stdout,
            stderr=stderr,
            env=environment(TOKEN),
        )
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + START_TIMEOUT_S
            while True:
                try:
                    if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert process.poll() is None, err.read_text()
                assert time.monotonic() < deadline, "HTTP server did not start"
                time.sleep(0.1)
            yield Served(base, process, out, err)
        finally:
            process.terminate()
            process.wait(timeout=30)


def as_client(n: int) -> dict[str, str]:
    return {"X-Forwarded-For": f"198.51.100.{n}"}


@pytest.mark.slow
def test_real_server_refuses_without_the_right_token(served: Served) -> None:
    with httpx.Client(base_url=served.base, headers=as_client(1)) as http:
        missing = http.post("/mcp", json={})
        wrong = http.post("/mcp", json={}, headers={"Authorization": "Bearer wrong-token-0123456789abc"})
    for refused in (missing, wrong):
        assert refused.status_code == 401 and refused.headers["www-authenticate"].startswith("Bearer")
        assert TOKEN not in refused.text


@pytest.mark.slow
def test_real_server_refuses_a_foreign_host_and_origin(served: Served) -> None:
    with httpx.Client(base_url=served.base, headers={**BEARER, **as_client(2)}) as http:
        host = http.post("/mcp", json={}, headers={"Host": "evil.example"})
        origin = http.post("/mcp", json={}, headers={"Origin": "http://evil.example"})
    assert host.status_code == 421 and origin.status_code == 403


@pytest.mark.slow
def test_real_healthz_without_token_reveals_nothing(served: Served) -> None:
    with httpx.Client(base_url=served.base, headers=as_client(3)) as http:
        probe = http.get("/healthz", headers={"Host": "10.1.2.3"})  # a balancer probing by address
    assert probe.status_code == 200 and probe.json() == {"status": "ok"}
    assert "server" not in probe.headers


@pytest.mark.slow
def test_real_rate_limit_after_the_burst(served: Served) -> None:
    with httpx.Client(base_url=served.base, headers=as_client(4)) as http:
        codes = [http.post("/mcp", json={}) for _ in range(30)]
    statuses = [r.status_code for r in codes]
    assert statuses[:20] == [401] * 20 and statuses[-1] == 429, statuses
    assert all(int(r.headers["retry-after"]) >= 1 for r in codes if r.status_code == 429)


@pytest.mark.slow
@pytest.mark.anyio
@pytest.mark.parametrize(("mode", "n"), [("legacy", 5), ("auto", 6)])
async def test_real_mcp_client_with_the_token(served: Served, mode: str, n: int) -> None:
    headers = {**BEARER, **as_client(n)}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30, read=120)) as http,
        Client(
            streamable_http_client(f"{served.base}/mcp", http_client=http), mode=mode, cache=None
        ) as client,
    ):
        names = {t.name for t in (await client.list_tools()).tools}
        result = await client.call_tool("search", {"query": "bandits", "k": 1})
    assert names == {"search", "retrieve", "llm_complete", "feedback"}
    assert not result.is_error and len(result.structured_content["results"]) == 1


@pytest.mark.slow
def test_real_server_never_prints_or_logs_the_token(served: Served) -> None:
    with httpx.Client(base_url=served.base, headers=as_client(7)) as http:
        http.post("/mcp", json={}, headers={"Authorization": f"Bearer {TOKEN}x"})
        http.post("/mcp", json={}, headers={**BEARER, "Host": "evil.example"})
    time.sleep(0.2)
    log = served.stderr.read_text()
    assert "HTTP face: bearer token required (from MCP_ROUTER_TOKEN)" in log
    assert TOKEN not in log
    assert served.stdout.read_text() == ""
