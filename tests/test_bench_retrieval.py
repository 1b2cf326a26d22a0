"""The retrieval benchmark's data and real arms (SciFact + bm25s + MiniLM: marked slow)."""

from __future__ import annotations

import numpy as np
import pytest

from mcp_router.bench import paths
from mcp_router.bench.retrieval import ARMS, SciFact, compute_arm_table, load_scifact


def scifact_or_skip() -> SciFact:
    try:
        return load_scifact(paths.data_dir() / "scifact")
    except FileNotFoundError as exc:
        pytest.skip(f"SciFact not available: {exc}")


@pytest.mark.slow
def test_scifact_has_all_test_and_train_queries_with_qrels():
    data = scifact_or_skip()
    assert len(data.query_ids) == 1109
    assert (data.query_split.count("test"), data.query_split.count("train")) == (300, 809)
    assert len(data.doc_ids) == 5183
    assert all(data.qrels)
    assert len(set(data.query_ids)) == 1109


@pytest.mark.slow
def test_real_arms_on_a_small_subset():
    """Every arm ranks for real; the NDCG table is in [0, 1], compute times are measured and positive."""
    full = scifact_or_skip()
    data = full.subset(8)  # 8 queries, their relevant documents and every 40th other one (~140 docs)
    assert len(data.query_ids) == 8 and len(data.doc_ids) < 200
    assert all(d in data.doc_ids for q in data.qrels for d in q)
    table = compute_arm_table(data, progress=False)
    assert table.ndcg.shape == (8, len(ARMS))
    assert np.all((table.ndcg >= 0) & (table.ndcg <= 1))
    # on a small corpus that contains every relevant document, the full-text arms find most of them
    assert table.ndcg[:, ARMS.index("bm25")].mean() > 0.5
    assert table.ndcg[:, ARMS.index("hybrid")].mean() > 0.5
    assert np.all(table.compute_s > 0)
    # hybrid runs both bm25 and dense, so it costs at least as much as dense (up to timer noise)
    assert table.compute_s[ARMS.index("hybrid")] > 0.8 * table.compute_s[ARMS.index("dense")]
    assert table.embeddings.shape == (8, 384)
    assert np.allclose(np.linalg.norm(table.embeddings, axis=1), 1.0, atol=1e-4)
