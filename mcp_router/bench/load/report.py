"""The report printed on stdout: plain-text tables of a finished run, the bars last.

Only formatting: every figure is already in the report dict (the one written to `--json`), so the
table and the JSON cannot disagree.
"""

from __future__ import annotations

import json
from typing import Any

from mcp_router.bench.overhead.report import Column, table

PHASE_COLUMNS: tuple[Column, ...] = (
    ("calls", lambda r: r["phase"]),
    *((k.replace("_", " "), (lambda key: lambda r: r[key])(k)) for k in ("sent", "acknowledged", "ok")),
    ("tool errors", lambda r: r["tool_errors"]),
    ("transport errors", lambda r: r["transport_errors"]),
    ("answered/s", lambda r: r["answered_per_s"]),
    ("wall s", lambda r: r["wall_s"]),
)
TOOL_COLUMNS: tuple[Column, ...] = (
    ("load, per tool", lambda r: r["tool"]),
    ("sent", lambda r: r["sent"]),
    ("ok", lambda r: r["ok"]),
    ("tool errors", lambda r: r["tool_errors"]),
    ("transport errors", lambda r: r["transport_errors"]),
    ("p50 ms", lambda r: r["latency"]["p50_ms"]),
    ("p99 ms", lambda r: r["latency"]["p99_ms"]),
)
FALLBACK_COLUMNS: tuple[Column, ...] = (
    ("rows (warm-up + load)", lambda r: r["tool"]),
    ("calls", lambda r: r["calls"]),
    ("1st attempt failed", lambda r: r["first_attempt_failed"]),
    ("share", lambda r: r["first_attempt_failed_share"]),
    ("rescued", lambda r: r["rescued"]),
    ("fallback success", lambda r: r["fallback_success_rate"]),
)
ATTEMPT_COLUMNS: tuple[Column, ...] = (
    ("attempts, server side", lambda r: r["arm"]),
    ("n", lambda r: r["n"]),
    ("p50 ms", lambda r: r["p50_ms"]),
    ("p99 ms", lambda r: r["p99_ms"]),
    ("max ms", lambda r: r["max_ms"]),
    ("timeouts", lambda r: r["timeouts"]),
)
BAR_COLUMNS: tuple[Column, ...] = (
    ("bar", lambda b: b["name"]),
    ("value", lambda b: b["value"]),
    ("limit", lambda b: b["limit"]),
    ("result", lambda b: {True: "pass", False: "FAIL", None: "n/a"}[b["pass"]]),
    ("note", lambda b: b["note"]),
)


def render(report: dict[str, Any]) -> str:
    m, rows, rss, kill, logs = (report[k] for k in ("machine", "rows", "rss", "kill", "server_log"))
    phases = [{"phase": name, **report[name]} for name in ("warmup", "load")]
    tools = [{"tool": name, **t} for name, t in report["load"]["by_tool"].items()]
    fallback = [
        {"tool": name, **v} for name, v in report["fallback"].items() if isinstance(v, dict) and "calls" in v
    ]
    resource = report["stats_resource"]
    parts = [
        f"cores: {m['cores']}   python {m['python']}   mcp {m['mcp']}   load average at start "
        f"{m['load_average_at_start']}, at end {m['load_average_at_end']}\n"
        f"parameters: {json.dumps(report['params'])}\n"
        f"pool: {json.dumps(report['pool'])}",
        table(PHASE_COLUMNS, phases),
        table(TOOL_COLUMNS, tools),
        f"rows: {rows['rows']} in `calls`, {rows['acknowledged']} acknowledged; lost {rows['lost']}, "
        f"duplicated {rows['duplicated']} (acknowledged twice {rows['duplicated_acknowledgements']}, stored "
        f"twice {rows['duplicated_rows']}); never acknowledged {rows['unacknowledged_rows']} "
        f"{json.dumps(rows['unacknowledged_rows_by_status'])} against {rows['unacknowledged_bound']} "
        "transport errors (a call the client gave up on, or whose answer died with the server, is "
        "still recorded: the server commits before it answers)",
        table(FALLBACK_COLUMNS, fallback)
        + "\nfirst-attempt failures by status: "
        + json.dumps(report["fallback"]["first_attempt_failures_by_status"])
        + f"\nfault server, during the load: {json.dumps(report['fault_server'])}",
        table(ATTEMPT_COLUMNS, [{"arm": arm, **v} for arm, v in report["attempt_latency"].items()]),
        f"server RSS: {rss['start_mb']} MB after warm-up, {rss['end_mb']} MB at {rss['end_is']}; growth "
        f"{rss['growth_mb']} MB, peak {rss['peak_mb']} MB",
        render_kill(kill, report),
        f"server logs ({logs['lines_scanned']} lines): {logs['unhandled']} unhandled (tracebacks "
        f"{logs['tracebacks']}, ERROR … unexpected "
        f"{logs['error_unexpected_lines']}); lines by level {json.dumps(logs['lines_by_level'])}"
        + "".join(f"\n  {s}" for s in logs["samples"]),
        "router://stats/search: "
        + (
            f"served; {resource['check']['served_calls']} calls served against {resource['check']['rows']} "
            f"rows; arms match the attempts rows: {resource['check']['matches']}"
            if resource.get("served")
            else f"NOT served: {resource.get('error')}"
        ),
        table(BAR_COLUMNS, report["bars"]) + f"\n\nwall time {report['wall_s']:.1f} s",
    ]
    return "\n\n".join(parts)


def render_kill(kill: dict[str, Any], report: dict[str, Any]) -> str:
    counters = report["counters"]
    if kill["killed"]:
        before = kill["before_restart"]
        head = (
            f"kill -9 at {kill['at_acknowledged']} acknowledged calls; the files as the crash left them: "
            f"integrity_check {before['integrity_check']}, arm_state = attempts rows "
            f"{before['arm_state_matches_attempts']}, tool_totals = calls rows "
            f"{before['tool_totals_match_calls']}"
            f"\nrestarted on the same database in {kill.get('restart_s')} s (to its port open); after it:"
        )
    else:
        exit_code = report["server_exit"]
        how = "clean stop on SIGTERM" if exit_code in (0, -15) else "NOT a clean stop"
        head = f"no kill; server exit code {exit_code} ({how})"
    money = report["budgets"]
    return (
        f"{head}\nbudgets: {money['sessions']} sessions, spend and steps = llm_steps rows: "
        f"{money['sessions_match_steps']}; reservations left: {money['reservations_left']}"
        f"\nintegrity_check: {report['integrity_check']}; arm_state = attempts rows: "
        f"{counters['arm_state_matches_attempts']}; tool_totals = calls rows: "
        f"{counters['tool_totals_match_calls']}\narm_state: {json.dumps(counters['arm_state'])}"
        f"\ntool_totals: {json.dumps(counters['tool_totals'])}"
    )
