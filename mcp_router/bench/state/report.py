"""The report printed on stdout: per backend a table of start-up against size, the propagation delay,
then the bar. Only formatting: every figure is in the report dict written to `--json`."""

from __future__ import annotations

import json
from typing import Any

from mcp_router.bench.overhead.report import BAR_COLUMNS, Column, table

MB = 1024 * 1024
SIZE_COLUMNS: tuple[Column, ...] = (
    ("calls", lambda r: f"{r['calls']:,}"),
    ("events", lambda r: f"{r['generated']['events']:,}"),
    ("generated s", lambda r: r["generated"]["seconds"]),
    ("db MB", lambda r: round(r["db_bytes"] / MB, 1)),
    ("(b) first start s", lambda r: r["first_start"]["s"]),
    ("+s", lambda r: r["first_start"]["over_empty_s"]),
    ("+cpu s", lambda r: r["first_start"]["over_empty_cpu_s"]),
    ("folded", lambda r: f"{r['first_start']['events_to_fold']:,}"),
    ("(c) restart s", lambda r: r["restart_snapshot"]["median_s"]),
    ("+s", lambda r: r["restart_snapshot"]["median_over_empty_s"]),
    ("+cpu s", lambda r: r["restart_snapshot"]["median_over_empty_cpu_s"]),
    ("(d) after kill -9 s", lambda r: r["restart_after_kill"]["median_s"]),
    ("+s", lambda r: r["restart_after_kill"]["median_over_empty_s"]),
    ("+cpu s", lambda r: r["restart_after_kill"]["median_over_empty_cpu_s"]),
    ("folded", lambda r: f"{max(s['events_to_fold'] for s in r['restart_after_kill']['starts']):,}"),
)


def render(report: dict[str, Any]) -> str:
    m = report["machine"]
    parts = [
        f"cores: {m['cores']}   python {m['python']}   sqlite {m['sqlite']}   load average at start "
        f"{m['load_average_at_start']}, at end {m['load_average_at_end']}\n"
        f"parameters: {json.dumps(report['params'])}\n"
        "start-up: process start to the first served `search` over HTTP (a real MCP client). Every start "
        "is paired with an empty-database start (a) just before it: +s is the difference in wall time, "
        "+cpu s in the server's CPU time to its first answer; (c) and (d) are medians; folded: events "
        "the restore had to fold",
    ]
    for backend, result in report["backends"].items():
        parts.append(render_backend(backend, result))
    parts.append(table(BAR_COLUMNS, report["bars"]) + f"\n\nwall time {report['wall_s']:.1f} s")
    return "\n\n".join(parts)


def render_backend(backend: str, result: dict[str, Any]) -> str:
    if "skipped" in result:
        return f"{backend}: skipped ({result['skipped']})"
    empty = result["empty"]
    lines = [
        f"{backend} ({result['server_version']}): (a) empty database {empty['median_s']} s, "
        f"server CPU {empty['median_cpu_s']} s (medians of {len(empty['starts'])} starts: "
        f"{[s['s'] for s in empty['starts']]})",
        table(SIZE_COLUMNS, result["sizes"]),
    ]
    lines += [f"skipped {s['calls']:,} calls: {s['reason']}" for s in result["skipped_sizes"]]
    p = result["propagation"]
    lines.append(
        f"propagation, two processes on one database, {p['trials']} feedbacks: p50 {p.get('p50_s')} s, "
        f"p95 {p.get('p95_s')} s, max {p.get('max_s')} s, {p['timeouts']} not seen within the timeout"
    )
    if "retention" in result:
        r = result["retention"]
        sizes = ", ".join(f"{row['written']:,}: {row['db_bytes'] / MB:.1f}" for row in r["rows"])
        lines.append(
            f"retention, the newest {r['keep']:,} calls kept, pruned every {r['every']:,} written: "
            f"database MB after {sizes}; the last quarter grew it by {r['last_quarter_growth_share']} of "
            f"what as many calls added unpruned (bounded: {r['bounded']}); totals unchanged by pruning: "
            f"{r['totals_unchanged']}"
        )
    return "\n".join(lines)
