"""`mcp-router convert | train --data | eval | ablation`: MTRouter on routing-data files, no server.

Thin glue between the command line and `routing.mtrouter.offline`: it parses nothing itself and
prints a short human summary on stdout (the full reports go to --json/--plot files).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from mcp_router.bench.paths import data_dir

CONVERTERS = {"llmrouter": "routing/llmrouter", "mtbench": "routing/routellm-mtbench"}


def add_commands(commands: argparse._SubParsersAction) -> None:
    convert = commands.add_parser("convert", help="convert a shipped routing dataset to routing-data JSONL")
    convert.add_argument("dataset", choices=sorted(CONVERTERS))
    convert.add_argument("--out", required=True, metavar="DIR", help="folder for the JSONL and models files")
    convert.add_argument(
        "--src", metavar="DIR", help="dataset folder (default: $MCP_ROUTER_DATA/routing/...)"
    )

    evaluate = commands.add_parser("eval", help="evaluate routing policies on a routing-data file")
    evaluate.add_argument("--data", metavar="F.jsonl", required=True, help="routing data to evaluate on")
    evaluate.add_argument("--models", metavar="M.json", required=True, help="models file")
    evaluate.add_argument("--checkpoint", metavar="CKPT", required=True, help="from `train --data`")
    evaluate.add_argument(
        "--train-data",
        metavar="F.jsonl",
        help="training data for best-single, knn and linear (default: the checkpoint's training file)",
    )
    _report_arguments(evaluate)

    ablation = commands.add_parser(
        "ablation", help="MT-Bench turn-2 routing: full history against the last message only (k-fold)"
    )
    ablation.add_argument("--data", metavar="F.jsonl", required=True, help="`convert mtbench` output")
    ablation.add_argument("--models", metavar="M.json", required=True, help="models file")
    ablation.add_argument("--folds", type=int, default=5)
    ablation.add_argument("--repeats", type=int, default=5)
    _report_arguments(ablation)


def _report_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--json", metavar="FILE", help="write the report as JSON (and a .txt table beside it)"
    )
    parser.add_argument("--plot", metavar="FILE.png", help="draw the quality-cost frontier")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache", metavar="FILE", help="embedding cache (default: the user cache dir)")


def run_offline(args: argparse.Namespace) -> int:
    from mcp_router.routing.mtrouter import offline
    from mcp_router.routing.mtrouter.data import convert_llmrouter, convert_mtbench
    from mcp_router.routing.mtrouter.train import TrainConfig
    from providers.retrieve.embedder import load_model

    cache = Path(args.cache) if getattr(args, "cache", None) else None
    json_out = Path(args.json) if getattr(args, "json", None) else None
    plot = Path(args.plot) if getattr(args, "plot", None) else None
    try:
        if args.command == "convert":
            src = Path(args.src) if args.src else data_dir() / CONVERTERS[args.dataset]
            convert = convert_llmrouter if args.dataset == "llmrouter" else convert_mtbench
            print(json.dumps(convert(src, Path(args.out)), indent=2))
        elif args.command == "train":
            if not (args.models and args.out):
                print("mcp-router train --data: also give --models M.json and --out CKPT", file=sys.stderr)
                return 2
            summary = offline.train_from_files(
                Path(args.data),
                Path(args.models),
                Path(args.out),
                packing=args.packing,
                embedder=args.embedder,
                cache=cache,
                minilm=load_model,
                config=TrainConfig(seed=args.seed),
            )
            print(json.dumps(summary, indent=2))
        elif args.command == "eval":
            report = offline.evaluate_files(
                Path(args.data),
                Path(args.models),
                Path(args.checkpoint),
                train_data=Path(args.train_data) if args.train_data else None,
                json_out=json_out,
                plot=plot,
                seed=args.seed,
                cache=cache,
                minilm=load_model,
            )
            print(offline.ev.format_report(report, f"MTRouter offline evaluation on {Path(args.data).name}"))
        else:
            report = offline.mtbench_ablation(
                Path(args.data),
                Path(args.models),
                folds=args.folds,
                repeats=args.repeats,
                cache=cache,
                minilm=load_model,
                config=TrainConfig(seed=args.seed),
                json_out=json_out,
                plot=plot,
            )
            print(offline.format_ablation(report))
    except (OSError, ValueError) as exc:
        print(f"mcp-router {args.command}: {exc}", file=sys.stderr)
        return 1
    return 0
