"""`mcp-router bench ope`: does off-policy evaluation from the server's logs find the known truth?

LLMRouter's test items carry every model's score and cost, so any policy's true value on them is
exact. Each replay logs every item as a one-step session, the way the server does: `ModelRouter.decide`
(β-mixed) picks the model and returns its propensity, the step is written with its call through the
real `Store`, and the served model's true score is recorded as explicit feedback. `eval --from-db`'s
code (`evaluate_from_db`) then estimates, on that database, a target checkpoint against the policy in
force. A replay's interval *covers* when it contains the true value; coverage is the share of replays
(independent logging seeds) that cover, per estimator, metric and policy (target, policy in force,
and their paired difference).

Two logging scenarios:
- `priors`: day 0. No checkpoint is promoted; the priors policy (no quality priors configured, so
  the cheapest model) logs. The target rarely agrees with it, so only exploration supports it.
- `checkpoint`: a previous checkpoint is promoted and logs (the situation of every later promotion);
  the target is a newer checkpoint trained on more data, which often agrees with it.

Checkpoints are per-model ridges on disjoint slices of LLMRouter's train file: the target on the
first `TARGET_ITEMS`, the previous one on the next `PREVIOUS_ITEMS`. Embeddings: the deterministic
hashing embedder (no model download), as the server computes it with `embedder = "hashing"`. Value:
quality − λ·cost, cost in units of the target's c̄ (its training items' mean cost per model).
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from mcp_router.bench.paths import data_dir
from mcp_router.bench.toml_config import render
from mcp_router.commands.evaluate_logs import EvalOptions, evaluate_from_db
from mcp_router.config import LoadedConfig, load_config
from mcp_router.routing.mtrouter import ope
from mcp_router.routing.mtrouter.checkpoint import Checkpoint, value
from mcp_router.routing.mtrouter.data import RoutingRecord, convert_llmrouter, read_records
from mcp_router.routing.mtrouter.policy import admit, prior_values
from mcp_router.routing.mtrouter.router import ModelRouter, build_encoder
from mcp_router.serving.planner import decision_step
from mcp_router.serving.runtime import model_params
from mcp_router.store import AttemptRecord, CallRecord, Store
from mcp_router.store.model_log import ModelLog

log = logging.getLogger("mcp_router.bench.ope")

LAMBDA = 0.02  # value = quality − λ·cost/c̄: cost matters, but does not decide every item alone
BETAS = (0.5, 0.8, 0.9)  # logging policies: the reference's mixed stage, its stage-0 value, the default
MAX_TOKENS = 256  # the converter's assumed completion length
RESAMPLES = 1000
POLICIES = ("candidate", "baseline", "difference")  # the target, the policy in force, their gap
LOGGING = ("priors", "checkpoint")
TARGET_ITEMS = 2000  # the target's training items: the first of train.json
PREVIOUS_ITEMS = 500  # the previous (logging) checkpoint's: the next ones
HELD_OUT = ("priors", 0.8)  # the run tests/test_ope.py checks the coverage bar on: never used to choose


@dataclass(frozen=True)
class Scenario:
    """The items replayed, the pool (prices from the converted models file) and the checkpoints."""

    records: list[RoutingRecord]
    models: dict[str, dict[str, Any]]  # name -> models-file entry
    target: Path  # checkpoint file
    previous: Path  # checkpoint file of the logging policy in the `checkpoint` scenario
    workdir: Path


def prepare(workdir: Path, *, items: int | None = None) -> Scenario:
    """Convert LLMRouter into `workdir` and train the target and previous checkpoints (module doc)."""
    files = convert_llmrouter(data_dir() / "routing" / "llmrouter", workdir)["files"]
    train = read_records(Path(files["train"]))
    target, previous = workdir / "target.pt", workdir / "previous.pt"
    _train_ridge(train[:TARGET_ITEMS], Path(files["models"]), target)
    _train_ridge(train[TARGET_ITEMS : TARGET_ITEMS + PREVIOUS_ITEMS], Path(files["models"]), previous)
    records = read_records(Path(files["test"]))[:items]
    return Scenario(records, json.loads(Path(files["models"]).read_text()), target, previous, workdir)


def _train_ridge(records: Sequence[RoutingRecord], models: Path, out: Path) -> None:
    """A ridge checkpoint on full-information `records`, embedded as the server embeds (hashing)."""
    from mcp_router.routing.mtrouter import evaluate as ev
    from mcp_router.routing.mtrouter.offline import load_pool, training_set
    from mcp_router.routing.mtrouter.train import fit_estimator

    specs = load_pool(models, records)
    encoder = build_encoder("hashing", "split")
    zx = encoder.encode([list(r.messages) for r in records])
    rows, c_bar = training_set(records, zx, ev.outcome_matrix(records, [s.name for s in specs]))
    with threadpool_limits(1):  # small D × D solves: BLAS threads only wait for each other
        checkpoint = fit_estimator(rows, specs, estimator="ridge", encoder_id=encoder.encoder_id, c_bar=c_bar)
    checkpoint.save(out)


def pool_config(
    models: Mapping[str, Mapping[str, Any]],
    *,
    lam: float,
    beta: float,
    priors: Mapping[str, float] | None = None,
) -> str:
    """A router config serving `models` (one endpoint each) with the hashing embedder."""
    tables: list[tuple[str, Mapping[str, Any]]] = [
        ("[tools.llm_complete.mtrouter]", {"lambda": lam, "beta": beta, "embedder": "hashing"}),
        ("[judge]", {"enabled": False}),
    ]
    for name, spec in models.items():  # one provider per model: its `model` names the pool entry
        provider = {
            "name": f"{name}-ep",
            "type": "openai",
            "model": name,
            "api_key_env": "MCP_ROUTER_BENCH_UNUSED_KEY",
            "enabled": True,
            "input_cost_per_token": spec["input_cost_per_token"],
            "output_cost_per_token": spec["output_cost_per_token"],
            "context_window": spec.get("context_window"),
            "quality_prior": (priors or {}).get(name),
        }
        tables.append(("[[tools.llm_complete.providers]]", provider))
    return render({"auto_providers": False}, tables)


def write_config(path: Path, text: str) -> LoadedConfig:
    path.write_text(text)
    return load_config(path)


def replay(
    database: Path, records: Sequence[RoutingRecord], loaded: LoadedConfig, seed: int
) -> dict[str, int]:
    """Log every record as a one-step session served by the priors policy (see the module doc);
    returns how often each model was chosen."""
    specs = loaded.config.model_pool()
    params = replace(model_params(loaded), seed=seed)
    store = Store(database)
    router = ModelRouter(specs, params, promoted=ModelLog(store).promoted)
    router.refresh()  # the promoted checkpoint, if the database has one, decides
    chosen: dict[str, int] = {}
    try:
        with store.transaction() as db:
            for i, record in enumerate(records):
                messages = [dict(m) for m in record.messages]
                decision = router.decide(messages, MAX_TOKENS, None)
                outcome = record.outcomes[decision.model]
                step = replace(
                    decision_step(decision, record.session, messages, params.lam, None, 0.0),
                    served_model=decision.model,
                    prompt_tokens=1,
                    completion_tokens=MAX_TOKENS,
                )
                call_id = f"call-{record.id}"
                Store.write_call(
                    db,
                    CallRecord(
                        call_id=call_id,
                        tool="llm_complete",
                        router="lqm",
                        ts=float(i),
                        request={},
                        attempts=[AttemptRecord(f"{decision.model}-ep", "ok", 0.1, ts_done=float(i))],
                        session_id=record.session,
                        cost_usd=float(outcome.cost_usd or 0.0),
                        step=step,
                    ),
                )
                store.write_feedback(db, call_id, outcome.score, "explicit", now=i + 0.5)
                chosen[decision.model] = chosen.get(decision.model, 0) + 1
    finally:
        store.close()
    return chosen


def template_database(
    path: Path, records: Sequence[RoutingRecord], loaded: LoadedConfig, promoted: Path | None
) -> Path:
    """A database holding the embeddings of the records' histories (as a server that has seen them)
    and, if given, the `promoted` checkpoint registered and promoted; each replay starts from a copy."""
    mt = loaded.config.tool("llm_complete").mtrouter
    store = Store(path)
    try:
        log = ModelLog(store)
        build_encoder(mt.embedder, mt.packing, cache=log).encode([list(r.messages) for r in records])
        if promoted is not None:
            checkpoint = Checkpoint.load(promoted)
            log.register_checkpoint(
                {
                    "checkpoint_id": checkpoint.checkpoint_id,
                    "path": str(promoted),
                    "parent_id": None,
                    "created_at": 0.0,
                    "pool": list(checkpoint.pool),
                    "encoder_id": checkpoint.meta["encoder_id"],
                    "meta": {"c_bar": checkpoint.meta["c_bar"]},
                    "validation": {},
                    "status": "candidate",
                }
            )
            log.promote(checkpoint.checkpoint_id)
    finally:
        store.close()
    return path


def true_values(
    records: Sequence[RoutingRecord],
    loaded: LoadedConfig,
    target: Checkpoint,
    baseline: Checkpoint | None = None,
    beta: float = 1.0,
) -> dict[str, dict[str, float]]:
    """The exact quality, cost (units of the target's c̄) and value of the target, of the baseline (a
    checkpoint, else the priors policy) and of their difference on `records`, computed from every
    model's outcome (full information)."""
    mt = loaded.config.tool("llm_complete").mtrouter
    specs = loaded.config.model_pool()
    names = [s.name for s in specs]
    c_bar = float(target.meta["c_bar"])
    score = np.array([[r.outcomes[n].score for n in names] for r in records])
    cost = np.array([[(r.outcomes[n].cost_usd or 0.0) / c_bar for n in names] for r in records])
    encoder = build_encoder(mt.embedder, mt.packing)
    zx = encoder.encode([list(r.messages) for r in records])
    q_target = value(*target.predict(zx, names), mt.lambda_)
    if baseline is not None:
        q_baseline = value(*baseline.predict(zx, names), mt.lambda_)
    else:
        q_baseline = np.full((len(records), len(names)), -np.inf)
        for i, r in enumerate(records):
            admission = admit(specs, list(r.messages), MAX_TOKENS, None)
            q0 = prior_values(specs, admission, mt.lambda_, mt.typical_conversation_cost_usd)
            for name, q in q0.items():
                q_baseline[i, names.index(name)] = q
    truth = {}
    for policy, q in (("candidate", q_target), ("baseline", q_baseline)):
        probs = ope.mixed_probs(q, beta)
        quality, c = float((probs * score).sum(axis=1).mean()), float((probs * cost).sum(axis=1).mean())
        truth[policy] = {"quality": quality, "cost": c, "value": quality - mt.lambda_ * c}
    truth["difference"] = {m: truth["candidate"][m] - truth["baseline"][m] for m in ope.METRICS}
    return truth


def _intervals(report: Mapping[str, Any], policy: str) -> Mapping[str, Any]:
    cmp = report["comparison"]
    return cmp["difference"] if policy == "difference" else cmp[policy]["estimates"]


def coverage(
    scenario: Scenario,
    *,
    logging: str,
    beta: float,
    replays: int,
    lam: float = LAMBDA,
    resamples: int = RESAMPLES,
    first_seed: int = 0,
    intervals: Sequence[str] = ope.INTERVALS,
    progress: Callable[[str], None] = lambda _: None,
) -> dict[str, Any]:
    """`replays` replays logged in scenario `logging` (see LOGGING) at `beta`; for each interval kind
    (`ope.INTERVALS`, each on the same resamples), estimator, metric and policy: coverage, mean
    estimate minus truth, mean interval width."""
    if logging not in LOGGING:
        raise ValueError(f"logging must be one of {LOGGING}, not {logging!r}")
    name = f"{logging}-beta{beta}"
    loaded = write_config(scenario.workdir / f"{name}.toml", pool_config(scenario.models, lam=lam, beta=beta))
    specs = loaded.config.model_pool()
    target = Checkpoint.load(scenario.target).with_pool(specs)
    previous = scenario.previous if logging == "checkpoint" else None
    baseline = Checkpoint.load(previous).with_pool(specs) if previous else None
    truth = true_values(scenario.records, loaded, target, baseline)
    hits: dict[tuple[str, str, str, str], list[tuple[bool, float, float]]] = {}
    started = time.monotonic()
    template = template_database(scenario.workdir / f"{name}.db", scenario.records, loaded, previous)
    for k in range(replays):
        seed = first_seed + k
        database = scenario.workdir / f"replay-{name}-{seed}.db"
        shutil.copyfile(template, database)
        replay(database, scenario.records, loaded, seed)
        for kind in intervals:
            options = EvalOptions(str(scenario.target), resamples=resamples, seed=seed, interval=kind)
            report = evaluate_from_db(loaded, database, options)
            for policy in POLICIES:
                for estimator in ope.ESTIMATORS:
                    for metric in ope.METRICS:
                        interval = _intervals(report, policy)[estimator][metric]
                        true = truth[policy][metric]
                        hits.setdefault((kind, policy, estimator, metric), []).append(
                            (
                                interval["low"] <= true <= interval["high"],
                                interval["estimate"] - true,
                                interval["high"] - interval["low"],
                            )
                        )
        database.unlink()
        progress(f"{name}: replay {k + 1}/{replays}")
    rows = [
        {
            "interval": kind,
            "policy": policy,
            "estimator": estimator,
            "metric": metric,
            "coverage": float(np.mean([h[0] for h in values])),
            "mean_error": float(np.mean([h[1] for h in values])),
            "sd_error": float(np.std([h[1] for h in values], ddof=1)) if len(values) > 1 else 0.0,
            "mean_width": float(np.mean([h[2] for h in values])),
        }
        for (kind, policy, estimator, metric), values in hits.items()
    ]
    return {
        "logging": logging,
        "beta": beta,
        "lambda": lam,
        "replays": replays,
        "seeds": [first_seed, first_seed + replays - 1],
        "items": len(scenario.records),
        "resamples": resamples,
        "truth": truth,
        "rows": rows,
        "seconds": round(time.monotonic() - started, 1),
    }


def choose_interval(runs: Sequence[Mapping[str, Any]], level: float = 0.95) -> dict[str, Any]:
    """The rule that picks `ope`'s default interval kind, fixed before it was run: the kind whose DR
    value intervals (target, policy in force, difference) cover nearest `level` on average over every
    run except the one `tests/test_ope.py` checks the bar on (`HELD_OUT`), which so stays unseen."""
    gaps: dict[str, list[float]] = {}
    for run in runs:
        if (run["logging"], run["beta"]) == HELD_OUT:
            continue
        for row in run["rows"]:
            if row["estimator"] == "dr" and row["metric"] == "value":
                gaps.setdefault(row["interval"], []).append(abs(row["coverage"] - level))
    mean_gap = {kind: float(np.mean(values)) for kind, values in gaps.items()}
    return {
        "held_out": list(HELD_OUT),
        "mean_gap_to_level": mean_gap,
        "chosen": min(mean_gap, key=mean_gap.get),
    }


def format_report(report: Mapping[str, Any]) -> str:
    """The coverage of the value intervals per scenario and interval kind, the interval choice, then
    every row of every run."""
    lines = [
        "OPE coverage on LLMRouter test items replayed as logged sessions (bench ope)",
        f"items {report['items']}, λ = {report['lambda']}, {report['replays']} logging replays (seeds) per "
        f"run, {report['resamples']} session resamples, 95 % intervals; target: a ridge "
        f"checkpoint (greedy) on {TARGET_ITEMS} train items; in force: the priors, or a ridge checkpoint "
        f"on {PREVIOUS_ITEMS} other train items (greedy)",
        "",
        "coverage of the value's interval (share of replays containing the true value)",
        f"{'logging':<10} {'β':>4} {'interval':<11} {'target ips':>10} {'snips':>6} {'dr':>6} "
        f"{'in force dr':>11} {'diff dr':>8} {'dr width':>9} {'true target':>11} {'true in force':>13}",
    ]
    for run in report["runs"]:
        for kind in dict.fromkeys(r["interval"] for r in run["rows"]):
            cov = {
                (r["policy"], r["estimator"]): r
                for r in run["rows"]
                if r["metric"] == "value" and r["interval"] == kind
            }
            lines.append(
                f"{run['logging']:<10} {run['beta']:>4} {kind:<11} "
                f"{cov['candidate', 'ips']['coverage']:>10.2f} "
                f"{cov['candidate', 'snips']['coverage']:>6.2f} {cov['candidate', 'dr']['coverage']:>6.2f} "
                f"{cov['baseline', 'dr']['coverage']:>11.2f} {cov['difference', 'dr']['coverage']:>8.2f} "
                f"{cov['candidate', 'dr']['mean_width']:>9.4f} {run['truth']['candidate']['value']:>11.4f} "
                f"{run['truth']['baseline']['value']:>13.4f}"
            )
    choice = report["interval_choice"]
    gaps = ", ".join(f"{k} {v:.3f}" for k, v in choice["mean_gap_to_level"].items())
    lines += [
        "",
        f"interval choice (DR value coverage, mean |coverage − 0.95| over the runs other than "
        f"{choice['held_out'][0]} β = {choice['held_out'][1]}): {gaps} -> {choice['chosen']}",
    ]
    for run in report["runs"]:
        lines += [
            "",
            f"logging {run['logging']}, β = {run['beta']} ({run['seconds']} s)",
            f"{'interval':<11} {'policy':<11} {'estimator':<9} {'metric':<8} {'coverage':>9} {'mean err':>9} "
            f"{'mean width':>11}",
        ]
        for row in run["rows"]:
            lines.append(
                f"{row['interval']:<11} {row['policy']:<11} {row['estimator']:<9} {row['metric']:<8} "
                f"{row['coverage']:>9.2f} {row['mean_error']:>+9.4f} {row['mean_width']:>11.4f}"
            )
    return "\n".join(lines) + "\n"


def main(args: argparse.Namespace) -> int:
    """`mcp-router bench ope [--replays N] [--quick] [--json F]`; the .txt table goes beside the JSON."""
    from mcp_router.bench.output import publish

    replays = 5 if getattr(args, "quick", False) else args.replays
    with tempfile.TemporaryDirectory(prefix="mcp-router-ope-") as tmp:
        scenario = prepare(Path(tmp))
        runs = [
            coverage(scenario, logging=logging, beta=beta, replays=replays, progress=log.info)
            for logging in LOGGING
            for beta in BETAS
        ]
    report = {"items": len(scenario.records), "lambda": LAMBDA, "replays": replays, "resamples": RESAMPLES}
    report |= {"target_items": TARGET_ITEMS, "previous_items": PREVIOUS_ITEMS, "runs": runs}
    report["interval_choice"] = choose_interval(runs)
    table = format_report(report)
    publish(table, report, args.json, log.info)
    if args.json:
        Path(args.json).with_suffix(".txt").write_text(table)
    return 0
