"""What the database says after the load: nothing acknowledged is missing, nothing is doubled, the
counters agree with the rows, and how often a fallback rescued a call whose first attempt failed.

Read with `sqlite3` straight from the file once the server has stopped, so no check goes through the
code it checks. The counters are the ones a restart trusts: `arm_state` (per tool and provider) must
equal what the `attempts` rows add up to, and `tool_totals.calls` the `calls` rows per tool; after a
`kill -9`, a transaction cut short must have left neither its rows nor its counter increments.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mcp_router.bench.overhead.stats import Dist, rounded

SAMPLES = 5


@dataclass(frozen=True)
class Ack:
    call_id: str
    tool: str
    status: str  # ok | error (a tool error naming its recorded call)


def read_acks(paths: Iterable[Path]) -> list[Ack]:
    """Every acknowledgement the load generator wrote, in order, from every file."""
    acks = []
    for path in paths:
        if not path.exists():
            continue
        for line in path.read_text().splitlines():
            call_id, tool, status = line.split("\t")
            acks.append(Ack(call_id, tool, status))
    return acks


def connect(db: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(db, timeout=30)
    conn.row_factory = sqlite3.Row
    return conn


def integrity(db: Path) -> str:
    """`PRAGMA integrity_check`: "ok", or the problems it lists, joined."""
    with connect(db) as conn:
        return "; ".join(row[0] for row in conn.execute("PRAGMA integrity_check"))


def rows(db: Path, acks: list[Ack], transport_errors: int) -> dict[str, Any]:
    """Lost, duplicated and unacknowledged rows against the acknowledgements.

    An unacknowledged row is legitimate when its call was in flight while the client gave up on it
    (a read timeout, a connection reset, the server killed after the commit but before the answer
    left): the server records a call before it answers. So they are bounded by the transport errors
    and reported apart from duplicates, which have no such excuse."""
    with connect(db) as conn:
        stored = Counter(r[0] for r in conn.execute("SELECT call_id FROM calls"))
        status = {r[0]: r[1] for r in conn.execute("SELECT call_id, status FROM calls")}
    acked = Counter(a.call_id for a in acks)
    lost = [a.call_id for a in acks if a.call_id not in stored]
    doubled_acks = sorted(c for c, n in acked.items() if n > 1)
    doubled_rows = sorted(c for c, n in stored.items() if n > 1)
    unacked = sorted(c for c in stored if c not in acked)
    wrong_status = [
        a.call_id
        for a in acks
        if a.call_id in status and status[a.call_id] != ("ok" if a.status == "ok" else "failed")
    ]
    return {
        "acknowledged": len(acks),
        "rows": sum(stored.values()),
        "lost": len(lost),
        "lost_samples": lost[:SAMPLES],
        "duplicated_acknowledgements": len(doubled_acks),
        "duplicated_rows": len(doubled_rows),
        "duplicated": len(doubled_acks) + len(doubled_rows),
        "unacknowledged_rows": len(unacked),
        "unacknowledged_rows_by_status": dict(Counter(status[c] for c in unacked)),
        "unacknowledged_bound": transport_errors,
        "unacknowledged_explained": len(unacked) <= transport_errors,
        "status_mismatches": len(wrong_status),
    }


FIRST_ATTEMPTS = """
SELECT c.tool AS tool, c.status AS status, a.status AS first, c.attempts AS attempts
FROM calls c JOIN attempts a ON a.call_id = c.call_id AND a.n = 1
"""


def fallback(db: Path) -> dict[str, Any]:
    """Per tool and overall: the calls whose first attempt failed, and the share of those that still
    succeeded on a later attempt."""
    with connect(db) as conn:
        firsts = conn.execute(FIRST_ATTEMPTS).fetchall()
        no_attempt = conn.execute("SELECT COUNT(*) FROM calls WHERE attempts = 0").fetchone()[0]
        first_faults = Counter(
            r[0] for r in conn.execute("SELECT status FROM attempts WHERE n = 1 AND status != 'ok'")
        )
    out: dict[str, Any] = {}
    for tool in [*sorted({r["tool"] for r in firsts}), "all"]:
        mine = [r for r in firsts if tool in ("all", r["tool"])]
        failed = [r for r in mine if r["first"] != "ok"]
        rescued = sum(r["status"] == "ok" for r in failed)
        out[tool] = {
            "calls": len(mine),
            "first_attempt_failed": len(failed),
            "first_attempt_failed_share": round(len(failed) / len(mine), 4) if mine else None,
            "rescued": rescued,
            "fallback_success_rate": round(rescued / len(failed), 4) if failed else None,
        }
    out["calls_without_attempts"] = no_attempt
    out["first_attempt_failures_by_status"] = dict(first_faults.most_common())
    return out


ARM_COUNTS = """
SELECT tool, provider, COUNT(*) AS calls, SUM(status = 'ok') AS ok, SUM(status != 'ok') AS failures
FROM attempts GROUP BY tool, provider
"""


def counters(db: Path) -> dict[str, Any]:
    """`arm_state` against the `attempts` rows, `tool_totals` against the `calls` rows."""
    with connect(db) as conn:
        implied = {
            (r["tool"], r["provider"]): (r["calls"], r["ok"], r["failures"]) for r in conn.execute(ARM_COUNTS)
        }
        kept = {
            (r["tool"], r["provider"]): (r["calls"], r["ok"], r["failures"])
            for r in conn.execute("SELECT tool, provider, calls, ok, failures FROM arm_state")
        }
        calls = {r[0]: r[1] for r in conn.execute("SELECT tool, COUNT(*) FROM calls GROUP BY tool")}
        totals = {r[0]: r[1] for r in conn.execute("SELECT tool, calls FROM tool_totals")}
    arm_diff = {
        "/".join(key): {"arm_state": kept.get(key), "attempts": implied.get(key)}
        for key in sorted(set(implied) | set(kept))
        if kept.get(key) != implied.get(key)
    }
    tool_diff = {
        tool: {"tool_totals": totals.get(tool), "calls": calls.get(tool)}
        for tool in sorted(set(calls) | set(totals))
        if totals.get(tool) != calls.get(tool)
    }
    return {
        "arm_state": {
            f"{t}/{p}": dict(zip(("calls", "ok", "failures"), v, strict=True))
            for (t, p), v in sorted(kept.items())
        },
        "tool_totals": totals,
        "arm_state_matches_attempts": not arm_diff,
        "arm_state_mismatches": arm_diff,
        "tool_totals_match_calls": not tool_diff,
        "tool_totals_mismatches": tool_diff,
    }


def stats_match(stats: dict[str, Any], db: Path, tool: str) -> dict[str, Any]:
    """Whether `router://stats/<tool>` as a server served it agrees with the rows: its call count with
    the `calls` rows, each arm's calls/ok/failures with the `attempts` rows."""
    with connect(db) as conn:
        calls = conn.execute("SELECT COUNT(*) FROM calls WHERE tool = ?", (tool,)).fetchone()[0]
        implied = {
            r["provider"]: {"calls": r["calls"], "ok": r["ok"], "failures": r["failures"]}
            for r in conn.execute(ARM_COUNTS)
            if r["tool"] == tool
        }
    served = {
        name: {k: arm.get(k) for k in ("calls", "ok", "failures")}
        for name, arm in stats.get("arms", {}).items()
        if arm.get("calls")
    }
    return {
        "served_calls": stats.get("calls"),
        "rows": calls,
        "matches": stats.get("calls") == calls and served == implied,
        "arms_served": served,
        "arms_from_rows": implied,
    }


def attempt_latency(db: Path) -> dict[str, Any]:
    """Per tool and provider, the server-side latency of its attempts by outcome (ok or not): where a
    timeout on a healthy arm comes from (a saturated machine shows as a long tail on every arm)."""
    with connect(db) as conn:
        found = conn.execute("SELECT tool, provider, status, latency_s FROM attempts").fetchall()
    groups: dict[str, list[float]] = {}
    timeouts: Counter[str] = Counter()
    for r in found:
        key = f"{r['tool']}/{r['provider']}"
        groups.setdefault(key, []).append(r["latency_s"])
        timeouts[key] += r["status"] == "timeout"
    return {
        key: {**Dist.of(values).ms(), "max_ms": rounded(max(values) * 1e3), "timeouts": timeouts[key]}
        for key, values in sorted(groups.items())
    }


SESSION_STEPS = """
SELECT s.session_id AS session_id, s.spent_usd AS spent, s.steps AS steps,
       COALESCE(SUM(t.cost_usd), 0) AS step_cost, COUNT(t.step_id) AS step_rows
FROM sessions s LEFT JOIN llm_steps t ON t.session_id = s.session_id
GROUP BY s.session_id, s.spent_usd, s.steps
"""


def budgets(db: Path) -> dict[str, Any]:
    """Session spend against its steps, and the budget reservations still held. A budgeted call
    reserves its worst case in one transaction and releases it in the one that records the call, so
    after a clean run none is left; a kill leaves those of the calls in flight, which lapse after
    their TTL (the planner's `reservation_ttl_s`)."""
    with connect(db) as conn:
        found = conn.execute(SESSION_STEPS).fetchall()
        left = conn.execute("SELECT COUNT(*) FROM reservations").fetchone()[0]
    off = [
        r["session_id"]
        for r in found
        if r["steps"] != r["step_rows"] or abs(r["spent"] - r["step_cost"]) > 1e-9 * max(1.0, r["spent"])
    ]
    return {
        "sessions": len(found),
        "sessions_match_steps": not off,
        "session_mismatch_samples": off[:SAMPLES],
        "reservations_left": left,
    }
