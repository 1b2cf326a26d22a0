"""The servers' and the index command's logs: unhandled exceptions (none may occur) and the warnings,
which say what the server itself found wrong (an index that failed to load, a refresh that failed)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from mcp_router.bench.load.logs import LogScan, scan

WARNING = re.compile(r"\b(WARNING|ERROR|CRITICAL)\b")
SAMPLES = 10


def scan_logs(folder: Path) -> dict[str, Any]:
    """Every `*.log` of `folder`: the totals of `bench load`'s scan, per log its unhandled count, and
    the first warning lines."""
    total = LogScan()
    per_log: dict[str, int] = {}
    warnings: list[str] = []
    for path in sorted(folder.glob("*.log")):
        found = scan(path)
        total = total.add(found)
        per_log[path.stem] = found.unhandled
        lines = path.read_text(errors="replace").splitlines()
        warnings += [f"{path.stem}: {x[:300]}" for x in lines if WARNING.search(x)]
    return {**total.to_json(), "unhandled_by_log": per_log, "warning_samples": warnings[:SAMPLES]}
