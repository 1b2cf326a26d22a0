"""`mcp-router demo` end to end: a real stdio server, a real client, routed calls for all three tools."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.slow
def test_demo_routes_every_tool_and_prints_stats() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "mcp_router", "demo"], capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    decisions = [
        line.split()
        for line in lines
        if line.split()[:1] in (["retrieve"], ["llm_complete"])
        and len(line.split()) > 3
        and line.split()[3].startswith("ok")
    ]
    assert {d[1] for d in decisions if d[0] == "retrieve"} == {"bm25", "dense", "hybrid"}
    chats = [d for d in decisions if d[0] == "llm_complete"]
    assert len(chats) == 3 and {d[1] for d in chats} <= {"smollm2-135m-local", "gemma3-270m-local"}
    assert all(" p=" in " ".join(d) for d in chats)  # MTRouter's choice and its propensity are shown
    stats_at = lines.index("router://stats")
    searches = [line for line in lines[:stats_at] if line.startswith("search ")]
    assert len(searches) == 2  # offline: a clear error naming each provider; online: results
    assert all("every `search` provider failed" in s or " ok " in s for s in searches)
    assert "Traceback" not in done.stdout
    assert any(line.split()[:2] == ["llm_complete", "openai"] for line in lines[stats_at:])  # keyed arm, off
    assert "demo-conversation: 3 steps, $0.000000 of $0.01" in lines  # local models cost nothing
