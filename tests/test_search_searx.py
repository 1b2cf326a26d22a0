"""The real `searxng` adapter against a real metasearch server: Debian's `searx` 1.1.0 on 127.0.0.1.

searx answers `format=json` with the same keys as SearXNG. It runs with offline engines only
(reference/providers.md §4.9): a `sqlite` engine over a small docs.db, a `json_engine` reading a
static file from a loopback `http.server`, and a `wikipedia` engine aimed at a closed loopback port,
so that a failing upstream engine is reproducible with or without a network. Debian's searx needs
Debian's `/usr/bin/python3` (the venv cannot import it); `.ci/run` installs the package when it is missing.
"""

from __future__ import annotations

import json
import os
import secrets
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from providers import ProviderEnv, Unavailable
from providers.types import SearchHit, SearchRequest
from tests.providers_support import adapter, free_port

pytestmark = [pytest.mark.slow, pytest.mark.anyio]

SYSTEM_PYTHON = "/usr/bin/python3"
STARTUP_S = 20.0

# docs.db rows: (url, title, content); the engine matches `content LIKE '%query%'`.
SQLITE_DOCS = [
    ("http://docs.example.invalid/bandits", "Python bandits", "Multi-armed bandit in python"),
    ("http://docs.example.invalid/routing", "Router notes", "Routing search queries with python"),
    ("http://docs.example.invalid/soup", "Soup", "Tomato soup needs basil"),
]
# static/results.json, served for any `q` (http.server ignores the query string).
JSON_ITEMS = [
    {"link": "http://json.example.invalid/a", "name": "Loopback result A", "desc": "served by http.server"},
    {"link": "http://json.example.invalid/b", "name": "Loopback result B", "desc": "second static item"},
]

# Run by Debian's python with its PyYAML: the packaged example settings, JSON output on, offline engines.
SETTINGS_SCRIPT = """
import json, sys, yaml
cfg = json.loads(sys.argv[1])
s = yaml.safe_load(open("/usr/share/doc/searx/examples/settings.yml"))
s["server"].update(bind_address="127.0.0.1", port=cfg["port"], secret_key=cfg["secret"])
s["search"]["formats"] = ["html", "json"]
s["engines"] = [
    {"name": "localsqlite", "engine": "sqlite", "shortcut": "lsq", "categories": "general",
     "database": cfg["db"],
     "query_str": "SELECT url, title, content FROM docs WHERE content LIKE '%' || :query || '%'"},
    {"name": "loopjson", "engine": "json_engine", "shortcut": "lj", "categories": "general",
     "search_url": "http://127.0.0.1:%d/results.json?q={query}" % cfg["json_port"],
     "enable_http": True, "paging": False,
     "results_query": "items", "url_query": "link", "title_query": "name", "content_query": "desc"},
    # Not in `general`: only queried when asked for by name, so the ban after its failure cannot leak.
    {"name": "wikipedia", "engine": "wikipedia", "shortcut": "wp", "categories": "science",
     "enable_http": True,
     "search_url": "http://127.0.0.1:%d/api/rest_v1/page/summary/{title}?lang={language}" % cfg["dead_port"]},
]
yaml.safe_dump(s, open(cfg["out"], "w"), allow_unicode=True)
"""


def _searx_installed() -> bool:
    # `import searx` itself exits 1 without SEARX_SETTINGS_PATH, so probe for the module instead.
    probe = "import importlib.util as u, sys; sys.exit(u.find_spec('searx') is None)"
    try:
        return subprocess.run([SYSTEM_PYTHON, "-c", probe], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def _clean_env(**extra: str) -> dict[str, str]:
    """The environment for Debian's python: nothing that would point it at the venv."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env.update(extra)
    return env


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def _wait_ready(url: str, procs: dict[str, tuple[subprocess.Popen[bytes], Path]]) -> None:
    deadline = time.monotonic() + STARTUP_S
    while True:
        for name, (proc, log) in procs.items():
            if proc.poll() is not None:
                pytest.fail(f"{name} exited with {proc.returncode}:\n{log.read_text(errors='replace')}")
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            logs = "\n".join(f"--- {n}\n{log.read_text(errors='replace')}" for n, (_, log) in procs.items())
            pytest.fail(f"searx not ready at {url} within {STARTUP_S:.0f} s:\n{logs}")
        time.sleep(0.2)


@pytest.fixture(scope="module")
def searx_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A running searx on 127.0.0.1 (plus its loopback JSON source); yields the instance root URL."""
    if not _searx_installed():
        pytest.fail(
            f"Debian's searx is not importable by {SYSTEM_PYTHON}: `.ci/run` must install the Debian "
            "package `searx` (apt-get install -y searx)",
            pytrace=False,
        )
    work = tmp_path_factory.mktemp("searx")
    db = work / "docs.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE docs(url text, title text, content text)")
        conn.executemany("INSERT INTO docs VALUES (?, ?, ?)", SQLITE_DOCS)
    conn.close()
    static = work / "static"
    static.mkdir()
    (static / "results.json").write_text(json.dumps({"items": JSON_ITEMS}))

    port, json_port, dead_port = free_port(), free_port(), free_port()
    settings = work / "settings_offline.yml"
    cfg = {
        "port": port,
        "json_port": json_port,
        "dead_port": dead_port,
        "secret": secrets.token_hex(16),
        "db": str(db),
        "out": str(settings),
    }
    subprocess.run(
        [SYSTEM_PYTHON, "-c", SETTINGS_SCRIPT, json.dumps(cfg)], check=True, env=_clean_env(), timeout=30
    )

    procs: dict[str, tuple[subprocess.Popen[bytes], Path]] = {}
    try:
        http_log = work / "http.log"
        with open(http_log, "wb") as log:
            argv = [SYSTEM_PYTHON, "-m", "http.server", str(json_port), "--bind", "127.0.0.1"]
            proc = subprocess.Popen(
                [*argv, "--directory", str(static)], stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, env=_clean_env(),
            )  # fmt: skip
        procs["http.server"] = (proc, http_log)
        searx_log = work / "searx.log"
        with open(searx_log, "wb") as log:
            proc = subprocess.Popen(
                [SYSTEM_PYTHON, "-m", "searx.webapp"], stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, cwd=work, env=_clean_env(SEARX_SETTINGS_PATH=str(settings)),
            )  # fmt: skip
        procs["searx"] = (proc, searx_log)
        base = f"http://127.0.0.1:{port}"
        _wait_ready(f"{base}/", procs)
        _wait_ready(f"http://127.0.0.1:{json_port}/results.json", procs)
        yield base
    finally:
        for proc, _ in procs.values():
            _stop(proc)


def _raw(base: str, **params: str) -> dict[str, Any]:
    response = httpx.get(f"{base}/search", params={"format": "json", **params}, timeout=10.0)
    response.raise_for_status()
    return response.json()


async def test_hits_from_both_offline_engines(searx_url: str, env: ProviderEnv) -> None:
    hits = await adapter(env, "searxng", base_url=searx_url).call(SearchRequest("python", k=10))
    expected = {SearchHit(title, url, content, "searxng") for url, title, content in SQLITE_DOCS[:2]}
    expected |= {SearchHit(i["name"], i["link"], i["desc"], "searxng") for i in JSON_ITEMS}
    assert len(hits) == len(expected)
    assert set(hits) == expected


async def test_base_url_with_search_path_and_trailing_slash(searx_url: str, env: ProviderEnv) -> None:
    for base in (f"{searx_url}/", f"{searx_url}/search"):
        hits = await adapter(env, "searxng", base_url=base).call(SearchRequest("bandit", k=10))
        assert SearchHit("Python bandits", SQLITE_DOCS[0][0], SQLITE_DOCS[0][2], "searxng") in hits


async def test_k_is_respected(searx_url: str, env: ProviderEnv) -> None:
    arm = adapter(env, "searxng", base_url=searx_url)
    assert len(await arm.call(SearchRequest("python", k=1))) == 1
    assert len(await arm.call(SearchRequest("python", k=3))) == 3


async def test_engines_option_and_no_match_is_empty(searx_url: str, env: ProviderEnv) -> None:
    arm = adapter(env, "searxng", base_url=searx_url, options={"engines": "localsqlite"})
    hits = await arm.call(SearchRequest("python", k=10))
    assert {hit.url for hit in hits} == {url for url, _, _ in SQLITE_DOCS[:2]}
    # the instance itself reports a clean empty answer, which the adapter passes on as []
    raw = _raw(searx_url, q="qwxzjvkq", engines="localsqlite")
    assert raw["results"] == [] and raw["unresponsive_engines"] == []
    assert await arm.call(SearchRequest("qwxzjvkq", k=5)) == []


async def test_failed_upstream_engine_is_unavailable(searx_url: str, env: ProviderEnv) -> None:
    # searx bans a failed engine for `ban_time_on_fail` (5 s): this is the one query that reaches it.
    arm = adapter(env, "searxng", base_url=searx_url, options={"engines": "wikipedia"})
    with pytest.raises(Unavailable) as failure:
        await arm.call(SearchRequest("python", k=5))
    assert "wikipedia" in str(failure.value)


async def test_closed_port_is_unavailable(env: ProviderEnv) -> None:
    arm = adapter(env, "searxng", base_url=f"http://127.0.0.1:{free_port()}", timeout_s=5)
    with pytest.raises(Unavailable):
        await arm.call(SearchRequest("python", k=5))
