"""`mcp-router eval --from-db`: a candidate checkpoint against the policy in force, estimated off-policy
on the database's rated `llm_complete` sessions (IPS, SNIPS and doubly robust; `log_evaluation`).

The candidate is `--checkpoint` (a registered id or a checkpoint file), else the newest registered
checkpoint that is not promoted. The policy in force is the promoted checkpoint, else the priors;
a promoted checkpoint evaluated as the candidate is compared with the priors.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mcp_router.config import ConfigError, LoadedConfig, load_config
from mcp_router.log_evaluation import (
    DEFAULT_RESAMPLES,
    PolicySettings,
    compare_policies,
    dr_verdict,
    logged_evaluation,
)
from mcp_router.logged_sessions import encode_steps, episodes_from_steps
from mcp_router.model_training import load_checkpoint
from mcp_router.routing.mtrouter.ope import ESTIMATORS, INTERVALS, METRICS
from mcp_router.routing.mtrouter.router import build_encoder
from mcp_router.store import Store
from mcp_router.store.model_log import ModelLog
from providers.retrieve.embedder import load_model

_DATA_ONLY = ("models", "train_data", "plot", "cache")  # `eval --data` options that mean nothing here


class NothingToEvaluate(Exception):
    """No candidate checkpoint, or no rated session to evaluate it on; the message says what to do."""


@dataclass(frozen=True)
class EvalOptions:
    checkpoint: str | None = None  # registered id or file; None: the newest unpromoted one
    lam: float | None = None  # None: the configured λ
    beta: float = 1.0
    resamples: int = DEFAULT_RESAMPLES
    seed: int = 0
    interval: str = INTERVALS[0]


def evaluate_from_db(loaded: LoadedConfig, database: Path | str, options: EvalOptions) -> dict[str, Any]:
    """The report `eval --from-db` prints (and writes with --json)."""
    mt = loaded.config.tool("llm_complete").mtrouter
    specs = loaded.config.model_pool()
    names = [s.name for s in specs]
    store = Store(database)
    try:
        model_log = ModelLog(store)
        row, candidate_path = _candidate(model_log, options.checkpoint)
        encoder = build_encoder(mt.embedder, mt.packing, cache=model_log, minilm=load_model)
        candidate = load_checkpoint(
            row or {"checkpoint_id": str(candidate_path), "path": str(candidate_path)},
            specs,
            encoder.encoder_id,
        )
        if candidate is None:
            raise NothingToEvaluate(
                f"checkpoint {candidate_path} cannot serve the configured pool with embedder "
                f"{encoder.encoder_id!r} (see the warning above); evaluate it with the config it was "
                "trained under"
            )
        promoted = model_log.promoted()
        in_force = None if promoted and promoted["checkpoint_id"] == candidate.checkpoint_id else promoted
        current = load_checkpoint(in_force, specs, encoder.encoder_id)
        rows = model_log.steps_with_outcomes()
        episodes = episodes_from_steps(rows, names)
        if not episodes:
            raise NothingToEvaluate(
                f"{store.display} has no rated llm_complete session; rate answers with `feedback` "
                "(or enable the judge) first"
            )
        data = logged_evaluation(
            episodes, names, encode_steps(encoder, episodes), float(candidate.meta["c_bar"])
        )
        lam = mt.lambda_ if options.lam is None else options.lam
        settings = PolicySettings(
            lam,
            mt.typical_conversation_cost_usd,
            options.beta,
            options.resamples,
            seed=options.seed,
            interval=options.interval,
        )
        result = compare_policies(data, candidate, current, specs, settings)
        baseline = f"checkpoint {in_force['checkpoint_id']}" if current is not None and in_force else "prior"
        watermark = candidate.meta.get("watermark")
        return {
            "database": store.display,
            "candidate": {
                "checkpoint_id": candidate.checkpoint_id,
                "status": row["status"] if row else "file",
                "estimator": candidate.estimator,
                "watermark": watermark,
            },
            "baseline": baseline,
            "lambda": lam,
            "beta": options.beta,
            "c_bar_usd": data.c_bar,
            "sessions": result.comparison.sessions,
            "steps": result.comparison.steps,
            "skipped_steps": data.skipped,
            # steps the candidate may have been trained on: its estimates there are optimistic
            "steps_up_to_watermark": sum(
                1 for s in data.steps if watermark is not None and s["step_id"] <= watermark
            ),
            "direct_model": result.direct_model,
            "comparison": result.comparison.to_dict(),
            "verdict": dr_verdict(result, baseline),
        }
    finally:
        store.close()


def _candidate(model_log: ModelLog, wanted: str | None) -> tuple[dict[str, Any] | None, Path]:
    """(registry row or None, weights file) of the checkpoint to evaluate."""
    if wanted is None:
        row = model_log.newest_candidate()
        if row is None:
            raise NothingToEvaluate(
                "no unpromoted checkpoint is registered; run `mcp-router train --from-db` first, or "
                "name one with --checkpoint ID|FILE"
            )
        return row, Path(row["path"])
    row = model_log.checkpoint(wanted)
    if row is not None:
        return row, Path(row["path"])
    if Path(wanted).is_file():
        return None, Path(wanted)
    raise NothingToEvaluate(
        f"--checkpoint {wanted!r} is neither a registered checkpoint id nor a file; `router://models` "
        "lists the registered ones"
    )


def format_report(report: dict[str, Any]) -> str:
    """A table: per estimator, the candidate, the policy in force and their difference, each metric
    with its interval."""
    cmp = report["comparison"]
    level = f"{cmp['level']:.0%}"
    target = "greedy" if report["beta"] == 1.0 else f"β-mixed (β = {report['beta']})"
    lines = [
        f"off-policy evaluation on {report['database']}: {report['sessions']} sessions, {report['steps']} "
        f"steps ({report['skipped_steps']} skipped: chosen model not in the pool)",
        f"candidate {report['candidate']['checkpoint_id']} ({report['candidate']['status']}, "
        f"{report['candidate']['estimator']}) vs the policy in force: {report['baseline']}",
        f"{target} targets, value = quality − λ·cost with λ = {report['lambda']:g}, cost in units of "
        f"c̄ = ${report['c_bar_usd']:.6g}; {cmp['resamples']} session resamples, "
        f"{level} {cmp['interval']} bootstrap intervals",
    ]
    if report["steps_up_to_watermark"]:
        lines.append(
            f"note: {report['steps_up_to_watermark']} steps are at or before the candidate's training "
            "watermark; on those its estimates are optimistic"
        )
    lines += ["", f"{'estimator':<9} {'policy':<10} " + " ".join(f"{m:>28}" for m in METRICS), "-" * 100]
    for estimator in ESTIMATORS:
        for label, block in (
            ("candidate", cmp["candidate"]["estimates"]),
            ("in force", cmp["baseline"]["estimates"]),
            ("difference", cmp["difference"]),
        ):
            cells = [_cell(block[estimator][m]) for m in METRICS]
            lines.append(f"{estimator if label == 'candidate' else '':<9} {label:<10} " + " ".join(cells))
    lines.append("")
    dm = report["direct_model"]
    lines.append(f"direct model (DR): quality from the {dm['quality']}, cost from the {dm['cost']}")
    for label, key in (("candidate", "candidate"), ("in force", "baseline")):
        s = cmp[key]["support"]
        lines.append(
            f"support ({label}): logged choice matches on {s['matched_share']:.1%} of steps, effective "
            f"steps {s['effective_steps']:.1f}, largest weight {s['max_weight']:.1f}"
        )
    verdict = report["verdict"]
    lines.append(
        f"promotion rule: {verdict['rule']}: {'passes' if verdict['passes'] else 'fails'}"
        + (f" ({verdict['reason']})" if not verdict["passes"] else "")
    )
    return "\n".join(lines) + "\n"


def _cell(interval: dict[str, float]) -> str:
    return f"{interval['estimate']:>9.4f} [{interval['low']:>8.4f}, {interval['high']:>8.4f}]"


def run_eval_from_db(args: argparse.Namespace) -> int:
    given = [f"--{name.replace('_', '-')}" for name in _DATA_ONLY if getattr(args, name, None)]
    if given:
        print(f"mcp-router eval --from-db: {', '.join(given)} go with --data only", file=sys.stderr)
        return 2
    try:
        loaded = load_config(args.config)
        options = EvalOptions(args.checkpoint, args.lam, args.beta, args.resamples, args.seed, args.interval)
        report = evaluate_from_db(loaded, loaded.database_path(args.db), options)
    except (ConfigError, NothingToEvaluate, OSError, ValueError) as exc:
        print(f"mcp-router eval --from-db: {exc}", file=sys.stderr)
        return 1
    table = format_report(report)
    print(table, end="")
    if args.json:  # the JSON, and the table beside it as `eval --data` writes them
        out = Path(args.json)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2) + "\n")
        out.with_suffix(".txt").write_text(table)
    return 0
