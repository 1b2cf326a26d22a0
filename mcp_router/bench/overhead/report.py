"""The report printed on stdout: one plain-text table per kind of row, the bars last.

Only formatting: every figure is already in the report dict (the same one written to `--json`), so
the table and the JSON can never disagree.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from mcp_router.bench.overhead.micro import LQM_ARMS
from mcp_router.bench.overhead.stats import missing

Column = tuple[str, Callable[[dict[str, Any]], Any]]


def fmt(value: Any) -> str:
    if missing(value):
        return "-"
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def table(columns: Sequence[Column], records: Sequence[dict[str, Any]]) -> str:
    """A plain-text table: text columns (the first, and a last `note`) left-aligned, figures right."""
    cells = [[h for h, _ in columns]] + [[fmt(get(r)) for _, get in columns] for r in records]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    left = {0, len(columns) - 1} if columns[-1][0] == "note" else {0}
    return "\n".join(
        "  ".join(
            c.ljust(w) if i in left else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in cells
    )


MICRO_ROWS = (
    (f"LQM decision, {LQM_ARMS} warmed arms", ("lqm",)),
    ("query features (the server's featurizer)", ("features",)),
    ("  of which text features only", ("features", "text_features_only")),
    ("MTRouter decide, priors", ("mtrouter", "prior")),
    ("MTRouter decide, checkpoint, cached history", ("mtrouter", "checkpoint_cached")),
    ("MTRouter decide, checkpoint, uncached history", ("mtrouter", "checkpoint_uncached")),
)
MICRO_COLUMNS: tuple[Column, ...] = (
    ("micro, no MCP", lambda r: r["label"]),
    ("n", lambda r: r["n"]),
    ("p50 µs", lambda r: r["p50_us"]),
    ("p99 µs", lambda r: r["p99_us"]),
)
PATH_COLUMNS: tuple[Column, ...] = (
    ("full path, ms", lambda r: r["tool"]),
    ("transport", lambda r: r["transport"]),
    ("variant", lambda r: r["variant"]),
    ("n", lambda r: r["router"]["n"]),
    ("router p50", lambda r: r["router"]["p50_ms"]),
    ("p99", lambda r: r["router"]["p99_ms"]),
    ("floor p50", lambda r: r["floor_same_call"]["p50_ms"]),
    ("p99", lambda r: r["floor_same_call"]["p99_ms"]),
    ("echo p50", lambda r: r["floor_echo"]["p50_ms"]),
    ("added p50", lambda r: r["added_p50_ms"]),
    ("added p99", lambda r: r["added_p99_ms"]),
)
THROUGHPUT_COLUMNS: tuple[Column, ...] = (
    ("HTTP throughput, search", lambda r: r["target"]),
    ("concurrency", lambda r: r["concurrency"]),
    *((name, (lambda key: lambda r: r[key])(name)) for name in ("sent", "ok", "errors", "lost")),
    ("calls/s", lambda r: r["calls_per_s"]),
    ("p50 ms", lambda r: r["p50_ms"]),
    ("p99 ms", lambda r: r["p99_ms"]),
    ("router/floor", lambda r: r.get("router_over_floor")),
)
STARTUP_COLUMNS: tuple[Column, ...] = (
    ("start-up over stdio, s", lambda r: r["target"]),
    ("first call", lambda r: r["tool"]),
    ("median", lambda r: r["median_s"]),
    ("max", lambda r: r["max_s"]),
    ("samples", lambda r: r["samples_s"]),
)
BAR_COLUMNS: tuple[Column, ...] = (
    ("bar", lambda b: b["name"]),
    ("value", lambda b: b["value"]),
    ("limit", lambda b: f"{b['op']} {b['limit']} {b['unit']}"),
    ("result", lambda b: {True: "pass", False: "FAIL", None: "n/a"}[b["pass"]]),
    ("note", lambda b: b["note"]),
)


def micro_records(micro: dict[str, Any]) -> list[dict[str, Any]]:
    records = []
    for label, path in MICRO_ROWS:
        entry = micro
        for key in path:
            entry = entry[key]
        records.append({"label": label, **entry})
    return records


def render(report: dict[str, Any]) -> str:
    m = report["machine"]
    rss = report["rss"]
    return "\n\n".join(
        [
            f"cores: {m['cores']}   python {m['python']}   mcp {m['mcp']}   load average at start "
            f"{m['load_average_at_start']}, at end {m['load_average_at_end']}\n"
            f"parameters: {json.dumps(report['params'])}\n"
            f"provider stub (own process, its handling time): {json.dumps(report['stub'])}",
            table(MICRO_COLUMNS, micro_records(report["micro"])),
            "router: mcp-router; floor: a bare MCPServer making the same provider call on the same "
            "transport; echo: that floor's echo tool\n" + table(PATH_COLUMNS, report["paths"]),
            render_litellm(report["litellm"]),
            table(THROUGHPUT_COLUMNS, report["throughput"]),
            f"RSS of an in-process server, routed search calls: {json.dumps(rss['readings'])}; "
            f"growth {rss['growth_mb']} MB from {rss['from_calls']} to {rss['to_calls']} calls",
            table(STARTUP_COLUMNS, report["startup"]),
            table(BAR_COLUMNS, report["bars"]) + f"\n\nwall time {report['wall_s']:.1f} s",
        ]
    )


def render_litellm(lite: dict[str, Any]) -> str:
    if not lite.get("installed"):
        return f"LiteLLM: skipped ({lite.get('skipped')})"
    a, b = lite["litellm"], lite["raw_httpx"]
    return (
        f"LiteLLM {lite['version']} Router.acompletion, {lite['routing_strategy']}: p50 {a['p50_ms']} ms, "
        f"p99 {a['p99_ms']} ms; raw httpx to the same stub: p50 {b['p50_ms']} ms, p99 {b['p99_ms']} ms; "
        f"LiteLLM adds p50 {lite['added_p50_ms']} ms, p99 {lite['added_p99_ms']} ms"
    )
