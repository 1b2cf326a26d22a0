"""Progress lines on stderr, stamped with the seconds since the run began.

The table owns stdout (and a child's stdout carries its JSON), so "what runs now" goes to stderr; one
clock, restarted when a run begins, stamps every line of it.
"""

from __future__ import annotations

import sys
import time

_CLOCK = {"started": time.monotonic()}


def restart() -> float:
    """Start the clock again (a run begins); returns the new start, in `time.monotonic()` seconds."""
    _CLOCK["started"] = time.monotonic()
    return _CLOCK["started"]


def progress(message: str) -> None:
    """One line on stderr, stamped with the seconds since the run began: the table owns stdout."""
    print(f"[overhead {time.monotonic() - _CLOCK['started']:6.1f}s] {message}", file=sys.stderr, flush=True)
