"""The bars of the issue, evaluated on a finished run and reported pass, FAIL or n/a.

They are only read, never aimed at: nothing in the benchmark tunes the server to them. Each bar is a
value against a limit, with a note that says how the value was obtained when that is not obvious.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from mcp_router.bench.overhead.micro import LQM_ARMS
from mcp_router.bench.overhead.paths import PathRow
from mcp_router.bench.overhead.stats import missing, rounded


@dataclass(frozen=True)
class Bar:
    """One target of the issue: `value` against `limit` (`op` is <= or >=); None when not measured."""

    name: str
    value: float | None
    op: str
    limit: float
    unit: str
    note: str = ""

    @property
    def passed(self) -> bool | None:
        if missing(self.value):
            return None
        return self.value <= self.limit if self.op == "<=" else self.value >= self.limit

    def to_json(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "value": rounded(self.value),
            "pass": self.passed,
        }


def at_most(name: str, value: float | None, limit: float, unit: str, note: str = "") -> Bar:
    return Bar(name, value, "<=", limit, unit, note)


def at_least(name: str, value: float | None, limit: float, unit: str, note: str = "") -> Bar:
    return Bar(name, value, ">=", limit, unit, note)


def row_of(rows: Sequence[PathRow], tool: str, variant: str, transport: str = "in-process") -> PathRow | None:
    """The row of `tool` / `variant` on `transport`, if it was measured."""
    return next((r for r in rows if (r.tool, r.transport, r.variant) == (tool, transport, variant)), None)


def path_bars(rows: Sequence[PathRow]) -> list[Bar]:
    bars = []
    for tool, variant, label in (
        ("search", "", "search"),
        ("retrieve", "", "retrieve(bm25)"),
        ("llm_complete", "priors", "llm_complete(priors)"),
    ):
        row = row_of(rows, tool, variant)
        bars.append(at_most(f"in-process added p50, {label}", row and row.added_p50_ms, 1.0, "ms"))
        bars.append(at_most(f"in-process added p99, {label}", row and row.added_p99_ms, 3.0, "ms"))
    return bars


def checkpoint_bar(rows: Sequence[PathRow], micro: dict[str, Any]) -> Bar:
    """Judged on a new turn every call, whose history must be embedded: the realistic case."""
    uncached = row_of(rows, "llm_complete", "checkpoint, uncached history")
    cached = row_of(rows, "llm_complete", "checkpoint, cached history")
    full = (uncached.router.p50_s - cached.router.p50_s) * 1e3 if uncached and cached else math.nan
    alone = micro["mtrouter"]["history_embedding_p50_us"] / 1e3
    note = (
        f"a new turn every call; history embedding {alone:.2f} ms in the decision alone, "
        f"{full:.2f} ms on the full path (uncached − cached router p50)"
    )
    name = "in-process added p50, llm_complete(checkpoint)"
    return at_most(name, uncached and uncached.added_p50_ms, 10.0, "ms", note)


def litellm_bar(rows: Sequence[PathRow], lite: dict[str, Any]) -> Bar:
    name = "our added p50 / LiteLLM's added p50"
    ours = row_of(rows, "llm_complete", "priors")
    if not lite.get("installed") or ours is None or not lite.get("added_p50_ms"):
        return at_most(name, None, 0.1, "×", lite.get("skipped", "not measured"))
    theirs = lite["added_p50_ms"]
    note = f"ours {ours.added_p50_ms:.3f} ms (llm_complete in-process, priors), LiteLLM {theirs:.3f} ms"
    return at_most(name, ours.added_p50_ms / theirs, 0.1, "×", note)


def throughput_bars(rows: Sequence[dict[str, Any]]) -> list[Bar]:
    bars = []
    for concurrency in (16, 64):
        level = {r["target"]: r for r in rows if r["concurrency"] == concurrency}
        router, floor = level.get("router"), level.get("floor")
        lost = router["lost"] + floor["lost"] if router and floor else None
        ratio = router["router_over_floor"] if router else None
        bars.append(at_least(f"HTTP throughput router/floor, concurrency {concurrency}", ratio, 0.85, "×"))
        bars.append(at_most(f"HTTP calls lost (router + floor), concurrency {concurrency}", lost, 0, "calls"))
    return bars


def all_bars(report: dict[str, Any], rows: Sequence[PathRow]) -> list[Bar]:
    """Every bar of the issue, in the order the table lists them."""
    micro, rss = report["micro"], report["rss"]
    startup = {(r["target"], r["tool"]): r["median_s"] for r in report["startup"]}
    rss_note = f"{rss['from_calls']} → {rss['to_calls']} routed calls" + (
        " (quick: the bar is set for 1k → 100k)" if report["params"]["quick"] else ""
    )
    return [
        *path_bars(rows),
        checkpoint_bar(rows, micro),
        litellm_bar(rows, report["litellm"]),
        at_most("LQM decision p50", micro["lqm"]["p50_us"], 50.0, "µs", f"{LQM_ARMS} warmed arms"),
        at_most("query features p50", micro["features"]["p50_us"], 100.0, "µs"),
        *throughput_bars(report["throughput"]),
        at_most("RSS growth", rss["growth_mb"], 50.0, "MB", rss_note),
        *(
            at_most(f"start-up to first {tool}, router over stdio", startup.get(("router", tool)), 3.0, "s")
            for tool in ("search", "retrieve")
        ),
    ]
