"""What a `bench state` run measures: database sizes, backends, repetitions, the kill -9 backlog.

`--quick` (a CI smoke run) shrinks the sizes and the repetitions but keeps every case and both parts.
"""

from __future__ import annotations

import argparse
from dataclasses import asdict, dataclass, replace
from typing import Any

from mcp_router.bench.state.targets import BACKENDS
from mcp_router.serving.learning import SNAPSHOT_EVERY_EVENTS


@dataclass(frozen=True)
class Params:
    quick: bool
    sizes: tuple[int, ...]  # recorded calls in each generated database
    backends: tuple[str, ...]
    restart_reps: int  # clean restarts with the snapshot (each kill cycle adds one more sample)
    kill_reps: int  # kill -9 cycles, each timing one restart that folds the backlog
    kill_backlog: int  # events written after the last snapshot before the kill -9
    trials: int  # propagation trials
    generate_budget_s: float  # skip a size whose generation is predicted to take longer
    retention: tuple[int, int, int]  # calls written, calls kept, written between prunes

    def describe(self) -> dict[str, Any]:
        return asdict(self)


FULL = Params(
    quick=False,
    sizes=(10_000, 100_000, 1_000_000),
    backends=BACKENDS,
    restart_reps=2,
    kill_reps=2,
    # just under the snapshot policy's event bound: close to the most a kill -9 can leave to fold
    kill_backlog=SNAPSHOT_EVERY_EVENTS - 1_000,
    trials=20,
    generate_budget_s=600.0,
    retention=(200_000, 50_000, 10_000),
)
QUICK = replace(
    FULL,
    quick=True,
    sizes=(1_000, 10_000),
    restart_reps=1,
    kill_reps=1,
    kill_backlog=2_000,
    trials=8,
    retention=(6_000, 2_000, 1_000),
)


def params_of(args: argparse.Namespace) -> Params:
    """The run the command line asks for: `--quick`, `--sizes`, `--backend`, `--generate-budget`."""
    params = QUICK if getattr(args, "quick", False) else FULL
    if getattr(args, "sizes", None):
        params = replace(params, sizes=parse_sizes(args.sizes))
    backend = getattr(args, "backend", None) or "both"
    if backend != "both":
        params = replace(params, backends=(backend,))
    if getattr(args, "generate_budget", None) is not None:
        params = replace(params, generate_budget_s=float(args.generate_budget))
    return params


def parse_sizes(text: str) -> tuple[int, ...]:
    """`10000,100000,1000000` (or `10k,100k,1m`) -> sizes, each a positive count."""
    sizes = []
    for part in text.split(","):
        word = part.strip().lower()
        scale = {"k": 1_000, "m": 1_000_000}.get(word[-1:], 1)
        number = word[:-1] if scale > 1 else word
        if not number.isdigit() or int(number) * scale <= 0:
            raise argparse.ArgumentTypeError(f"not a database size: {part!r} (e.g. 10000,100k,1m)")
        sizes.append(int(number) * scale)
    return tuple(sizes)
