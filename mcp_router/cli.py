"""The `mcp-router` console entry point: serve, demo, stats, doctor, db, bench, and the MTRouter commands.

Logging goes to stderr and is configured before anything else is imported, because on stdio the
server's stdout is the protocol channel: one stray line there breaks every client.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable

from mcp_router import __version__
from mcp_router.offline_cli import add_commands, add_training_arguments, run_offline, training_config
from mcp_router.serving.network.options import add_arguments as add_http_arguments


def _quiet_environment() -> None:
    """Offline model loading and no progress bars: nothing may be fetched from a hub or drawn on stdout."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")


def _count(text: str) -> int:
    """A whole number ≥ 0, or an argparse error that says so."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number of queries (0 for all), not {text!r}")
    return value


def _positive(kind: type[float] | type[int]) -> Callable[[str], float | int]:
    """A number > 0 of `kind`, or an argparse error that says so."""

    def parse(text: str) -> float | int:
        try:
            value = kind(text)
        except ValueError:
            value = 0
        if not value > 0:
            raise argparse.ArgumentTypeError(f"expected a positive {kind.__name__}, not {text!r}")
        return value

    return parse


def _database_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="TOML config file (default: $MCP_ROUTER_CONFIG, else built-in)")
    parser.add_argument(
        "--db",
        help="SQLite database file or postgresql:// URL (default: $MCP_ROUTER_DB, config, user data dir)",
    )


def _config_arguments(parser: argparse.ArgumentParser) -> None:
    _database_arguments(parser)
    parser.add_argument(
        "--docs",
        action="append",
        default=[],
        metavar="FOLDER",
        help="index this folder as a collection (repeatable; the first is the default)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mcp-router", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"mcp-router {__version__}")
    parser.add_argument(
        "--log-level",
        default=os.environ.get("MCP_ROUTER_LOG_LEVEL", "INFO"),
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
    )
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the MCP server (stdio by default)")
    _config_arguments(serve)
    serve.add_argument("--transport", choices=["stdio", "http"], default="stdio")
    serve.add_argument("--host", default="127.0.0.1", help="HTTP bind address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="HTTP port (default 8000)")
    add_http_arguments(serve)

    demo = commands.add_parser("demo", help="start the server over stdio and route a few calls through it")
    _config_arguments(demo)

    stats = commands.add_parser("stats", help="print the per-provider statistics of a database")
    _config_arguments(stats)

    doctor = commands.add_parser("doctor", help="check every configured provider: enabled, key, a probe call")
    _config_arguments(doctor)
    doctor.add_argument("--no-probe", action="store_true", help="only report configuration, call nothing")
    doctor.add_argument("--timeout", type=float, default=20.0, help="seconds per probe (default 20)")

    bench = commands.add_parser("bench", help="run a routing benchmark in simulated time (no server)")
    bench.add_argument(
        "name",
        choices=[
            "retrieval",
            "qa-pool",
            "judge",
            "overhead",
            "state",
            "load",
            "collections",
            "ope",
            "first-run",
        ],
        help="which benchmark",
    )
    bench.add_argument("--json", metavar="FILE", help="write the report as JSON")
    bench.add_argument("--quick", action="store_true", help="overhead, state: a small smoke run (CI)")
    bench.add_argument("--plot", metavar="FILE.png", help="plot quality vs latency and the lqm traffic share")
    bench.add_argument("--seeds", type=int, default=5, help="seeds (default 5)")
    bench.add_argument("--steps", type=int, default=4000, help="calls per seed (default 4000)")
    bench.add_argument("--noise", type=float, default=0.1, help="simulated judge noise σ (default 0.1)")
    bench.add_argument(
        "--judge",
        choices=["simulated", "local"],
        default="simulated",
        help="retrieval: what the routers learn from: gold + N(0, --noise) (default), or the server's local "
        "judge grading each arm's results",
    )
    bench.add_argument("--policies", default="all", help="comma-separated policies (default all)")
    bench.add_argument("--workers", type=int, default=None, help="worker processes (default min(2, cores))")
    bench.add_argument(
        "--sample",
        type=_count,
        default=0,
        metavar="N",
        help="retrieval/judge: a smoke run on N SciFact queries and a small corpus slice (default: all)",
    )
    judge = bench.add_argument_group("bench judge")
    judge.add_argument(
        "--judges",
        default="smollm2-135m,gemma3-270m",
        help="comma-separated judges: 'local' (the local judge, feedback/local_judge.py) and/or local LLM "
        "models, or 'none' (default smollm2-135m,gemma3-270m)",
    )
    judge.add_argument(
        "--split",
        choices=["test", "train", "all"],
        default="test",
        help="SciFact queries the pairs and lists are drawn from (default test: the local judge is fitted "
        "on train)",
    )
    judge.add_argument(
        "--fit-local",
        action="store_true",
        help="refit the local judge on SciFact's train split and write its parameters, then exit",
    )
    judge.add_argument(
        "--fit-out", metavar="FILE", help="--fit-local: write here (default the packaged local_judge.json)"
    )
    judge.add_argument("--pairs", type=int, default=60, help="query-passage pairs to judge (default 60)")
    judge.add_argument("--queries", type=int, default=30, help="queries whose top-5 is judged (default 30)")
    judge.add_argument("--sample-seed", type=int, default=0, help="seed of the pair/query sample (default 0)")
    judge.add_argument("--curve-steps", type=int, default=None, help="curve steps (default --steps)")
    judge.add_argument(
        "--curve-seeds", type=int, default=None, help="robustness curve seeds, 0 to skip (default --seeds)"
    )
    state = bench.add_argument_group("bench state")
    state.add_argument(
        "--sizes", metavar="N,...", help="recorded calls per database (default 10000,100000,1000000)"
    )
    state.add_argument(
        "--backend", choices=["sqlite", "postgresql", "both"], default="both", help="(default both)"
    )
    state.add_argument(
        "--generate-budget",
        type=float,
        metavar="S",
        help="skip a size whose generation would take longer than S seconds (default 600)",
    )
    load = bench.add_argument_group("bench load")
    load.add_argument(
        "--calls", type=int, metavar="N", help="calls sent (load: 20000, --quick 2000; first-run: 80)"
    )
    load.add_argument("--concurrency", type=int, metavar="C", help="calls in flight (default 64)")
    load.add_argument("--kill", action="store_true", help="kill -9 the server half-way, restart, check")
    collections = bench.add_argument_group("bench collections")
    collections.add_argument(
        "--documents", type=int, metavar="N", help="SciFact abstracts indexed (default all; --quick 150)"
    )
    collections.add_argument(
        "--workdir",
        metavar="DIR",
        help="collections, first-run: keep the folder, database, indexes and logs here (default: a temp dir)",
    )
    first_run = bench.add_argument_group("bench first-run")
    first_run.add_argument(
        "--last", type=_count, default=20, help="decisions whose policy is checked (default 20)"
    )
    first_run.add_argument("--pace", type=float, default=0.5, help="seconds between calls (default 0.5)")
    ope = bench.add_argument_group("bench ope")
    ope.add_argument(
        "--replays", type=int, default=50, help="logging replays (seeds) per logging β (default 50)"
    )
    train = commands.add_parser(
        "train", help="fit an MTRouter checkpoint: from the server's logs (--from-db) or a routing-data file"
    )
    _config_arguments(train)
    source = train.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--from-db", action="store_true", help="train on the database's rated llm_complete steps"
    )
    source.add_argument("--data", metavar="F.jsonl", help="routing-data JSONL (see README)")
    train.add_argument("--models", metavar="M.json", help="models file: prices and metadata (with --data)")
    train.add_argument("--out", metavar="CKPT", help="checkpoint file to write (with --data)")
    train.add_argument("--force", action="store_true", help="--from-db: promote even if the gate rejects it")
    _embedding_arguments(train)
    add_training_arguments(train)

    index = commands.add_parser(
        "index", help="build or refresh the on-disk indexes of folder collections, with a progress bar"
    )
    _config_arguments(index)
    index.add_argument(
        "names", nargs="*", metavar="NAME|FOLDER", help="collections or folders to index (default: all)"
    )

    db = commands.add_parser("db", help="keep the router database bounded: prune old rows, vacuum")
    db_commands = db.add_subparsers(dest="db_command", required=True)
    prune = db_commands.add_parser(
        "prune", help="delete the calls (and their rows) beyond the retention policy, now"
    )
    _database_arguments(prune)
    prune.add_argument(
        "--days", type=_positive(float), help="keep calls younger than D days (default: [retention])"
    )
    prune.add_argument("--calls", type=_positive(int), help="keep the newest N calls (default: [retention])")
    vacuum = db_commands.add_parser(
        "vacuum", help="give the space of deleted rows back (SQLite: shrink the file)"
    )
    _database_arguments(vacuum)
    db.set_defaults(docs=[])

    add_commands(commands)
    return parser


def _embedding_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--embedder", choices=["minilm", "hashing"], default="minilm")
    parser.add_argument("--packing", choices=["split", "single", "turns"], default="split")
    parser.add_argument("--cache", metavar="FILE", help="embedding cache (default: the user cache dir)")


def main(argv: list[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command in ("train", "cv"):
        try:
            args.train_config = training_config(args)  # the flags are checked together, before any work
        except ValueError as exc:
            parser.error(f"{args.command}: {exc}")
    logging.basicConfig(
        stream=sys.stderr, level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    for noisy in ("httpx", "httpcore", "sentence_transformers", "transformers", "ddgs", "primp", "bm25s"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    _quiet_environment()

    if args.command == "bench":
        from mcp_router.bench import run

        raise SystemExit(run(args.name, args))
    offline = ("convert", "eval", "cv", "ablation")
    if args.command in offline or (args.command == "train" and not args.from_db):
        raise SystemExit(run_offline(args))

    from mcp_router.config import ConfigError, load_config, with_docs

    try:
        loaded = with_docs(load_config(args.config), args.docs)
    except ConfigError as exc:
        print(f"mcp-router: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    database = loaded.database_path(args.db)

    if args.command == "serve":
        from mcp_router.cpu import one_blas_thread
        from mcp_router.serving.server import create_server

        one_blas_thread()

        server = create_server(loaded, database)
        if args.transport == "http":
            from mcp_router.serving.network.app import serve_http
            from mcp_router.serving.network.options import NetworkRefusal, options_from_args

            try:
                network = options_from_args(args, os.environ)
            except NetworkRefusal as exc:
                print(f"mcp-router serve: {exc}", file=sys.stderr)
                raise SystemExit(2) from None
            serve_http(server, network, log_level=args.log_level)
        else:
            server.run()
    elif args.command == "demo":
        from mcp_router.demo import run_demo

        raise SystemExit(run_demo(args.config, args.db, args.docs))
    elif args.command == "doctor":
        from mcp_router.doctor import run_doctor

        raise SystemExit(run_doctor(loaded, probe_calls=not args.no_probe, timeout_s=args.timeout))
    elif args.command == "index":
        from mcp_router.commands.index import run_index

        raise SystemExit(run_index(args, loaded))
    elif args.command == "db":
        from mcp_router.commands.db import run_db

        raise SystemExit(run_db(args, loaded, database))
    elif args.command == "train":
        from mcp_router.model_training import NothingToTrain, train_from_db

        try:
            report = train_from_db(
                loaded,
                database,
                force=args.force,
                seed=args.seed,
                train_config=args.train_config,
                estimator=args.estimator,
            )
        except NothingToTrain as exc:
            print(f"mcp-router train: {exc}", file=sys.stderr)
            raise SystemExit(1) from None
        print(json.dumps(report, indent=2))
    elif args.command == "stats":
        import anyio

        from mcp_router.report import stats_table
        from mcp_router.serving.runtime import open_runtime
        from mcp_router.stats import all_stats

        runtime = open_runtime(loaded, database)
        try:
            print(f"database: {runtime.store.display}")
            print(stats_table(all_stats(runtime.store, runtime.dispatcher.routes)))
        finally:
            anyio.run(runtime.aclose)
