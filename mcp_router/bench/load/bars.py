"""The bars of the load run, read off a finished report and reported pass, FAIL or n/a.

They are read, never aimed at: nothing in the benchmark tunes the server to them. Each bar is a
value against a limit, with a note where the value needs one to be read right.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

RSS_GROWTH_LIMIT_MB = 50.0


@dataclass(frozen=True)
class Bar:
    name: str
    value: Any  # None: not measured in this run
    limit: str  # as printed: "= 0", "<= 50 MB", "= ok"
    passed: bool | None
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "pass": self.passed}


def zero(name: str, value: int | None, note: str = "") -> Bar:
    return Bar(name, value, "= 0", None if value is None else value == 0, note)


def holds(name: str, value: bool | None, note: str = "") -> Bar:
    return Bar(name, value, "= true", value, note)


def all_bars(report: dict[str, Any]) -> list[Bar]:
    rows, rss, kill = report["rows"], report["rss"], report["kill"]
    growth = rss["growth_mb"]
    killed = kill["killed"]
    resource = report["stats_resource"]
    after = " after kill -9 and restart" if killed else ""
    in_flight_llm = report["load"]["by_tool"]["llm_complete"]["transport_errors"] if killed else 0
    bars = [
        zero(f"acknowledged calls missing from `calls`{after}", rows["lost"]),
        zero("call_ids acknowledged twice or stored twice", rows["duplicated"]),
        Bar(
            "rows never acknowledged",
            rows["unacknowledged_rows"],
            f"<= {rows['unacknowledged_bound']} (transport errors)",
            rows["unacknowledged_explained"],
            "a call the client gave up on (or whose answer died with the server) may be recorded",
        ),
        zero("unhandled exceptions in the server logs", report["server_log"]["unhandled"]),
        Bar(
            "server RSS growth",
            growth,
            f"<= {RSS_GROWTH_LIMIT_MB:g} MB",
            None if growth is None else growth <= RSS_GROWTH_LIMIT_MB,
            f"after warm-up to {rss['end_is']}",
        ),
        Bar(
            f"PRAGMA integrity_check{after}",
            report["integrity_check"],
            "= ok",
            report["integrity_check"] == "ok",
        ),
        holds("arm_state counters = attempts rows", report["counters"]["arm_state_matches_attempts"]),
        holds("tool_totals.calls = calls rows", report["counters"]["tool_totals_match_calls"]),
        holds("session spend and steps = llm_steps rows", report["budgets"]["sessions_match_steps"]),
        Bar(
            "budget reservations left",
            report["budgets"]["reservations_left"],
            f"<= {in_flight_llm}" if killed else "= 0",
            report["budgets"]["reservations_left"] <= in_flight_llm,
            "those of llm_complete calls in flight at the kill; they lapse after their TTL" if killed else "",
        ),
        holds(
            f"router://stats/search served{' by the restarted server' if killed else ''} and = rows",
            resource.get("served") and resource.get("check", {}).get("matches"),
            resource.get("error", ""),
        ),
    ]
    if killed:
        before = kill["before_restart"]
        bars.insert(
            5,
            Bar(
                "PRAGMA integrity_check of the files the kill left",
                before["integrity_check"],
                "= ok",
                before["integrity_check"] == "ok",
                "a copy, checked before the restart opens the database",
            ),
        )
    return bars
