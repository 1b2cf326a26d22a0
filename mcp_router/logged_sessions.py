"""The server's `llm_complete` logs as episodes: which steps carry an outcome, and the per-step
targets they give. Shared by training (`model_training`) and off-policy evaluation (`log_evaluation`).

A session is one episode. Its outcome S is the newest rating (feedback, judge or implicit) of its
last rated step; steps after that step have no outcome yet and are left out, so unrated turns never
pull the estimates toward a made-up score. Each step's observation is what the next step's history
added after the reply (the error rules of the annealed error cost run on it).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from mcp_router.routing.mtrouter.router import observation
from mcp_router.routing.mtrouter.targets import AECConfig, EpisodeStep, StepTarget, episode_targets


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


def step_targets(episode: Episode, c_bar: float, aec: AECConfig) -> list[StepTarget]:
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


def encode_steps(encoder: Any, episodes: Sequence[Episode]) -> np.ndarray:
    """z_x of every step of `episodes`, in episode then turn order."""
    steps = [s for e in episodes for s in e.steps]
    return encoder.encode([s["history"] for s in steps], [s["task"] for s in steps])
