"""`mcp-router train --from-db`: fit an MTRouter checkpoint on the server's own `llm_complete` logs and
promote it only if it does not predict held-out conversations worse than the policy in force.

A session is one episode. Its outcome S is the newest rating (feedback, judge or implicit) of its
last rated step; steps after that step have no outcome yet and are left out, so unrated turns never
pull the estimates toward a made-up score. Each step's observation is what the next step's history
added after the reply (the error rules of the annealed error cost run on it).
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mcp_router.config import LoadedConfig, default_data_dir
from mcp_router.routing.mtrouter.pool import ModelSpec
from mcp_router.routing.mtrouter.router import build_encoder, observation
from mcp_router.routing.mtrouter.targets import AECConfig, EpisodeStep, episode_targets
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


@dataclass(frozen=True)
class Episode:
    session_id: str
    steps: list[dict[str, Any]]  # rated prefix of the session, in turn order
    score: float

    @property
    def cost_usd(self) -> float:
        return sum(s["cost_usd"] or 0.0 for s in self.steps)


def episodes_from_steps(rows: Sequence[dict[str, Any]], pool: Sequence[str]) -> list[Episode]:
    """Sessions cut at their last rated step; steps served by a model outside the pool are dropped."""
    sessions: defaultdict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        if row["status"] == "ok" and row["served_model"] in pool:
            sessions[row["session_id"]].append(row)
    episodes = []
    for session_id, steps in sessions.items():
        steps.sort(key=lambda s: (s["turn"], s["step_id"]))
        rated = [i for i, s in enumerate(steps) if s["outcome"] is not None]
        if rated:
            last = rated[-1]
            episodes.append(Episode(session_id, steps[: last + 1], float(steps[last]["outcome"])))
    return episodes


def step_targets(episode: Episode, c_bar: float, aec: AECConfig) -> list[Any]:
    steps = episode.steps
    logged = [
        EpisodeStep(
            model=s["served_model"],
            cost_usd=float(s["cost_usd"] or 0.0),
            observation=observation(steps[i + 1]["history"]) if i + 1 < len(steps) else None,
            # a fallback served a model the policy did not pick: its propensity is unknown (taken as 1)
            propensity=s["propensity"] if s["served_model"] == s["chosen_model"] else 1.0,
        )
        for i, s in enumerate(steps)
    ]
    return episode_targets(logged, episode.score, c_bar, aec)


def training_set(episodes: Sequence[Episode], pool: Sequence[str], encoder: Any, c_bar: float) -> Any:
    from mcp_router.routing.mtrouter.train import TrainingSet

    aec = AECConfig()
    rows = [(e, s, t) for e in episodes for s, t in zip(e.steps, step_targets(e, c_bar, aec), strict=True)]
    zx = encoder.encode([s["history"] for _, s, _ in rows], [s["task"] for _, s, _ in rows])
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
    loaded: LoadedConfig, database: Path | str, *, force: bool = False, seed: int = 0
) -> dict[str, Any]:
    """Train, register and (if it passes the gate) promote a checkpoint; returns what happened."""
    from mcp_router.routing.mtrouter.train import TrainConfig, fit

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
        current = _load(current_row, specs)
        candidate = fit(
            data,
            specs,
            encoder_id=encoder.encoder_id,
            c_bar=c_bar,
            config=TrainConfig(seed=seed),
            init=current
            if current is not None and current.meta.get("encoder_id") == encoder.encoder_id
            else None,
            extra_meta={"watermark": max(r["step_id"] for r in rows), "source": store.display},
        )
        held = training_set(held_eps, names, encoder, c_bar) if held_eps else None
        gate = _gate(candidate, current, held, specs, names)
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
            "episodes": {"train": len(train_eps), "held_out": len(held_eps)},
            "steps": len(data),
            "c_bar_usd": c_bar,
            "seconds": round(time.monotonic() - started, 2),
        }
    finally:
        store.close()


def _load(row: dict[str, Any] | None, specs: Sequence[ModelSpec]) -> Any:
    """The promoted checkpoint fitted to the configured pool, or None (then the priors are the baseline)."""
    from mcp_router.routing.mtrouter.checkpoint import Checkpoint

    if row is None:
        return None
    try:
        return Checkpoint.load(Path(row["path"])).with_pool(specs)
    except (OSError, ValueError) as exc:
        log.warning(
            "the promoted checkpoint %s cannot be used (%s); comparing with the prior",
            row["checkpoint_id"],
            exc,
        )
        return None


def _gate(
    candidate: Any, current: Any, held: Any, specs: Sequence[ModelSpec], names: Sequence[str]
) -> dict[str, Any]:
    """Held-out MSE of the candidate against the policy in force (the checkpoint, else the priors)."""
    if held is None:  # only with --force: nothing to compare on, so it never passes on its own
        return {"passes": False, "reason": "no held-out session"}
    baseline = checkpoint_mse(current, held, names) if current is not None else prior_mse(held, specs)
    mse = checkpoint_mse(candidate, held, names)
    return {
        "passes": mse <= baseline * PROMOTION_TOLERANCE + 1e-12,
        "held_out_mse": round(mse, 6),
        "baseline": "checkpoint" if current is not None else "prior",
        "baseline_mse": round(baseline, 6),
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
