"""The bar and the checks, read from a finished run.

The bar (timing, only read, never aimed at): on a warm index, `dense` and `hybrid` serve a call
within 2 s of the server's start, read from the spawn and from `initialize`, over every start.
The checks (behaviour, which decides the exit code): every call of the first start answered, both
views published, each warm server served by its own arm, and an edit re-embedding exactly one file,
through `mcp-router index` and under a running server.
"""

from __future__ import annotations

from typing import Any

from mcp_router.bench.overhead.bars import Bar, at_most

BAR_S = 2.0


def all_bars(second: list[dict[str, Any]]) -> list[Bar]:
    bars = []
    for row in second:
        if row["server"] not in ("dense", "hybrid"):
            continue
        n = len(row["starts"])
        for key, label in (("first_served_s", "from spawn"), ("after_initialize_s", "after initialize")):
            note = f"worst of {n} start(s); median {row[f'median_{key}']} s"
            if row[f"max_{key}"] is None:
                note = "a start was never served"
            name = f"warm index, {row['server']} only: first call served {label}"
            bars.append(at_most(name, row[f"max_{key}"], BAR_S, "s", note))
    return bars


def all_checks(report: dict[str, Any]) -> dict[str, bool]:
    first, second, edit = report["first_start"], report["second_start"], report["edit"]
    served = {row["server"]: row["served_by"] for row in second}
    everything = next(row for row in second if row["server"] == "all")
    published = first["lexical_ready_s"] is not None and first["dense_ready_s"] is not None
    return {
        "first start: every call answered": first["all_answered"],
        "first start: BM25 and dense published": published,
        "second start: dense served by dense": served.get("dense") == ["dense"],
        "second start: hybrid served by hybrid": served.get("hybrid") == ["hybrid"],
        "second start: all three arms, served and dense published": (
            "nothing" not in everything["served_by"] and everything["max_dense_ready_s"] is not None
        ),
        "index after one edit: embedded 1 file": edit["index"]["returncode"] == 0
        and edit["index"]["files_embedded"] == 1,
        "running server after one edit: 1 changed, 1 embedded": edit["live"]["one_file_embedded"],
        "no unhandled exception in the logs": report["logs"]["unhandled"] == 0,
    }
