"""The torch-free MiniLM query encoder against sentence-transformers on the same packaged model."""

from __future__ import annotations

import math
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # the embedder must see these before it loads

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from providers.retrieve import query_encoder
from providers.retrieve.query_encoder import DIMENSION, QueryEncoder

ROOT = Path(__file__).resolve().parent.parent
LONG = " ".join(
    f"Lighthouse {i} stood on the rocky headland, its keeper trimming the wick every evening."
    for i in range(40)
)  # ~700 tokens: cut at 256, so truncation decides the vector
TEXTS = [
    "what is the capital of France?",
    "kitten",
    "How do I fix 'error: cannot borrow `x` as mutable more than once' in Rust?",
    "The borrow checker enforces ownership rules at compile time: one mutable reference or many shared "
    "references, never both. Lifetimes tie each reference to the scope of the value it points to, so "
    "a reference can never outlive its data.",
    LONG,
    "Café crème à Zürich — naïve façade, Ærøskøbing, 東京タワー, Ελληνικά, Привет мир",
    "Version 3.14.159 costs $1,299.99 (20% off!) on 2024-05-01; call +1-555-0100 #ref [a](b) <tag/>",
    "   ",
    "",
    "a",
]
# Measured: cosine 1 - 6e-8 at worst, largest coordinate difference 2.6e-7 (float32 rounding); batch
# against one-by-one differs by 1.9e-7.
MAX_ABS = 1e-5
BATCH_ABS = 2e-6


@pytest.fixture(scope="module")
def encoder() -> QueryEncoder:
    return QueryEncoder.load()


@pytest.fixture(scope="module")
def reference() -> np.ndarray:
    from providers.retrieve.embedder import embed

    return embed(TEXTS)


@pytest.mark.slow
def test_tokens_match_sentence_transformers(encoder: QueryEncoder) -> None:
    from providers.retrieve.embedder import load_model

    expected = load_model().tokenize(TEXTS)
    ids = [e.ids for e in encoder._tokenizer.encode_batch(TEXTS)]
    assert np.array_equal(np.array(ids), expected["input_ids"].numpy())
    assert len(ids[TEXTS.index(LONG)]) == 256


@pytest.mark.slow
def test_vectors_match_sentence_transformers(encoder: QueryEncoder, reference: np.ndarray) -> None:
    vectors = encoder.encode(TEXTS)
    assert vectors.shape == reference.shape == (len(TEXTS), DIMENSION)
    assert vectors.dtype == np.float32
    cosine = (vectors * reference).sum(axis=1)
    assert cosine.min() >= 0.9999, dict(zip(TEXTS, cosine, strict=True))
    assert np.abs(vectors - reference).max() <= MAX_ABS


def test_gelu_is_the_exact_erf_form() -> None:
    x = np.linspace(-10.0, 10.0, 40_001, dtype=np.float32)
    x64 = x.astype(np.float64)
    # x·Φ(x) in float64, Φ from erfc so that the negative side keeps its digits
    exact = x64 * np.array([math.erfc(-v / math.sqrt(2.0)) / 2.0 for v in x64])
    got = query_encoder.gelu(x)
    assert got.dtype == np.float32
    assert np.abs(got - exact).max() < 5e-7
    near = np.abs(x) < 4.0  # relative error where GELU is far from 0
    ulps = np.abs(got - exact) / np.spacing(np.abs(exact).astype(np.float32))
    assert ulps[near & (np.abs(exact) > 1e-30)].max() < 64
    assert np.array_equal(query_encoder.gelu(x[:40_000].reshape(8, -1, 2)), got[:40_000].reshape(8, -1, 2))


def test_batch_equals_one_by_one(encoder: QueryEncoder) -> None:
    batch = encoder.encode(TEXTS)
    single = np.stack([encoder.encode([text])[0] for text in TEXTS])
    assert np.abs(batch - single).max() <= BATCH_ABS
    assert np.abs(encoder.encode(TEXTS, batch_size=3) - batch).max() <= BATCH_ABS


def test_unit_norm_and_empty_input(encoder: QueryEncoder) -> None:
    vectors = encoder.encode(TEXTS)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-6)
    empty = encoder.encode([])
    assert empty.shape == (0, DIMENSION) and empty.dtype == np.float32


def test_threads_share_one_encoder(encoder: QueryEncoder) -> None:
    serial = [encoder.encode([text, LONG]) for text in TEXTS]
    with ThreadPoolExecutor(max_workers=4) as pool:
        parallel = list(pool.map(lambda text: query_encoder.shared().encode([text, LONG]), TEXTS))
    assert query_encoder.loaded()
    for a, b in zip(serial, parallel, strict=True):
        assert np.abs(a - b).max() <= BATCH_ABS


def test_imports_neither_torch_nor_transformers() -> None:
    script = (
        "import sys\n"
        "from providers.retrieve import query_encoder\n"
        "v = query_encoder.shared().encode(['is torch loaded?', 'no'])\n"
        "assert v.shape == (2, 384), v.shape\n"
        "print(sorted(m for m in ('torch', 'transformers', 'sentence_transformers') if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
