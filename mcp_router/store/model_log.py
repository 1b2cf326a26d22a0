"""What MTRouter keeps in the router database: per-session spend, labelled steps, checkpoints, and
the history-embedding cache.

The rows themselves are written by `Store.record_call` (a step goes in with its call); this module
holds the queries the model router and its trainer need, so `store.py` stays about calls and arms.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from mcp_router.store import messages
from mcp_router.store.store import Store

# The outcome of a call: its newest quality signal still in force. Explicit feedback has already
# superseded any judge or implicit signal of the same call; failed attempts are not outcomes of a step.
# Looked up per step through idx_quality_obs_call_id, not by grouping every call's signals.
_OUTCOME = """
    SELECT MAX(q.id) FROM quality_obs q
    WHERE q.call_id = s.call_id AND q.superseded_ts IS NULL AND q.source != 'failure'
"""


class ModelLog:
    def __init__(self, store: Store) -> None:
        self.store = store

    # -- sessions ---------------------------------------------------------------------------------

    def sessions(self, limit: int = 50) -> list[dict[str, Any]]:
        """Spend per session, most recent first (kept when old steps are pruned)."""
        return self.store.query(
            "SELECT session_id, steps, spent_usd, budget_usd, updated_at AS last_ts FROM sessions "
            "ORDER BY updated_at DESC LIMIT ?",
            [limit],
        )

    def usage_by_model(self) -> dict[str, dict[str, Any]]:
        """Steps and spend per chosen model, over the steps still stored."""
        rows = self.store.query(
            "SELECT chosen_model, COUNT(*) AS n, SUM(cost_usd) AS cost_usd FROM llm_steps "
            "GROUP BY chosen_model"
        )
        return {r["chosen_model"]: {**r, "cost_usd": round(r["cost_usd"] or 0.0, 8)} for r in rows}

    # -- training data ----------------------------------------------------------------------------

    def steps_with_outcomes(self) -> list[dict[str, Any]]:
        """Every step in order, with its call's outcome (None when nothing rated it) and its
        conversation (`history`, a message list) decoded."""
        with self.store.backend.read() as db:
            rows = db.query(
                "SELECT s.*, o.reward AS outcome, o.source AS outcome_source FROM llm_steps s "
                f"LEFT JOIN quality_obs o ON o.id = ({_OUTCOME}) ORDER BY s.step_id"
            )
            rows = messages.decode_histories(db, rows)
        for row in rows:
            for key in ("q_values", "excluded", "obs_rules"):
                row[key] = json.loads(row[key]) if row[key] else None
        return rows

    # -- checkpoints ------------------------------------------------------------------------------

    def register_checkpoint(self, row: Mapping[str, Any]) -> None:
        with self.store.transaction() as db:
            values = {
                **row,
                "pool": json.dumps(row["pool"]),
                "meta": json.dumps(row["meta"]),
                "validation": json.dumps(row["validation"]),
            }
            db.execute(
                f"INSERT INTO llm_checkpoints ({', '.join(values)}) VALUES ({', '.join('?' * len(values))})",
                list(values.values()),
            )

    def promote(self, checkpoint_id: str) -> None:
        """Make `checkpoint_id` the one servers load; the previous one is retired in the same write."""
        with self.store.transaction() as db:
            db.execute("UPDATE llm_checkpoints SET status = 'retired' WHERE status = 'promoted'")
            db.execute(
                "UPDATE llm_checkpoints SET status = 'promoted' WHERE checkpoint_id = ?", [checkpoint_id]
            )

    def set_status(self, checkpoint_id: str, status: str) -> None:
        with self.store.transaction() as db:
            db.execute(
                "UPDATE llm_checkpoints SET status = ? WHERE checkpoint_id = ?", [status, checkpoint_id]
            )

    def promoted(self) -> dict[str, Any] | None:
        rows = self.checkpoints(where="status = 'promoted'", limit=1)
        return rows[0] if rows else None

    def newest_candidate(self) -> dict[str, Any] | None:
        """The newest checkpoint that is not the promoted one (a candidate, or one the gate rejected)."""
        rows = self.checkpoints(where="status IN ('candidate', 'rejected')", limit=1)
        return rows[0] if rows else None

    def checkpoint(self, checkpoint_id: str) -> dict[str, Any] | None:
        rows = self.checkpoints(where="checkpoint_id = ?", limit=1, params=[checkpoint_id])
        return rows[0] if rows else None

    def checkpoints(
        self, where: str = "TRUE", limit: int = 10, params: Sequence[Any] = ()
    ) -> list[dict[str, Any]]:
        """Registered checkpoints, newest first; `where` is SQL with `?` marks bound from `params`."""
        rows = self.store.query(
            f"SELECT * FROM llm_checkpoints WHERE {where} ORDER BY created_at DESC LIMIT ?", [*params, limit]
        )
        for row in rows:
            for key in ("pool", "meta", "validation"):
                row[key] = json.loads(row[key]) if row[key] else None
        return rows

    # -- embedding cache (routing.mtrouter.embed.EmbeddingCache) ----------------------------------

    def get_many(self, embedder_id: str, hashes: Sequence[str]) -> dict[str, np.ndarray]:
        found: dict[str, np.ndarray] = {}
        for chunk in messages.chunks(list(hashes)):
            marks = ",".join("?" * len(chunk))
            for row in self.store.query(
                "SELECT text_hash, vec FROM embedding_cache "
                f"WHERE embedder_id = ? AND text_hash IN ({marks})",
                [embedder_id, *chunk],
            ):
                found[row["text_hash"]] = np.frombuffer(row["vec"], dtype="<f4").copy()
        return found

    def put_many(self, embedder_id: str, items: Mapping[str, np.ndarray]) -> None:
        """Cache these vectors; `created_at` dates them, as pruning keeps the newest rows."""
        if not items:
            return
        now = time.time()
        with self.store.transaction() as db:
            for digest, vec in items.items():
                db.execute(
                    "INSERT INTO embedding_cache (embedder_id, text_hash, dim, vec, created_at) "
                    "VALUES (?, ?, ?, ?, ?) ON CONFLICT (embedder_id, text_hash) DO UPDATE SET "
                    "dim = excluded.dim, vec = excluded.vec, created_at = excluded.created_at",
                    (embedder_id, digest, int(vec.shape[0]), np.asarray(vec, dtype="<f4").tobytes(), now),
                )
