"""What one `bench load` run does: how many calls, at what concurrency, the warm-up, the kill, the limits.

Kept apart so a count is changed in one place and the report can describe the run it comes from.
`--quick` (a CI smoke run) only shrinks the call count; every check and every figure stays.
"""

from __future__ import annotations

import argparse
from dataclasses import asdict, dataclass, replace
from typing import Any

FULL_CALLS = 20_000
QUICK_CALLS = 2_000


@dataclass(frozen=True)
class Params:
    quick: bool
    calls: int  # tool calls sent by the measured load (the warm-up comes on top)
    concurrency: int  # calls in flight at once
    kill: bool  # kill -9 the server once half the calls are acknowledged, then restart and check
    warmup_calls: int  # sent before the start RSS is read: imports, pools and caches settle first
    sessions: int  # MCP client sessions the load generator spreads its workers over
    seed: int
    call_timeout_s: float  # the client gives up on one call after this (then it is a transport error)
    run_timeout_s: float  # the load generator is stopped after this, whatever it is doing
    rss_every_s: float  # how often the server's RSS is sampled during the load

    def describe(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def kill_at(self) -> int | None:
        """The acknowledged-call count at which the server is killed (None: no kill)."""
        return self.calls // 2 if self.kill else None


FULL = Params(
    quick=False,
    calls=FULL_CALLS,
    concurrency=64,
    kill=False,
    warmup_calls=500,
    sessions=8,
    seed=0,
    call_timeout_s=30.0,
    run_timeout_s=3_600.0,
    rss_every_s=2.0,
)
QUICK = replace(FULL, quick=True, calls=QUICK_CALLS, warmup_calls=200)


def params_of(args: argparse.Namespace) -> Params:
    """The run the command line asks for: `--quick`, `--calls`, `--concurrency`, `--kill`."""
    params = QUICK if getattr(args, "quick", False) else FULL
    if getattr(args, "calls", None) is not None:
        params = replace(params, calls=positive("--calls", args.calls))
    if getattr(args, "concurrency", None) is not None:
        params = replace(params, concurrency=positive("--concurrency", args.concurrency))
    if getattr(args, "kill", False):
        params = replace(params, kill=True)
    return replace(params, sessions=min(params.sessions, params.concurrency))


def positive(option: str, value: int) -> int:
    if value < 1:
        raise argparse.ArgumentTypeError(f"{option} must be at least 1 (got {value})")
    return value
