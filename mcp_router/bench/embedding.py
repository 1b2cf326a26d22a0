"""MiniLM embeddings of many texts for a benchmark, in batches, with a progress bar on stderr."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mcp_router.bench.report import ProgressBar

BATCH = 256


def embed_texts(texts: Sequence[str], label: str, progress: bool = True) -> np.ndarray:
    from providers.retrieve.embedder import DIMENSION, embed

    batches = [texts[i : i + BATCH] for i in range(0, len(texts), BATCH)]
    bar = ProgressBar(len(batches), label=label) if progress else None
    parts = []
    for batch in batches:
        parts.append(embed(batch))
        if bar:
            bar.update(1)
    if bar:
        bar.close()
    return np.concatenate(parts) if parts else np.zeros((0, DIMENSION), dtype=np.float32)
