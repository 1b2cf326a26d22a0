"""Recency pooling for the `turns` packing: chunk embeddings -> one fixed-size history vector.

MiniLM sees 254 tokens, so a long conversation cannot be one string. The `turns` packing embeds every
chunk of every recent message separately (history.render_turns) and pools here, with numpy only, so
the call path adds no model work beyond embedding the chunks the cache lacks.

- A text split into chunks is the L2-normalised mean of its chunks: a long message counts once,
  not once per chunk.
- The context is the L2-normalised recency-weighted sum of its messages, weight `decay**age` with age
  0 for the newest message: the request being answered dominates, older turns still move the vector.
- The task stays its own half, as in `split`, so z_x keeps `split`'s shape [task ; context] and a
  conversation with no context has a zero second half.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def recency_weights(n: int, decay: float) -> np.ndarray:
    """Weights of n messages, oldest first: decay**(n-1), ..., decay, 1."""
    if not 0 < decay <= 1:
        raise ValueError(f"recency decay must be in (0, 1], not {decay}")
    return (decay ** np.arange(n - 1, -1, -1)).astype(np.float32)


def unit(vector: np.ndarray) -> np.ndarray:
    """`vector` scaled to length 1; the zero vector stays zero (nothing to point at)."""
    norm = float(np.linalg.norm(vector))
    return (vector / norm).astype(np.float32) if norm > 0 else np.zeros_like(vector, dtype=np.float32)


def text_vector(chunks: np.ndarray) -> np.ndarray:
    """One text's vector from its chunks [k, dim]: a single chunk is returned as embedded (so a task
    that fits one window gets exactly `split`'s vector), several are averaged and re-normalised."""
    return chunks[0].astype(np.float32) if len(chunks) == 1 else unit(chunks.mean(axis=0))


def pool_history(
    task_chunks: np.ndarray, message_chunks: Sequence[np.ndarray], decay: float, dim: int
) -> np.ndarray:
    """[text_vector(task) ; unit(Σ_i w_i · text_vector(message i))], float32 [2·dim].

    `task_chunks` is [k, dim] (k ≥ 1); `message_chunks` holds one [k_i, dim] array per message, oldest
    first; no messages gives a zero context half."""
    task = text_vector(task_chunks)
    context = np.zeros(dim, dtype=np.float32)
    if message_chunks:
        messages = np.stack([text_vector(chunks) for chunks in message_chunks])
        context = unit(recency_weights(len(message_chunks), decay) @ messages)
    return np.concatenate([task, context])
