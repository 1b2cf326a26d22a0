"""Plain-text tables for the terminal (demo and `mcp-router stats`); resources stay JSON."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[str(h) for h in headers]] + [["-" if v is None else str(v) for v in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _fmt(value: float | None, digits: int = 3) -> str | None:
    return None if value is None else f"{value:.{digits}f}"


def stats_table(stats: dict[str, Any]) -> str:
    rows = []
    for tool, tool_data in stats["tools"].items():
        for arm, a in tool_data["arms"].items():
            state = "serving" if a["serving"] else f"off: {a['disabled_reason']}"
            rows.append(
                [
                    tool,
                    arm,
                    a["calls"],
                    a["ok"],
                    a["failures"],
                    _fmt(a["share"], 2),
                    _fmt(a["latency_mean_s"]),
                    _fmt(a["latency_p95_s"]),
                    _fmt(a["quality_mean"], 2),
                    a["quality_n"],
                    state,
                ]
            )
    headers = [
        "tool",
        "provider",
        "calls",
        "ok",
        "fail",
        "share",
        "lat_mean_s",
        "lat_p95_s",
        "quality",
        "rated",
        "state",
    ]
    return "\n\n".join([table(headers, rows), *_collections_table(stats)])


def _collections_table(stats: dict[str, Any]) -> list[str]:
    """retrieve's totals per collection and provider (only a collection's providers compete for it)."""
    collections = stats["tools"].get("retrieve", {}).get("collections") or {}
    rows = [
        [
            name,
            entry["kind"] or "gone",
            arm,
            a["calls"],
            a["ok"],
            _fmt(a["latency_mean_s"]),
            _fmt(a["quality_mean"], 2),
            a["quality_n"],
        ]
        for name, entry in collections.items()
        for arm, a in entry["arms"].items()
    ]
    if not rows:
        return []
    headers = ["collection", "kind", "provider", "calls", "ok", "lat_mean_s", "quality", "rated"]
    return [table(headers, rows)]
