"""`mcp-router doctor`: a line per provider, probes against real loopback servers, never a key."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import CLOSED_PORT_URL, wiki_provider

SECRET = "sk-doctor-SECRET-0123456789"


def run_doctor(config: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DOCTOR_TEST_KEY": SECRET}
    env.pop("UNSET_TEST_KEY", None)
    return subprocess.run(
        [sys.executable, "-m", "mcp_router", "doctor", "--config", str(config), *extra],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def doctor_config(tmp_path: Path, wiki_url: str) -> Path:
    path = tmp_path / "doctor.toml"
    path.write_text(
        "auto_providers = false\n[tools.search]\n"
        + wiki_provider("wiki-local", wiki_url)
        + wiki_provider("wiki-down", CLOSED_PORT_URL, timeout_s=2)
        + f"""
[[tools.llm_complete.providers]]
name = "hosted"
type = "openai"
model = "m"
base_url = "{CLOSED_PORT_URL.removesuffix("/w/api.php")}/v1"
api_key_env = "DOCTOR_TEST_KEY"

[[tools.llm_complete.providers]]
name = "absent"
type = "openai"
model = "m"
api_key_env = "UNSET_TEST_KEY"
"""
    )
    return path


def rows(output: str) -> dict[str, str]:
    return {line.split()[1]: line for line in output.splitlines()[3:] if line.strip()}


def test_doctor_probes_every_serving_provider(tmp_path: Path, wiki_url: str) -> None:
    done = run_doctor(doctor_config(tmp_path, wiki_url))
    assert done.returncode == 1, done.stderr  # a serving provider failed its probe
    lines = rows(done.stdout)
    assert "serving" in lines["wiki-local"] and "ok in" in lines["wiki-local"]
    assert "error: unavailable: cannot reach 127.0.0.1" in lines["wiki-down"]
    assert "DOCTOR_TEST_KEY set" in lines["hosted"] and "error: unavailable" in lines["hosted"]
    assert "off: environment variable UNSET_TEST_KEY is not set" in lines["absent"]
    assert SECRET not in done.stdout + done.stderr


def test_doctor_without_probes_calls_nothing(tmp_path: Path, wiki_url: str, wiki_server) -> None:
    before = len(wiki_server.requests)
    done = run_doctor(doctor_config(tmp_path, wiki_url), "--no-probe")
    assert done.returncode == 0, done.stderr
    assert "not probed" in rows(done.stdout)["wiki-local"]
    assert len(wiki_server.requests) == before
