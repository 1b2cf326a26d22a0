"""`mcp-router convert | train --data | eval | cv | ablation`: MTRouter on routing-data files, no server.

Thin glue between the command line and `routing.mtrouter.offline`: it parses nothing itself and
prints a short human summary on stdout (the full reports go to --json/--plot files). It also owns the
training flags `train` and `cv` share, generated from `TrainConfig`'s fields so a new field is a new
flag with no second list to keep in step.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import replace
from pathlib import Path

from mcp_router.bench.paths import data_dir
from mcp_router.routing.mtrouter.ope import INTERVALS
from mcp_router.routing.mtrouter.train_config import ESTIMATORS, TrainConfig

CONVERTERS = {"llmrouter": "routing/llmrouter", "mtbench": "routing/routellm-mtbench"}


def add_commands(commands: argparse._SubParsersAction) -> None:
    convert = commands.add_parser("convert", help="convert a shipped routing dataset to routing-data JSONL")
    convert.add_argument("dataset", choices=sorted(CONVERTERS))
    convert.add_argument("--out", required=True, metavar="DIR", help="folder for the JSONL and models files")
    convert.add_argument(
        "--src", metavar="DIR", help="dataset folder (default: $MCP_ROUTER_DATA/routing/...)"
    )

    evaluate = commands.add_parser(
        "eval",
        help="evaluate routing policies on a routing-data file (--data), or a candidate checkpoint "
        "off-policy on the server's logged sessions (--from-db)",
    )
    source = evaluate.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", metavar="F.jsonl", help="routing data to evaluate on")
    source.add_argument(
        "--from-db",
        action="store_true",
        help="estimate a checkpoint's value against the policy in force on the database's rated sessions",
    )
    evaluate.add_argument("--models", metavar="M.json", help="--data: models file (required)")
    evaluate.add_argument(
        "--checkpoint",
        metavar="CKPT",
        help="--data: from `train --data` (required); --from-db: registered id or file "
        "(default: the newest unpromoted checkpoint)",
    )
    logs = evaluate.add_argument_group("eval --from-db")
    logs.add_argument("--config", help="TOML config file (default: $MCP_ROUTER_CONFIG, else built-in)")
    logs.add_argument("--db", help="SQLite file or postgresql:// URL (default: $MCP_ROUTER_DB, config, ...)")
    logs.add_argument("--lambda", dest="lam", type=float, help="value = quality − λ·cost (default: config)")
    logs.add_argument("--beta", type=float, default=1.0, help="evaluate β-mixed policies (default 1: greedy)")
    logs.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples of sessions")
    logs.add_argument(
        "--interval",
        choices=INTERVALS,
        default=INTERVALS[0],
        help=f"bootstrap interval (default {INTERVALS[0]}; see benchmarks/README.md, bench ope)",
    )
    evaluate.add_argument(
        "--train-data",
        metavar="F.jsonl",
        help="training data for best-single, knn and linear (default: the checkpoint's training file)",
    )
    _report_arguments(evaluate)
    _seeds_argument(evaluate, "retrain the checkpoint's recipe with this many seeds and report each figure")
    _jobs_argument(evaluate, "--data: worker processes retraining the seeds side by side")

    cv = commands.add_parser(
        "cv", help="cross-validate ridge, MLP schedules and their ensemble on a training file (k-fold)"
    )
    cv.add_argument("--data", metavar="F.jsonl", required=True, help="routing data (a training file)")
    cv.add_argument("--models", metavar="M.json", required=True, help="models file")
    cv.add_argument("--folds", type=int, default=5)
    cv.add_argument(
        "--schedule",
        action="append",
        default=[],
        metavar="NAME:FIELD=V,...",
        help="an MLP config to compare, as overrides of the training flags, e.g. "
        "ref:epochs=100,val_fraction=0.1 (repeatable; default: the training flags alone)",
    )
    _seeds_argument(cv, "repeat with this many seeds (folds and training)")
    _jobs_argument(cv, "worker processes cross-validating the seeds side by side")
    cv.add_argument("--json", metavar="FILE", help="write the report as JSON (and a .txt table beside it)")
    cv.add_argument("--cache", metavar="FILE", help="embedding cache (default: the user cache dir)")
    cv.add_argument("--embedder", choices=["minilm", "hashing"], default="minilm")
    cv.add_argument("--packing", choices=["split", "single", "turns"], default="split")
    add_training_arguments(cv, estimator=False)

    ablation = commands.add_parser(
        "ablation", help="MT-Bench turn-2 routing: full history against the last message only (k-fold)"
    )
    ablation.add_argument("--data", metavar="F.jsonl", required=True, help="`convert mtbench` output")
    ablation.add_argument("--models", metavar="M.json", required=True, help="models file")
    ablation.add_argument("--folds", type=int, default=5)
    ablation.add_argument("--repeats", type=int, default=5)
    ablation.add_argument(
        "--packing",
        choices=["split", "single", "turns"],
        default="split",
        help="history packing (turns: every recent message chunked and pooled by recency)",
    )
    ablation.add_argument(
        "--stay-bonus",
        type=float,
        nargs="+",
        default=[0.0, 0.01, 0.02, 0.05],
        metavar="B",
        help="stay bonuses to replay both turns with (0 is always the reference)",
    )
    ablation.add_argument(
        "--compare-with",
        metavar="FILE.json",
        help="an ablation report of another packing (same folds, repeats, seed) to compare frontiers with",
    )
    _report_arguments(ablation)


def add_training_arguments(parser: argparse.ArgumentParser, *, estimator: bool = True) -> None:
    """`--estimator` and one flag per `TrainConfig` field (`--weight-decay` for weight_decay), typed and
    defaulted from the field; `training_config` checks the values together."""
    group = parser.add_argument_group("training")
    if estimator:
        group.add_argument(
            "--estimator",
            choices=ESTIMATORS,
            default="auto",
            help="auto (default): ridge while data is scarce, else the best of ridge, mlp and their "
            "average (ensemble) by cross-validation on the training data",
        )
    for name, (kind, default, text) in TrainConfig.field_help().items():
        group.add_argument(
            "--" + name.replace("_", "-"),
            type=kind,
            default=default,
            metavar="N" if kind is int else "X",
            help=f"{text} (default {default})",
        )


def training_config(args: argparse.Namespace) -> TrainConfig:
    """The TrainConfig of the parsed training flags; ValueError naming every bad value."""
    return TrainConfig(**{name: getattr(args, name) for name in TrainConfig.field_help()})


def _schedules(specs: list[str], base: TrainConfig) -> dict[str, TrainConfig]:
    """`cv --schedule NAME:FIELD=V,...` -> {"mlp[NAME]": base with the overrides}."""
    fields = TrainConfig.field_help()
    out = {}
    for spec in specs:
        name, _, overrides = spec.partition(":")
        values = {}
        for item in filter(None, overrides.split(",")):
            key, _, text = item.partition("=")
            if key not in fields or not text:
                raise ValueError(
                    f"--schedule {spec!r}: expected NAME:FIELD=VALUE,... with FIELD one of {list(fields)}"
                )
            try:
                values[key] = fields[key][0](text)
            except ValueError:
                raise ValueError(f"--schedule {spec!r}: {key} needs a {fields[key][0].__name__}") from None
        out[f"mlp[{name}]"] = replace(base, **values)
    return out or {"mlp": base}


def _seeds_argument(parser: argparse.ArgumentParser, text: str) -> None:
    parser.add_argument("--seeds", type=int, default=5, metavar="N", help=f"{text} (default 5)")


def _jobs_argument(parser: argparse.ArgumentParser, text: str) -> None:
    cores = os.cpu_count() or 1
    parser.add_argument(
        "--jobs",
        type=int,
        default=cores,
        metavar="N",
        help=f"{text} (default: the core count, {cores} here); the figures do not depend on it",
    )


def _report_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--json", metavar="FILE", help="write the report as JSON (and a .txt table beside it)"
    )
    parser.add_argument("--plot", metavar="FILE.png", help="draw the quality-cost frontier")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache", metavar="FILE", help="embedding cache (default: the user cache dir)")


def run_offline(args: argparse.Namespace) -> int:
    if args.command == "eval" and args.from_db:
        from mcp_router.commands.evaluate_logs import run_eval_from_db

        return run_eval_from_db(args)
    if args.command == "eval" and not (args.models and args.checkpoint):
        print("mcp-router eval --data: also give --models M.json and --checkpoint CKPT", file=sys.stderr)
        return 2
    from mcp_router.routing.mtrouter import offline
    from mcp_router.routing.mtrouter.data import convert_llmrouter, convert_mtbench
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
                config=training_config(args),
                estimator=args.estimator,
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
                seeds=args.seeds,
                jobs=args.jobs,
                cache=cache,
                minilm=load_model,
            )
            print(offline.ev.format_report(report, f"MTRouter offline evaluation on {Path(args.data).name}"))
        elif args.command == "cv":
            base = training_config(args)
            report = offline.cross_validate_files(
                Path(args.data),
                Path(args.models),
                folds=args.folds,
                embedder=args.embedder,
                packing=args.packing,
                cache=cache,
                minilm=load_model,
                config=base,
                schedules=_schedules(args.schedule, base),
                seeds=args.seeds,
                jobs=args.jobs,
                json_out=json_out,
            )
            title = f"MTRouter {args.folds}-fold cross-validation on {Path(args.data).name}"
            print(offline.format_cross_validation(report, title))
        else:
            report = offline.mtbench_ablation(
                Path(args.data),
                Path(args.models),
                folds=args.folds,
                repeats=args.repeats,
                packing=args.packing,
                stay_bonuses=args.stay_bonus,
                compare_with=Path(args.compare_with) if args.compare_with else None,
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
