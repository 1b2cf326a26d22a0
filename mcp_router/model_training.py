"""`mcp-router train --from-db`: fit an MTRouter checkpoint on the server's own `llm_complete` logs and
promote it only if, on held-out sessions, it predicts no worse than the policy in force (MSE) and the
log does not show it earning less (doubly robust off-policy value, `log_evaluation`).

Which steps are training data, and their targets, is `logged_sessions`' business.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mcp_router.config import LoadedConfig, default_data_dir
from mcp_router.log_evaluation import PolicySettings, compare_policies, dr_verdict, logged_evaluation
from mcp_router.logged_sessions import Episode, encode_steps, episodes_from_steps, step_targets
from mcp_router.routing.mtrouter.pool import ModelSpec
from mcp_router.routing.mtrouter.router import build_encoder
from mcp_router.routing.mtrouter.targets import AECConfig
from mcp_router.routing.mtrouter.train_config import TrainConfig
from mcp_router.store import Store
from mcp_router.store.model_log import ModelLog
from providers.retrieve.embedder import load_model

log = logging.getLogger("mcp_router.train")
PROMOTION_TOLERANCE = 1.05  # a candidate may be at most 5 % worse than the current policy on held-out MSE
HOLDOUT_FRACTION = 0.2
MIN_HELD_OUT = 2  # sessions the promotion gate compares on; with fewer it refuses to judge
KEEP_CHECKPOINTS = 5


class NothingToTrain(Exception):
    """The database has too few rated llm_complete sessions to train and check a checkpoint."""


def sessions_needed() -> int:
    """Rated sessions needed for `MIN_HELD_OUT` of them to be held out."""
    n = MIN_HELD_OUT
    while max(1, round(HOLDOUT_FRACTION * n)) < MIN_HELD_OUT:
        n += 1
    return n


def training_set(episodes: Sequence[Episode], pool: Sequence[str], encoder: Any, c_bar: float) -> Any:
    from mcp_router.routing.mtrouter.train import TrainingSet

    aec = AECConfig()
    rows = [(e, s, t) for e in episodes for s, t in zip(e.steps, step_targets(e, c_bar, aec), strict=True)]
    zx = encode_steps(encoder, episodes)
    return TrainingSet(
        zx=zx,
        model_idx=np.array([pool.index(s["served_model"]) for _, s, _ in rows], dtype=np.int64),
        score=np.array([t.score for *_, t in rows], dtype=np.float32),
        cost=np.array([t.cost for *_, t in rows], dtype=np.float32),
        weight=np.array([t.weight for *_, t in rows], dtype=np.float32),
        episode=np.array([e.session_id for e, _, _ in rows]),
    )


def holdout_split(episodes: Sequence[Episode], seed: int) -> tuple[list[Episode], list[Episode]]:
    """(train, held out): a seeded share of whole sessions; none held out with fewer than two."""
    if len(episodes) < 2:
        return list(episodes), []
    order = np.random.default_rng(seed).permutation(len(episodes))
    n_out = max(1, round(HOLDOUT_FRACTION * len(episodes)))
    held = {int(i) for i in order[:n_out]}
    return [e for i, e in enumerate(episodes) if i not in held], [
        e for i, e in enumerate(episodes) if i in held
    ]


def prior_mse(data: Any, pool: Sequence[ModelSpec]) -> float:
    """How well the pool's quality priors (the policy before any checkpoint) predict the score targets."""
    priors = np.array([m.quality_prior if m.quality_prior is not None else 0.5 for m in pool])
    return float(np.average((priors[data.model_idx] - data.score) ** 2, weights=data.weight))


def checkpoint_mse(checkpoint: Any, data: Any, pool: Sequence[str]) -> float:
    score, _ = checkpoint.predict(np.asarray(data.zx, dtype=np.float32), list(pool))
    picked = score[np.arange(len(data.model_idx)), data.model_idx]
    return float(np.average((picked - data.score) ** 2, weights=data.weight))


def train_from_db(
    loaded: LoadedConfig,
    database: Path | str,
    *,
    force: bool = False,
    seed: int = 0,
    train_config: TrainConfig | None = None,
    estimator: str = "auto",
) -> dict[str, Any]:
    """Train, register and (if it passes the gate) promote a checkpoint; returns what happened.
    `train_config` defaults to `TrainConfig(seed=seed)`; `estimator` is a kind of `fit_estimator`."""
    from mcp_router.routing.mtrouter.train import fit_estimator

    started = time.monotonic()
    config = loaded.config
    mt = config.tool("llm_complete").mtrouter
    specs = config.model_pool()
    names = [m.name for m in specs]
    store = Store(database)
    try:
        model_log = ModelLog(store)
        rows = model_log.steps_with_outcomes()
        episodes = episodes_from_steps(rows, names)
        if not episodes:
            raise NothingToTrain(
                f"{store.display} has {len(rows)} llm_complete steps and none is rated yet; rate "
                "answers with `feedback` (or enable the judge) before training"
            )
        needed = sessions_needed()
        if len(episodes) < needed and not force:
            raise NothingToTrain(
                f"{store.display} has {len(episodes)} rated llm_complete session(s); the promotion check "
                f"holds {MIN_HELD_OUT} out and needs {needed}: rate {needed - len(episodes)} more "
                "session(s), or pass --force to promote without a held-out check"
            )
        train_eps, held_eps = holdout_split(episodes, seed)
        c_bar = float(np.mean([e.cost_usd for e in train_eps]))
        encoder = build_encoder(mt.embedder, mt.packing, cache=model_log, minilm=load_model)
        data = training_set(train_eps, names, encoder, c_bar)
        current_row = model_log.promoted()
        current = load_checkpoint(current_row, specs, encoder.encoder_id)
        candidate = fit_estimator(
            data,
            specs,
            estimator=estimator,
            encoder_id=encoder.encoder_id,
            c_bar=c_bar,
            config=train_config or TrainConfig(seed=seed),
            init=current,
            extra_meta={"watermark": max(r["step_id"] for r in rows), "source": store.display},
        )
        held = training_set(held_eps, names, encoder, c_bar) if held_eps else None
        settings = PolicySettings(mt.lambda_, mt.typical_conversation_cost_usd, seed=seed)
        gate = _gate(candidate, current, current_row, held_eps, held, specs, settings)
        promote = force or gate["passes"]
        path = _checkpoint_dir(loaded, database) / f"mtrouter-{candidate.checkpoint_id}.pt"
        candidate.save(path)
        model_log.register_checkpoint(
            {
                "checkpoint_id": candidate.checkpoint_id,
                "path": str(path),
                "parent_id": current_row["checkpoint_id"] if current_row else None,
                "created_at": time.time(),
                "pool": names,
                "encoder_id": encoder.encoder_id,
                "meta": {"c_bar": c_bar, "episodes": len(train_eps), "steps": len(data)},
                "validation": {**candidate.meta.get("validation", {}), "gate": gate},
                "status": "candidate",
            }
        )
        if promote:
            model_log.promote(candidate.checkpoint_id)
        else:
            model_log.set_status(candidate.checkpoint_id, "rejected")
        _prune(model_log)
        return {
            "checkpoint_id": candidate.checkpoint_id,
            "path": str(path),
            "promoted": promote,
            "forced": force and not gate["passes"],
            "gate": gate,
            "estimator": {"requested": estimator, "chosen": candidate.estimator},
            "episodes": {"train": len(train_eps), "held_out": len(held_eps)},
            "steps": len(data),
            "c_bar_usd": c_bar,
            "seconds": round(time.monotonic() - started, 2),
        }
    finally:
        store.close()


def load_checkpoint(row: dict[str, Any] | None, specs: Sequence[ModelSpec], encoder_id: str) -> Any:
    """The registered checkpoint `row` fitted to the configured pool, or None when there is none or the
    server could not serve it either (unreadable, another pool, another encoder): the server then
    keeps to the priors, so they are the policy in force."""
    from mcp_router.routing.mtrouter.checkpoint import Checkpoint

    if row is None:
        return None
    try:
        checkpoint = Checkpoint.load(Path(row["path"])).with_pool(specs)
    except (OSError, ValueError) as exc:
        log.warning("checkpoint %s cannot be used (%s); comparing with the prior", row["checkpoint_id"], exc)
        return None
    if checkpoint.meta.get("encoder_id") != encoder_id:
        log.warning(
            "checkpoint %s embeds with %s, the config with %s; comparing with the prior",
            row["checkpoint_id"],
            checkpoint.meta.get("encoder_id"),
            encoder_id,
        )
        return None
    return checkpoint


def _gate(
    candidate: Any,
    current: Any,
    current_row: dict[str, Any] | None,
    held_eps: Sequence[Episode],
    held: Any,
    specs: Sequence[ModelSpec],
    settings: PolicySettings,
) -> dict[str, Any]:
    """Both checks on the held-out sessions against the policy in force (the checkpoint, else the
    priors): held-out MSE, and the doubly robust value of `log_evaluation.dr_verdict`."""
    if held is None:  # only with --force: nothing to compare on, so it never passes on its own
        return {"passes": False, "reason": "no held-out session"}
    names = [s.name for s in specs]
    baseline = checkpoint_mse(current, held, names) if current is not None else prior_mse(held, specs)
    mse = checkpoint_mse(candidate, held, names)
    mse_gate = {
        "passes": mse <= baseline * PROMOTION_TOLERANCE + 1e-12,
        "held_out_mse": round(mse, 6),
        "baseline_mse": round(baseline, 6),
    }
    policy = f"checkpoint {current_row['checkpoint_id']}" if current is not None and current_row else "prior"
    try:
        evaluation = logged_evaluation(held_eps, names, held.zx, float(candidate.meta["c_bar"]))
        dr_gate = dr_verdict(compare_policies(evaluation, candidate, current, specs, settings), policy)
    except ValueError as exc:  # e.g. every held-out step chose a model that left the pool
        dr_gate = {"passes": True, "baseline": policy, "note": f"not estimated: {exc}"}
    reasons = [
        *([] if mse_gate["passes"] else [f"held-out MSE {mse:.6f} > {PROMOTION_TOLERANCE} x {baseline:.6f}"]),
        *([] if dr_gate["passes"] else [dr_gate["reason"]]),
    ]
    return {
        "passes": not reasons,
        **({"reason": "; ".join(reasons)} if reasons else {}),
        "baseline": "checkpoint" if current is not None else "prior",
        "mse": mse_gate,
        "dr": dr_gate,
    }


def _checkpoint_dir(loaded: LoadedConfig, database: Path | str) -> Path:
    """The configured folder, else `checkpoints/` beside a SQLite file or in the user data dir."""
    configured = loaded.config.tool("llm_complete").mtrouter.checkpoint_dir
    beside = database.parent if isinstance(database, Path) else default_data_dir()
    folder = Path(configured).expanduser() if configured else beside / "checkpoints"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _prune(model_log: ModelLog) -> None:
    """Keep the newest checkpoints and the promoted one; older files go, their rows stay as history."""
    from mcp_router.routing.mtrouter.checkpoint import sidecar_path

    for row in model_log.checkpoints(where="status != 'promoted'", limit=1000)[KEEP_CHECKPOINTS:]:
        for path in (Path(row["path"]), sidecar_path(Path(row["path"]))):
            path.unlink(missing_ok=True)
