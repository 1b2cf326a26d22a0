"""Benchmarks: routers against simulated deployments of real arms (`mcp-router bench NAME`).

`des.simulate` is the shared discrete-event simulator, `metrics` / `report` the shared summaries,
`runner.run_benchmark` the (policy × seed) driver; each benchmark module builds a `BenchSpec`.
"""

from __future__ import annotations

import argparse

BENCHMARKS = ("retrieval", "qa-pool", "judge", "overhead", "state", "load", "collections", "ope", "first-run")


def run(name: str, args: argparse.Namespace) -> int:
    """Run benchmark `name` with the CLI's options; returns the process exit code."""
    if name == "retrieval":
        from mcp_router.bench import retrieval_command

        return retrieval_command.main(args)
    if name == "qa-pool":
        from mcp_router.bench import qa_pool_bench

        return qa_pool_bench.main(args)
    if name == "judge":
        from mcp_router.bench import judge_bench

        return judge_bench.main(args)
    if name == "overhead":
        from mcp_router.bench import overhead

        return overhead.main(args)
    if name == "state":
        from mcp_router.bench import state

        return state.main(args)
    if name == "load":
        from mcp_router.bench import load

        return load.main(args)
    if name == "collections":
        from mcp_router.bench import collections

        return collections.main(args)
    if name == "ope":
        from mcp_router.bench import ope_bench

        return ope_bench.main(args)
    if name == "first-run":
        from mcp_router.bench import first_run

        return first_run.main(args)
    raise ValueError(f"unknown benchmark {name!r}; choose from {', '.join(BENCHMARKS)}")
