"""What one `bench collections` run does: how many abstracts, how often it calls and polls, its limits.

Kept apart so a figure is changed in one place and the report describes the run it comes from.
`--quick` (a CI smoke run) indexes a slice of the corpus and starts each warm server once; every
part and every check stays.
"""

from __future__ import annotations

import argparse
from dataclasses import asdict, dataclass, replace
from typing import Any

QUICK_DOCUMENTS = 150


@dataclass(frozen=True)
class Params:
    quick: bool
    documents: int | None  # SciFact abstracts written out as files (None: all 5,183)
    workdir: str | None  # where the folder, indexes, databases and logs go (None: a temp dir)
    call_every_s: float  # first start: one `retrieve` launched this often, whatever the last one does
    poll_every_s: float  # first start: `router://collections` read this often
    calls_after_dense: int  # first start: calls launched once dense is seen ready, then it stops
    first_start_limit_s: float  # first start: give up waiting for dense after this
    warm_starts: int  # second start: starts of each server (dense only, hybrid only, all three)
    retry_every_s: float  # second start: a failed first call is sent again this soon
    fast_poll_s: float  # second start and the live edit: the resource is read this often
    ready_limit_s: float  # a warm server's first call, dense view, or live refresh: give up after
    rescan_every_s: float  # the servers' `[indexing] rescan_every_s`
    tool_timeout_s: float  # `[tools.retrieve] timeout_s`: every call is answered within it

    def describe(self) -> dict[str, Any]:
        return asdict(self)


FULL = Params(
    quick=False,
    documents=None,
    workdir=None,
    call_every_s=1.0,
    poll_every_s=0.5,
    calls_after_dense=3,
    first_start_limit_s=3_600.0,
    warm_starts=3,
    retry_every_s=0.1,
    fast_poll_s=0.1,
    ready_limit_s=120.0,
    rescan_every_s=2.0,
    tool_timeout_s=30.0,
)
QUICK = replace(FULL, quick=True, documents=QUICK_DOCUMENTS, warm_starts=1, first_start_limit_s=600.0)


def params_of(args: argparse.Namespace) -> Params:
    """The run the command line asks for: `--quick`, `--documents`, `--workdir`."""
    params = QUICK if getattr(args, "quick", False) else FULL
    documents = getattr(args, "documents", None)
    if documents is not None:
        if documents < 1:
            raise argparse.ArgumentTypeError(f"--documents must be at least 1 (got {documents})")
        params = replace(params, documents=documents)
    if getattr(args, "workdir", None):
        params = replace(params, workdir=args.workdir)
    return params
