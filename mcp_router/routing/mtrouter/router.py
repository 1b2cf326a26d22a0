"""MTRouter at serving time: the conversation so far → the model that answers this turn.

Before any checkpoint is promoted, Q comes from the pool's quality priors and prices (stage `prior`,
no embedding needed). Once `mcp-router train` promotes one, the history is embedded and the trained
estimator gives Q = ŝ − λ·(exp(ĉ) − 1) (stage `checkpoint`). Either way the choice is β-mixed and
its propensity is returned for the log. torch and the embedder load only when a checkpoint does.
A checkpoint is served with the encoder it was trained with (its `encoder_id`: embedder, packing,
window); the configured `embedder`/`packing` are what the next `train --from-db` uses.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mcp_router.routing.mtrouter.policy import Admission, admit, fallback_order, pick, prior_values
from mcp_router.routing.mtrouter.pool import ModelSpec
from mcp_router.routing.mtrouter.targets import fired_rules

log = logging.getLogger("mcp_router.mtrouter")
Message = Mapping[str, str]


@dataclass(frozen=True)
class ModelParams:
    lam: float = 1.0
    beta: float = 0.9
    stay_bonus: float = 0.0
    typical_cost_usd: float = 0.002
    fallback_model: str | None = None
    embedder: str = "minilm"
    packing: str = "split"
    seed: int = 0


class NoModelAdmissible(Exception):
    """No model of the pool may serve this call; the message says why for each and what to change."""


@dataclass(frozen=True)
class ModelDecision:
    model: str
    order: list[str]  # models to try: the choice, then fallbacks
    propensity: float
    policy: str
    stage: str  # prior | checkpoint
    checkpoint_id: str | None
    q_values: dict[str, float]
    admission: Admission
    turn: int
    task: str | None
    obs_rules: list[str]


def turn_of(messages: Sequence[Message]) -> int:
    """The step index: how many assistant replies the conversation already has."""
    return sum(1 for m in messages if m["role"] == "assistant")


def observation(messages: Sequence[Message]) -> str:
    """The messages that arrived since the last assistant reply: what the previous step led to."""
    tail: list[str] = []
    for m in reversed(messages):
        if m["role"] == "assistant":
            break
        tail.append(m["content"])
    return "\n".join(reversed(tail))


def build_encoder(
    embedder: str, packing: str, cache: Any = None, minilm: Callable[[], Any] | None = None
) -> Any:
    """The history encoder the config names; `minilm` loads the shared MiniLM (see embed.py)."""
    from mcp_router.routing.mtrouter.embed import (
        HashingEmbedder,
        HistoryEncoder,
        MiniLMEmbedder,
        require_loader,
    )

    backend = HashingEmbedder() if embedder == "hashing" else MiniLMEmbedder(require_loader(minilm))
    return HistoryEncoder(backend, packing=packing, cache=cache)


class ModelRouter:
    def __init__(
        self,
        pool: Sequence[ModelSpec],
        params: ModelParams,
        promoted: Callable[[], Mapping[str, Any] | None] = lambda: None,
        cache: Any = None,
        minilm: Callable[[], Any] | None = None,
    ) -> None:
        self.pool = list(pool)
        self.params = params
        self.promoted = promoted  # the promoted checkpoint's registry row, read on every decision
        self.cache = cache
        self.minilm = minilm
        self.rng = random.Random(params.seed)
        self.checkpoint: Any = None
        self.checkpoint_id: str | None = None
        self.encoder: Any = None
        self._tried: str | None = None  # a checkpoint that failed to load is not retried every call
        self._lock = threading.Lock()  # decisions run in worker threads; one loads a checkpoint

    @property
    def embeds(self) -> bool:
        """Whether a decision embeds the history (milliseconds: run it in a thread); on the priors a
        decision is pure arithmetic over the pool."""
        return self.checkpoint is not None

    def refresh(self) -> None:
        """Load the promoted checkpoint if it changed (another process may have trained one). Blocking:
        the server calls it from a background thread, never on a decision."""
        row = self.promoted()
        if row is None or row["checkpoint_id"] == self.checkpoint_id:
            return
        with self._lock:  # waits for a load already under way (the start-up warm-up)
            if row["checkpoint_id"] not in (self.checkpoint_id, self._tried):
                self._load(row)

    def _load(self, row: Mapping[str, Any]) -> None:
        self._tried = row["checkpoint_id"]
        from mcp_router.routing.mtrouter.checkpoint import Checkpoint
        from mcp_router.routing.mtrouter.embed import encoder_from_id

        try:
            checkpoint = Checkpoint.load(Path(row["path"])).with_pool(self.pool)
            # The checkpoint's own encoder, packing included: a checkpoint trained before the configured
            # packing changed keeps serving as trained, and one from other embedder weights is refused.
            encoder = encoder_from_id(str(checkpoint.meta.get("encoder_id")), self.cache, self.minilm)
            encoder.embedder.embed(["warm-up"])  # load the embedder here, not on the first decision
        except (OSError, ValueError) as exc:
            log.warning("checkpoint %s not used (keeping the previous policy): %s", row["checkpoint_id"], exc)
            return
        if encoder.packing != self.params.packing:
            log.info(
                "checkpoint %s embeds with its own packing %r; the configured %r applies from the next "
                "checkpoint `mcp-router train --from-db` trains",
                row["checkpoint_id"],
                encoder.packing,
                self.params.packing,
            )
        self.checkpoint, self.checkpoint_id, self.encoder = checkpoint, row["checkpoint_id"], encoder
        log.info("MTRouter: serving checkpoint %s", self.checkpoint_id)

    def decide(
        self,
        messages: Sequence[Message],
        max_tokens: int,
        remaining_usd: float | None,
        task: str | None = None,
        last_model: str | None = None,
    ) -> ModelDecision:
        """Blocking when `embeds` (call it from a worker thread then); microseconds on the priors."""
        admission = admit(self.pool, messages, max_tokens, remaining_usd)
        if not admission.allowed:
            reasons = "; ".join(f"{m}: {why}" for m, why in admission.excluded.items())
            raise NoModelAdmissible(reasons or "the model pool is empty")
        # one read: a checkpoint loaded by another thread mid-decision must not mix with this one
        checkpoint, checkpoint_id, encoder = self.checkpoint, self.checkpoint_id, self.encoder
        if checkpoint is None:
            stage, q_values = (
                "prior",
                prior_values(self.pool, admission, self.params.lam, self.params.typical_cost_usd),
            )
        else:
            zx = encoder.encode([list(messages)], [task])
            stage, q_values = "checkpoint", self._learned_values(checkpoint, zx, admission)
        chosen = pick(q_values, self.params.beta, self.rng, last_model, self.params.stay_bonus)
        return ModelDecision(
            model=chosen.model,
            order=fallback_order(chosen.model, q_values, self.pool, self.params.fallback_model),
            propensity=chosen.propensity,
            policy=chosen.policy,
            stage=stage,
            checkpoint_id=checkpoint_id,
            q_values={k: round(v, 6) for k, v in q_values.items()},
            admission=admission,
            turn=turn_of(messages),
            task=task,
            obs_rules=[rule.name for rule in fired_rules(observation(messages))],
        )

    def _learned_values(self, checkpoint: Any, zx: np.ndarray, admission: Admission) -> dict[str, float]:
        from mcp_router.routing.mtrouter.checkpoint import value

        names = [m.name for m in self.pool]
        score, cost = checkpoint.predict(np.asarray(zx, dtype=np.float32), names)
        q = value(score, cost, self.params.lam)[0]
        return {name: float(q[names.index(name)]) for name in admission.allowed}
