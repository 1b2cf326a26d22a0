"""`mcp-router bench first-run`: does the router learn out of the box?

A new user's first session, reproduced: `mcp-router serve` on the built-in configuration, with an
empty database and index folder and no API key in its environment (so no hosted LLM judge), spawned
over stdio by a real MCP client. It answers `--calls` varied `retrieve` calls, one every `--pace`
seconds as a person or an agent would send them: half are questions about the built-in sample
documents (`first_run_questions.txt`), half SciFact questions they hold no answer to, in a seeded
order. Then it reads each arm's judged quality evidence as any client can (`router://stats/retrieve`,
once the judge has caught up) and, after the server has stopped, its last `--last` retrieve
decisions from its database.

It passes when most of the last decisions were made by LQM's learned scores (policy `lqm`, not
`warmup` round-robin, with more than one arm to rank: a decision left a single arm by a guard or a
loading index is not a learned one) and every arm holds judged quality observations. Wall time
includes the server's start and its indexing of the sample documents.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import anyio

from mcp_router.bench.output import publish, quiet_clients
from mcp_router.bench.overhead.machine import load_average, machine
from mcp_router.bench.overhead.servers import explained, stdio_client_for
from mcp_router.bench.paths import data_dir
from mcp_router.store import Store

DEFAULT_CALLS = 80
DOC_QUESTIONS = Path(__file__).with_name("first_run_questions.txt")
DRAIN_QUIET_S = 3.0  # the judge has caught up once the evidence has not moved for this long
DRAIN_MAX_S = 60.0


def progress(message: str) -> None:
    print(f"bench first-run: {message}", file=sys.stderr, flush=True)


def doc_questions() -> list[str]:
    """Questions about the built-in sample documents, which the built-in collection serves."""
    lines = DOC_QUESTIONS.read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def scifact_questions() -> list[str]:
    root = data_dir() / "scifact"
    texts = []
    for name in ("queries.jsonl", "queries.train.jsonl"):
        with open(root / name, encoding="utf-8") as f:
            texts += [json.loads(line)["text"] for line in f if line.strip()]
    return texts


def questions(n: int, seed: int) -> list[str]:
    """`n` distinct questions in a seeded order: up to half about the sample documents (the collection
    has answers), the rest SciFact questions it has no answer to, as a new user asks both."""
    rng = random.Random(seed)
    docs = doc_questions()
    on_topic = rng.sample(docs, min(len(docs), n // 2))
    off_topic = scifact_questions()
    if n - len(on_topic) > len(off_topic):
        raise ValueError(f"--calls {n}: there are only {len(docs) + len(off_topic)} questions")
    mixed = on_topic + rng.sample(off_topic, n - len(on_topic))
    rng.shuffle(mixed)
    return mixed


def keyless_env(workdir: Path) -> dict[str, str]:
    """This environment without any API key, with the server's database and indexes in `workdir`."""
    env = {k: v for k, v in os.environ.items() if not k.upper().endswith("_API_KEY")}
    env.update(MCP_ROUTER_DB=str(workdir / "router.db"), MCP_ROUTER_INDEX_DIR=str(workdir / "indexes"))
    return env


async def _read(client: Any, uri: str) -> dict[str, Any]:
    return json.loads((await client.read_resource(uri)).contents[0].text)


def _evidence(stats: dict[str, Any]) -> dict[str, int]:
    return {arm: int(a.get("quality_n") or 0) for arm, a in stats["arms"].items()}


async def _drained(client: Any) -> dict[str, Any]:
    """`router://stats/retrieve` once the judge queue has caught up (or after `DRAIN_MAX_S`)."""
    started = last_change = time.monotonic()
    stats = await _read(client, "router://stats/retrieve")
    while time.monotonic() - last_change < DRAIN_QUIET_S and time.monotonic() - started < DRAIN_MAX_S:
        await anyio.sleep(0.5)
        fresh = await _read(client, "router://stats/retrieve")
        if _evidence(fresh) != _evidence(stats):
            last_change = time.monotonic()
        stats = fresh
    return stats


async def run(calls: int, last: int, pace_s: float, seed: int, workdir: Path) -> dict[str, Any]:
    texts = questions(calls, seed)
    at_start = machine()
    log = workdir / "server.log"
    outcomes: list[dict[str, Any]] = []
    spawned = time.perf_counter()
    with open(log, "a") as sink:
        async with explained("mcp-router serve", log):
            args = ["-m", "mcp_router", "serve"]
            async with stdio_client_for(args, keyless_env(workdir), sink) as client:
                progress(f"server up in {time.perf_counter() - spawned:.1f}s; sending {calls} retrieve calls")
                for i, query in enumerate(texts):
                    sent = time.perf_counter()
                    result = await client.call_tool("retrieve", {"query": query, "k": 5})
                    outcomes.append(
                        {"error": bool(result.is_error), "latency_s": round(time.perf_counter() - sent, 4)}
                    )
                    if i % 20 == 19:
                        progress(f"{i + 1}/{calls} calls")
                    await anyio.sleep(pace_s)
                stats = await _drained(client)
    wall_s = time.perf_counter() - spawned
    store = Store(workdir / "router.db")
    try:
        decisions = [c["decision"] for c in store.recent_calls(last, tool="retrieve")]
    finally:
        store.close()
    report = summarise(outcomes, decisions, stats, last, wall_s)
    report["machine"] = {**at_start, "load_average_at_end": load_average()}
    return report


def learned(decision: dict[str, Any]) -> bool:
    """Made by LQM's scores among several arms: policy `lqm` (not `warmup`, `forced` or `epsilon`)
    with more than one arm to rank, so no guard or loading index left it a single candidate."""
    return decision.get("policy") == "lqm" and len(decision.get("order") or []) > 1


def summarise(
    outcomes: list[dict[str, Any]],
    decisions: list[dict[str, Any]],
    stats: dict[str, Any],
    last: int,
    wall_s: float,
) -> dict[str, Any]:
    """The report and its two checks. `decisions`: the last `last` decisions, as the store keeps them."""
    policies = Counter(d.get("policy") for d in decisions)
    by_lqm = sum(learned(d) for d in decisions)
    evidence = _evidence(stats)
    arms = {
        arm: {"calls": a.get("calls"), "quality_n": evidence[arm], "quality_mean": a.get("quality_mean")}
        for arm, a in stats["arms"].items()
    }
    return {
        "calls": len(outcomes),
        "errors": sum(o["error"] for o in outcomes),
        "latency_mean_s": round(sum(o["latency_s"] for o in outcomes) / max(1, len(outcomes)), 4),
        "last": last,
        "last_policies": dict(policies),
        "last_learned": by_lqm,
        "arms": arms,
        "wall_s": round(wall_s, 1),
        "checks": {
            "most_last_decisions_by_lqm": len(decisions) == last and by_lqm * 2 > last,
            "every_arm_holds_judged_quality": bool(arms) and all(n > 0 for n in evidence.values()),
        },
    }


def render(report: dict[str, Any]) -> str:
    lines = [
        f"first run: {report['calls']} retrieve calls through `mcp-router serve` on the built-in config, "
        f"no API key ({report['errors']} errors, mean latency {report['latency_mean_s']:.3f}s, "
        f"{report['wall_s']:.0f}s wall)",
        f"policies of the last {report['last']} decisions: "
        + ", ".join(f"{p} {n}" for p, n in sorted(report["last_policies"].items(), key=lambda kv: -kv[1]))
        + f"; by LQM's scores among several arms: {report['last_learned']}",
        f"{'arm':<12} {'calls':>6} {'judged':>7} {'quality':>8}",
    ]
    for arm, a in report["arms"].items():
        mean = "-" if a["quality_mean"] is None else f"{a['quality_mean']:.3f}"
        lines.append(f"{arm:<12} {a['calls'] or 0:>6} {a['quality_n']:>7} {mean:>8}")
    lines += [f"check {name}: {'pass' if ok else 'FAIL'}" for name, ok in report["checks"].items()]
    if "machine" in report:  # call latencies and wall time depend on it; the checks should not
        m = report["machine"]
        lines.append(
            f"machine: {m['cores']} cores, load average at start {m['load_average_at_start']}, "
            f"at end {m['load_average_at_end']}"
        )
    return "\n".join(lines)


def main(args: argparse.Namespace) -> int:
    """`mcp-router bench first-run [--calls N] [--last N] [--pace S] [--sample-seed N] [--workdir DIR]
    [--json F]`; exit code 1 when a check fails."""
    calls, last = args.calls or DEFAULT_CALLS, args.last
    if not 0 < last <= calls or not args.pace >= 0:
        print(
            "mcp-router bench first-run: need 0 < --last <= --calls and --pace >= 0 "
            f"(got --last {last}, --calls {calls}, --pace {args.pace})",
            file=sys.stderr,
        )
        return 2
    quiet_clients()
    with contextlib.ExitStack() as stack:
        if args.workdir:
            workdir = Path(args.workdir)
            workdir.mkdir(parents=True, exist_ok=True)
            if any(workdir.iterdir()):
                print(f"mcp-router bench first-run: --workdir {workdir} must be empty", file=sys.stderr)
                return 2
        else:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="mcp-router-first-run-")))
        try:
            report = anyio.run(run, calls, last, args.pace, args.sample_seed, workdir)
        except (OSError, ValueError) as exc:
            print(f"mcp-router bench first-run: {exc}", file=sys.stderr)
            return 2
    publish(render(report), report, getattr(args, "json", None), progress)
    return 0 if all(report["checks"].values()) else 1
