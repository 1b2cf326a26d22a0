"""`mcp-router bench first-run`: a keyless `mcp-router serve` child answering varied `retrieve` calls,
and the two checks read from what it reports."""

from __future__ import annotations

import json
import os

import pytest

from mcp_router.bench import first_run
from mcp_router.cli import main as cli_main


def stats(**evidence: int) -> dict:
    return {
        "arms": {
            arm: {"calls": 5, "quality_n": n, "quality_mean": 0.5 if n else None}
            for arm, n in evidence.items()
        }
    }


def outcomes(n: int) -> list[dict]:
    return [{"error": False, "latency_s": 0.1}] * n


LQM = {"policy": "lqm", "order": ["a", "b"]}
WARMUP = {"policy": "warmup", "order": ["b", "a"]}
GUARDED = {"policy": "lqm", "order": ["a"]}  # the other arm excluded by a guard: no choice was made


def test_most_of_the_last_decisions_must_be_lqm_among_several_arms_and_every_arm_judged():
    report = first_run.summarise(outcomes(8), [LQM] * 3 + [WARMUP], stats(a=4, b=2), 4, 12.0)
    assert report["checks"] == {"most_last_decisions_by_lqm": True, "every_arm_holds_judged_quality": True}
    assert report["last_policies"] == {"lqm": 3, "warmup": 1} and report["last_learned"] == 3
    half = first_run.summarise(outcomes(8), [LQM] * 2 + [WARMUP] * 2, stats(a=4, b=0), 4, 12.0)
    assert half["checks"] == {"most_last_decisions_by_lqm": False, "every_arm_holds_judged_quality": False}
    guarded = first_run.summarise(outcomes(8), [GUARDED] * 4, stats(a=4, b=2), 4, 12.0)
    assert guarded["last_policies"] == {"lqm": 4} and guarded["last_learned"] == 0
    assert guarded["checks"]["most_last_decisions_by_lqm"] is False
    short = first_run.summarise(outcomes(2), [LQM, LQM], stats(a=1), 4, 1.0)  # fewer decisions than asked
    assert short["checks"]["most_last_decisions_by_lqm"] is False
    text = first_run.render(half)
    assert "lqm 2" in text and "check every_arm_holds_judged_quality: FAIL" in text


def test_the_server_never_sees_an_api_key(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-secret")
    monkeypatch.setenv("BRAVE_API_KEY", "brave-secret")
    env = first_run.keyless_env(tmp_path)
    assert not any(k.endswith("_API_KEY") for k in env)
    assert env["MCP_ROUTER_DB"] == str(tmp_path / "router.db")


@pytest.mark.parametrize("argv", [["--last", "0"], ["--calls", "5", "--last", "6"], ["--pace", "-1"]])
def test_bad_options_are_refused_with_what_to_change(argv, capsys):
    with pytest.raises(SystemExit) as exited:
        cli_main(["bench", "first-run", *argv])
    assert exited.value.code == 2
    assert "--last" in capsys.readouterr().err


@pytest.mark.slow
def test_a_short_first_run_through_a_real_server(tmp_path, capsys):
    """Six calls through a real keyless `mcp-router serve`: every call answered, the report written."""
    out = tmp_path / "first-run.json"
    with pytest.raises(SystemExit) as exited:
        cli_main(
            [
                "bench",
                "first-run",
                "--calls",
                "6",
                "--last",
                "3",
                "--pace",
                "0",
                "--workdir",
                str(tmp_path / "w"),
                "--json",
                str(out),
            ]
        )
    report = json.loads(out.read_text())
    assert exited.value.code == (0 if all(report["checks"].values()) else 1)
    assert report["calls"] == 6 and report["errors"] == 0
    assert set(report["arms"]) == {"bm25", "dense", "hybrid"}
    assert sum(report["last_policies"].values()) == 3
    assert (tmp_path / "w" / "router.db").is_file()
    assert report["machine"]["cores"] == os.cpu_count()
    assert "policies of the last 3 decisions" in capsys.readouterr().out


def test_half_the_questions_are_about_the_sample_documents_in_a_seeded_order():
    docs = set(first_run.doc_questions())
    assert len(docs) == 40 and not any(q.startswith("#") for q in docs)
    asked = first_run.questions(80, seed=0)
    assert len(set(asked)) == 80 and sum(q in docs for q in asked) == 40
    assert asked == first_run.questions(80, seed=0) and asked != first_run.questions(80, seed=1)
    assert asked[:40] != [q for q in asked if q in docs]  # interleaved, not all doc questions first
