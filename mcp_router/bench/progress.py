"""Progress lines on stderr, stamped with the seconds since the run began.

A benchmark's table owns stdout (and a child's stdout carries its JSON), so "what runs now" goes to
stderr; one clock per benchmark, restarted when a run begins, stamps every line of it.
"""

from __future__ import annotations

import sys
import time


class Progress:
    def __init__(self, name: str) -> None:
        self.name = name
        self.started = time.monotonic()

    def restart(self) -> float:
        """A run begins: restart the clock; returns it, in `time.monotonic()` seconds."""
        self.started = time.monotonic()
        return self.started

    def __call__(self, message: str) -> None:
        print(f"[{self.name} {time.monotonic() - self.started:7.1f}s] {message}", file=sys.stderr, flush=True)
