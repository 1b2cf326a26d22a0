"""Progress lines on stderr, stamped with the seconds since the run began: the table owns stdout."""

from __future__ import annotations

import sys
import time

_STARTED = {"at": time.monotonic()}


def restart() -> float:
    """A run begins: restart the clock; returns it, in `time.monotonic()` seconds."""
    _STARTED["at"] = time.monotonic()
    return _STARTED["at"]


def progress(message: str) -> None:
    print(f"[state {time.monotonic() - _STARTED['at']:7.1f}s] {message}", file=sys.stderr, flush=True)
