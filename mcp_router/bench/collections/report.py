"""The report printed on stdout: the first start, its calls, the warm starts, the edits, the bar and
the checks. Only formatting: every figure is in the report dict written to `--json`."""

from __future__ import annotations

import json
from typing import Any

from mcp_router.bench.collections.first_start import GROUPS
from mcp_router.bench.collections.setting import ARMS
from mcp_router.bench.overhead.report import BAR_COLUMNS, Column, table

GROUP_LABELS = {
    "before_lexical": "sent before BM25 built",
    "lexical_only": "BM25 built, dense not",
    "after_dense": "after dense built",
}
OUTCOMES = (*ARMS, "error", "lost")
FIRST_COLUMNS: tuple[Column, ...] = (
    ("first start, s since spawn", lambda r: "empty index folder"),
    ("initialized", lambda r: r["initialized_s"]),
    ("first ok call", lambda r: r["first_ok_s"]),
    ("by", lambda r: r["first_ok_arm"]),
    ("BM25 built", lambda r: r["lexical_built_s"]),
    ("seen ready", lambda r: r["lexical_ready_s"]),
    ("dense built", lambda r: r["dense_built_s"]),
    ("seen ready", lambda r: r["dense_ready_s"]),
    ("passages embedded", lambda r: r["passages_embedded"]),
    ("passages/s", lambda r: r["embedding_passages_per_s"]),
)
CALL_COLUMNS: tuple[Column, ...] = (
    ("first start calls", lambda g: GROUP_LABELS[g["group"]]),
    ("calls", lambda g: g["calls"]),
    *((name, (lambda key: lambda g: g["by_outcome"].get(key, 0))(name)) for name in OUTCOMES),
    ("max latency s", lambda g: g["max_latency_s"]),
)
WARM_COLUMNS: tuple[Column, ...] = (
    ("second start (warm index)", lambda r: "+".join(r["arms"])),
    ("starts", lambda r: len(r["starts"])),
    ("initialized s", lambda r: r["median_initialized_s"]),
    ("first served s", lambda r: r["median_first_served_s"]),
    ("max", lambda r: r["max_first_served_s"]),
    ("after initialize s", lambda r: r["median_after_initialize_s"]),
    ("max", lambda r: r["max_after_initialize_s"]),
    ("dense ready s", lambda r: r.get("median_dense_ready_s")),
    ("served by", lambda r: ",".join(r["served_by"])),
)


def render(report: dict[str, Any]) -> str:
    m, corpus, first = report["machine"], report["corpus"], report["first_start"]
    parts = [
        f"cores: {m['cores']}   python {m['python']}   mcp {m['mcp']}   load average at start "
        f"{m['load_average_at_start']}, at end {m['load_average_at_end']}\n"
        f"command: {report['command']}   ({report['started_at']} to {report['finished_at']})\n"
        f"parameters: {json.dumps(report['params'])}\n"
        f"corpus: {corpus['files']:,} SciFact abstracts, one .txt file each "
        f"({corpus['bytes'] / 1e6:.1f} MB), "
        f"{first['documents']} passages; times are seconds since the server process was spawned; a view is "
        f"built at its `built_at` stamp and seen ready by the first `router://collections` read showing it; "
        f"passages/s: from the first read in phase embedding (model load included) to dense built",
        table(FIRST_COLUMNS, [first]),
        render_calls(first),
        table(WARM_COLUMNS, report["second_start"])
        + "\n(medians over the starts; max: the slowest start; first served: the first successful "
        "retrieve, retried every 0.1 s)",
        render_edit(report["edit"]),
        table(BAR_COLUMNS, report["bars"]),
        render_checks(report),
    ]
    return "\n\n".join(parts) + f"\n\nwall time {report['wall_s']:.1f} s"


def render_calls(first: dict[str, Any]) -> str:
    rows = [{"group": g, **first["groups"][g]} for g in GROUPS]
    seen = ", ".join(f"{arm} {n}" for arm, n in first["while_indexing_by_outcome"].items())
    odd = first["slow_or_fell_back"]
    lines = [
        table(CALL_COLUMNS, rows),
        f"{first['calls_made']} calls, one launched every second: {first['answered']} answered "
        f"({first['errors']} with an error), {first['lost']} lost; max latency {first['max_latency_s']} s; "
        f"{len(odd)} slower than 1 s, with a fallback or an error; sent before dense was built: "
        f"{seen or 'none'}",
    ]
    lines += [f"  {json.dumps(call)}" for call in odd[:10]]
    return "\n".join(lines)


def render_edit(edit: dict[str, Any]) -> str:
    index, live = edit["index"], edit["live"]
    refresh = live["last_refresh"] or {}
    return (
        f"edit one file, then `mcp-router index scifact`: {index['wall_s']} s (exit {index['returncode']}): "
        f"{index['line']}\n"
        f"edit one file under a running three-arm server (rescan every {live['rescan_every_s']} s): seen in "
        f"router://collections {live['seen_after_s']} s after the edit (refresh finished "
        f"{live['refreshed_after_s']} s after it): {refresh.get('changed')} changed, "
        f"{refresh.get('files_embedded')} file(s) / {refresh.get('passages_embedded')} passage(s) embedded, "
        f"the refresh took {refresh.get('seconds')} s; new views built after the edit: BM25 "
        f"{live['lexical_built_after_s']} s, dense {live['dense_built_after_s']} s"
    )


def render_checks(report: dict[str, Any]) -> str:
    logs = report["logs"]
    lines = ["checks:"] + [f"  {'pass' if ok else 'FAIL'}  {name}" for name, ok in report["checks"].items()]
    lines.append(
        f"logs: {logs['lines_scanned']} lines, {logs['unhandled']} unhandled exceptions, by level "
        f"{json.dumps(logs['lines_by_level'])}"
    )
    lines += [f"  {line}" for line in logs["warning_samples"]]
    return "\n".join(lines)
