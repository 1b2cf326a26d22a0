"""MTRouter's model decision timed without MCP: on its priors, then with a promoted checkpoint.

The decision runs in the server's own `ModelRouter` (its pool, its MiniLM loader, its database as
checkpoint registry and embedding cache). The checkpoint is written here with random weights: its
predictions mean nothing, only its cost is measured. Its registry row is reused by the full-path
checkpoint rows (`paths.py`).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from mcp_router.bench.overhead.params import Params
from mcp_router.bench.overhead.seams import promote_checkpoint, server_model_router
from mcp_router.bench.overhead.setting import BUDGET_USD, MAX_TOKENS, Setup, queries
from mcp_router.bench.overhead.stats import Dist, rounded


def write_checkpoint(pool: Sequence[Any], model_params: Any, folder: Path) -> dict[str, Any]:
    """A randomly initialised MTRouter checkpoint for `pool`, with as many members as `train` gives
    one by default, written with `Checkpoint.save` and described as a registry row. Timing only: its
    predictions mean nothing."""
    import torch

    from mcp_router.routing.mtrouter.checkpoint import Checkpoint
    from mcp_router.routing.mtrouter.network import MTRouterNet
    from mcp_router.routing.mtrouter.pool import MetaNorm, meta_features, spec_to_dict
    from mcp_router.routing.mtrouter.router import build_encoder
    from mcp_router.routing.mtrouter.train_config import TrainConfig
    from providers.retrieve.embedder import load_model

    encoder = build_encoder(model_params.embedder, model_params.packing, minilm=load_model)
    norm = MetaNorm.fit(pool)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        meta = norm.apply(np.stack([meta_features(s) for s in pool]))
        net = MTRouterNet(encoder.dim, meta, members=TrainConfig().members).eval()
    checkpoint = Checkpoint(
        net=net,
        pool=tuple(s.name for s in pool),
        meta={
            "encoder_id": encoder.encoder_id,
            "meta_norm": norm.to_dict(),
            "specs": [spec_to_dict(s) for s in pool],
            "c_bar": 0.002,
            "source": "bench overhead (random weights)",
        },
    )
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "mtrouter-bench.pt"
    checkpoint.save(path)
    return {
        "checkpoint_id": checkpoint.checkpoint_id,
        "path": str(path),
        "parent_id": None,
        "created_at": time.time(),
        "pool": [s.name for s in pool],
        "encoder_id": encoder.encoder_id,
        "meta": {"c_bar": 0.002},
        "validation": {},
    }


def time_decisions(router: Any, histories: Sequence[list[dict[str, str]]]) -> tuple[Dist, Counter]:
    samples, stages = [], Counter()
    for messages in histories:
        started = time.perf_counter()
        decision = router.decide(messages, MAX_TOKENS, BUDGET_USD)
        samples.append(time.perf_counter() - started)
        stages[decision.stage] += 1
    return Dist.of(samples), stages


def conversation(turn: str) -> list[dict[str, str]]:
    return [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "Plan a three-day trip to Lisbon."},
        {
            "role": "assistant",
            "content": "Day one: Alfama and the castle. Day two: Belém. Day three: Sintra.",
        },
        {"role": "user", "content": turn},
    ]


def bench_mtrouter(params: Params, setup: Setup) -> tuple[dict[str, Any], dict[str, Any]]:
    """The server's MTRouter deciding on its priors (on the calling thread, as the server does), then,
    once a checkpoint is promoted, on a history whose embedding is cached (the same conversation
    again) or not (a turn never seen). Returns the report and the checkpoint's registry row."""
    db = setup.db("mtrouter-micro")
    with server_model_router(setup.config, db) as router:
        fixed = [conversation("And on a rainy day?")] * params.mt_prior_decisions
        prior, prior_stages = time_decisions(router, fixed)
        row = write_checkpoint(router.pool, router.params, setup.workdir / "checkpoints")
        promote_checkpoint(db, row)
        router.refresh()
        if router.checkpoint is None:
            raise RuntimeError("the bench checkpoint did not load; see the log above")
        fresh = [
            conversation(f"{q} (turn {i})") for i, q in enumerate(queries(params.mt_checkpoint_decisions, 2))
        ]
        cached, cached_stages, uncached, uncached_stages = time_in_worker(router, fixed[0], fresh)
    report = {
        "pool": [s.name for s in router.pool],
        "embedder": router.params.embedder,
        "packing": router.params.packing,
        "embedding_cache": "the server's (its database, through ModelLog)",
        "prior": {**prior.us(), "stages": dict(prior_stages)},
        "checkpoint_cached": {**cached.us(), "stages": dict(cached_stages)},
        "checkpoint_uncached": {**uncached.us(), "stages": dict(uncached_stages)},
        "history_embedding_p50_us": rounded((uncached.p50_s - cached.p50_s) * 1e6, 1),
    }
    return report, row


def time_in_worker(
    router: Any, same: list[dict[str, str]], fresh: Sequence[list[dict[str, str]]]
) -> tuple[Dist, Counter, Dist, Counter]:
    """Cached then uncached decisions, timed in one worker thread: the server runs an embedding
    decision in a worker thread (`ModelRouter.embeds`), and torch's intra-op threading behaves
    differently on the main thread (25x slower there on a busy 2-core machine, measured)."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="mtrouter-decide") as worker:
        worker.submit(router.decide, same, MAX_TOKENS, BUDGET_USD).result()  # later calls: cached
        cached = worker.submit(time_decisions, router, [same] * len(fresh)).result()
        uncached = worker.submit(time_decisions, router, fresh).result()
    return (*cached, *uncached)
