"""Query features x for the contextual routers: cheap text features plus a small fixed projection of
the MiniLM sentence embedding, L2-normalised (d = 25).

The projection is a seeded Gaussian matrix, not a fitted PCA, so it needs no training data, is the
same in every process and benchmark, and is versioned by `FEAT_VERSION`: a change of features
invalidates stored observations (they are keyed by the version).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence

import numpy as np

FEAT_VERSION = "f1-text9-proj16"
EMBED_DIM = 384
PROJ_DIM = 16
_WH = re.compile(r"^\s*(who|what|when|where|which|why|how)\b", re.IGNORECASE)
_YESNO = re.compile(
    r"^\s*(is|are|was|were|do|does|did|can|could|should|would|will|has|have)\b", re.IGNORECASE
)
_RECENT = re.compile(r"\b(latest|today|now|current|recent|this (week|month|year)|20[2-9]\d)\b", re.IGNORECASE)
_CAPITAL = re.compile(r"\b[A-Z][a-zA-Z]+")
TEXT_FEATURES = 9


def text_features(text: str) -> list[float]:
    tokens = text.split()
    n = max(len(tokens), 1)
    return [
        1.0,  # bias
        math.log1p(len(tokens)) / 5.0,
        float(any(ch.isdigit() for ch in text)),
        float(bool(_RECENT.search(text))),
        float(bool(_WH.search(text))),
        float(bool(_YESNO.search(text))),
        float("?" not in text and len(tokens) <= 4),  # keyword-style query
        sum(ord(ch) > 127 for ch in text) / max(len(text), 1),  # non-Latin script share
        len(_CAPITAL.findall(text)) / n,  # named-entity density (capitalised words)
    ]


class Featurizer:
    """texts (+ their MiniLM embeddings) → unit-norm feature rows of dimension `dim`."""

    def __init__(
        self, embed: Callable[[Sequence[str]], np.ndarray] | None = None, seed: int = 20260514
    ) -> None:
        self.embed = embed
        rng = np.random.default_rng(seed)
        self.projection = rng.standard_normal((EMBED_DIM, PROJ_DIM)) / math.sqrt(PROJ_DIM)
        self.version = FEAT_VERSION

    @property
    def dim(self) -> int:
        return TEXT_FEATURES + PROJ_DIM

    def transform(self, texts: Sequence[str], embeddings: np.ndarray | None = None) -> np.ndarray:
        if embeddings is None and self.embed is not None and texts:
            embeddings = self.embed(list(texts))
        cheap = np.array([text_features(t) for t in texts], dtype=np.float64).reshape(
            len(texts), TEXT_FEATURES
        )
        if embeddings is None:
            projected = np.zeros((len(texts), PROJ_DIM))
        else:
            projected = np.asarray(embeddings, dtype=np.float64) @ self.projection
        x = np.hstack([cheap, projected])
        return x / np.linalg.norm(x, axis=1, keepdims=True)

    def __call__(self, text: str) -> np.ndarray:
        return self.transform([text])[0]


def bias_vector(dim: int) -> np.ndarray:
    """The feature vector of a request with no context: the bias alone."""
    x = np.zeros(dim)
    x[0] = 1.0
    return x
