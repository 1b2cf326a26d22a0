"""Unhandled exceptions in a server's log: what a fault must never cause.

The dispatcher turns an adapter's unexpected exception into a failed attempt but logs it with
`log.exception("adapter %s raised an unexpected error")`, an ERROR line followed by a traceback;
anything that escapes a tool or the transport (uvicorn's "Exception in ASGI application", an
exception group from a task group) also leaves a `Traceback` in the log. Provider faults themselves
are expected: they are logged as attempt outcomes at INFO/DEBUG or as WARNINGs, never as either.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TRACEBACK = re.compile(r"^Traceback \(most recent call last\)|^\s*\+? ?Exception Group Traceback")
UNEXPECTED = re.compile(r"\bERROR\b.*\bunexpected\b", re.IGNORECASE)
LEVEL = re.compile(r"\b(ERROR|WARNING|CRITICAL)\b")
SAMPLES = 5


@dataclass
class LogScan:
    tracebacks: int = 0
    unexpected: int = 0
    levels: Counter[str] = field(default_factory=Counter)
    samples: list[str] = field(default_factory=list)
    lines: int = 0  # read in all: a scan of an empty log finds nothing and proves nothing

    @property
    def unhandled(self) -> int:
        """Lines that are a traceback's head or an "ERROR ... unexpected": the count that must be 0."""
        return self.tracebacks + self.unexpected

    def add(self, other: LogScan) -> LogScan:
        return LogScan(
            self.tracebacks + other.tracebacks,
            self.unexpected + other.unexpected,
            self.levels + other.levels,
            (self.samples + other.samples)[:SAMPLES],
            self.lines + other.lines,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "unhandled": self.unhandled,
            "lines_scanned": self.lines,
            "tracebacks": self.tracebacks,
            "error_unexpected_lines": self.unexpected,
            "lines_by_level": dict(self.levels),
            "samples": self.samples,
        }


def scan(path: Path) -> LogScan:
    """Count the unhandled-exception lines of one log (and ERROR/WARNING lines, for context)."""
    result = LogScan()
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return result
    for line in text.splitlines():
        result.lines += 1
        if level := LEVEL.search(line):
            result.levels[level.group(1)] += 1
        hit = False
        if TRACEBACK.search(line):
            result.tracebacks += 1
            hit = True
        elif UNEXPECTED.search(line):
            result.unexpected += 1
            hit = True
        if hit and len(result.samples) < SAMPLES:
            result.samples.append(line[:300])
    return result
