"""The issue's bar, read from a finished run: with 1M recorded calls, the first served call at most
2 s slower than on an empty database, for the restart with a snapshot and the restart after kill -9.

Only read, never aimed at. A backend that was not measured at 1M calls gets its bar as n/a, with the
largest size it was measured at.
"""

from __future__ import annotations

from typing import Any

from mcp_router.bench.overhead.bars import Bar, at_most

BAR_CALLS = 1_000_000
BAR_S = 2.0
CASES = (
    ("restart_snapshot", "restart after clean shutdown"),
    ("restart_after_kill", "restart after kill -9"),
)


def all_bars(backends: dict[str, Any]) -> list[Bar]:
    bars = []
    for backend, result in backends.items():
        if "sizes" not in result:
            continue
        row = next((r for r in result["sizes"] if r["calls"] >= BAR_CALLS), None)
        for key, label in CASES:
            name = f"{backend}: {label}, 1M calls, wall time over empty"
            if row is None:
                largest = max((r["calls"] for r in result["sizes"]), default=0)
                bars.append(at_most(name, None, BAR_S, "s", f"not measured at 1M (largest: {largest:,})"))
                continue
            case = row[key]
            folded = max(s["events_to_fold"] for s in case["starts"])
            note = (
                f"median of {len(case['starts'])} paired starts, up to {folded:,} events folded; "
                f"server CPU {case['median_over_empty_cpu_s']:+} s"
            )
            bars.append(at_most(name, case["median_over_empty_s"], BAR_S, "s", note))
    return bars
