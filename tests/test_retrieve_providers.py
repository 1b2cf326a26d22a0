"""Retrieval adapters over local collections: passage splitting, BM25, dense (MiniLM), hybrid (RRF)."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # the embedder must see these before it loads

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from providers import BadRequest, ProviderEnv
from providers.retrieve.collections import CollectionLibrary
from providers.retrieve.documents import read_folder, split_passages
from providers.retrieve.local import RRF_K, rrf
from providers.types import Passage, RetrieveRequest
from tests.providers_support import adapter

MARS = """# Mars

Mars is the fourth planet from the Sun. It is often called the Red Planet because iron oxide
dust gives its surface a reddish colour.

Olympus Mons, a shield volcano on Mars, is the tallest volcano in the Solar System.
"""

CATS = """Some notes before the title.

## Domestic cats

The domestic cat is a small carnivorous mammal. Cats purr, groom their fur and hunt mice.
"""

SOURDOUGH = """Sourdough bread is leavened by a starter culture of wild yeast and lactobacilli.
Feed the starter with flour and water, let the dough rise overnight, then bake it in a hot oven.
"""

RUST = """   ### The Rust borrow checker

The borrow checker enforces ownership rules at compile time: one mutable reference or many
shared references, never both.
"""

# One long paragraph-rich document: split into several passages.
LONG_PARAGRAPHS = [
    f"Paragraph {i} about the history of lighthouses and their keepers, lamps and lenses. " * 6
    for i in range(6)
]
LIGHTHOUSES = "# Lighthouses\n\n" + "\n\n".join(LONG_PARAGRAPHS)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("corpus")
    (root / "space").mkdir()
    (root / "space" / "mars.md").write_text(MARS, encoding="utf-8")
    (root / "animals").mkdir()
    (root / "animals" / "cats.markdown").write_text(CATS, encoding="utf-8")
    (root / "cooking.txt").write_text(SOURDOUGH, encoding="utf-8")
    (root / "rust.rst").write_text(RUST, encoding="utf-8")
    (root / "lighthouses.md").write_text(LIGHTHOUSES, encoding="utf-8")
    # not text: ignored
    (root / "picture.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)))
    (root / "data.json").write_text('{"planet": "Mars"}', encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def library(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> CollectionLibrary:
    """Shared by the module and indexed once up front (a server's indexer thread does this at start)."""
    empty = tmp_path_factory.mktemp("empty")
    (empty / "ignored.bin").write_bytes(b"\x00\x01")
    library = CollectionLibrary([("docs", corpus), ("empty", empty)], index_root=False)
    library.refresh()
    return library


@pytest.fixture
async def env(library: CollectionLibrary) -> AsyncIterator[ProviderEnv]:
    async with httpx.AsyncClient() as client:
        yield ProviderEnv(http=client, collections=library)


# --------------------------------------------------------------------------------------- split_passages


def test_split_packs_short_paragraphs_together() -> None:
    assert split_passages("one\n\ntwo\n\n\n\nthree", max_chars=100) == ["one\n\ntwo\n\nthree"]


def test_split_starts_a_new_passage_when_the_next_paragraph_does_not_fit() -> None:
    a, b, c = "a" * 40, "b" * 40, "c" * 40
    assert split_passages(f"{a}\n\n{b}\n\n{c}", max_chars=90) == [f"{a}\n\n{b}", c]
    # exactly at the limit still fits: 40 + 2 + 40 + 2 + 4 = 88 ≤ 88
    assert split_passages(f"{a}\n\n{b}\n\ndddd", max_chars=88) == [f"{a}\n\n{b}\n\ndddd"]


def test_split_ignores_blank_and_whitespace_only_paragraphs() -> None:
    assert split_passages("") == []
    assert split_passages("  \n\n \t \n\n") == []
    assert split_passages("  first  \n \t \n  second ", max_chars=100) == ["first\n\nsecond"]


def test_split_cuts_a_long_paragraph_on_whitespace() -> None:
    words = [f"word{i:03d}" for i in range(100)]  # 8 chars each
    passages = split_passages(" ".join(words), max_chars=50)
    assert len(passages) > 1
    assert all(len(p) <= 50 for p in passages)
    assert " ".join(passages).split() == words  # no word cut in half, none lost


def test_split_hard_cuts_a_paragraph_without_spaces() -> None:
    blob = "x" * 250
    assert split_passages(blob, max_chars=100) == ["x" * 100, "x" * 100, "x" * 50]


def test_split_flushes_the_current_passage_before_a_long_paragraph() -> None:
    passages = split_passages("short\n\n" + "y" * 30, max_chars=20)
    assert passages == ["short", "y" * 20, "y" * 10]


@settings(max_examples=150, deadline=None)
@given(
    text=st.text(alphabet=st.sampled_from("ab \n\t."), max_size=400),
    max_chars=st.integers(min_value=2, max_value=60),
)
def test_split_keeps_every_character_and_respects_the_limit(text: str, max_chars: int) -> None:
    passages = split_passages(text, max_chars=max_chars)
    assert all(p and p == p.strip() for p in passages)
    assert all(len(p) <= max_chars for p in passages)
    assert "".join("".join(passages).split()) == "".join(text.split())


# ------------------------------------------------------------------------------------------ read_folder


def test_read_folder_ids_paths_titles(corpus: Path) -> None:
    documents = read_folder("docs", corpus)
    ids = [d.id for d in documents]
    assert ids[:2] == ["animals/cats.markdown#0", "cooking.txt#0"]
    assert "space/mars.md#0" in ids and "rust.rst#0" in ids
    assert not any(i.startswith(("picture.png", "data.json")) for i in ids)

    by_path: dict[str, list] = {}
    for d in documents:
        by_path.setdefault(d.metadata["path"], []).append(d)
        assert d.id == f"{d.metadata['path']}#{d.metadata['chunk']}"
        assert d.metadata["collection"] == "docs"

    assert by_path["space/mars.md"][0].metadata["title"] == "Mars"
    # the first heading, not the first line
    assert by_path["animals/cats.markdown"][0].metadata["title"] == "Domestic cats"
    assert by_path["cooking.txt"][0].metadata["title"] == "cooking"  # no heading: the file stem
    assert by_path["rust.rst"][0].metadata["title"] == "The Rust borrow checker"  # indented ≤ 3 spaces

    chunks = by_path["lighthouses.md"]
    assert len(chunks) > 1
    assert [d.metadata["chunk"] for d in chunks] == list(range(len(chunks)))
    assert all(d.metadata["title"] == "Lighthouses" for d in chunks)
    assert chunks[0].text.startswith("# Lighthouses")
    assert all(len(d.text) <= 1200 for d in chunks)


def test_read_folder_of_mars_keeps_its_two_paragraphs_in_one_passage(corpus: Path) -> None:
    (mars,) = [d for d in read_folder("docs", corpus) if d.metadata["path"] == "space/mars.md"]
    assert mars.text == MARS.strip()


# --------------------------------------------------------------------------------------------- adapters

RELEVANT = [
    ("tallest volcano Olympus Mons on the red planet", "space/mars.md#0"),
    ("cats purr and hunt mice", "animals/cats.markdown#0"),
    ("how to feed a sourdough starter and bake bread", "cooking.txt#0"),
    ("borrow checker ownership mutable reference", "rust.rst#0"),
]


def _check_ranked(passages: list[Passage], expected_first: str) -> None:
    assert passages, "no passage returned"
    assert passages[0].id == expected_first
    scores = [p.score for p in passages]
    assert scores == sorted(scores, reverse=True)
    assert len({p.id for p in passages}) == len(passages)


@pytest.mark.anyio
@pytest.mark.parametrize(("query", "expected"), RELEVANT)
async def test_bm25_puts_the_relevant_passage_first(env: ProviderEnv, query: str, expected: str) -> None:
    passages = await adapter(env, "bm25").call(RetrieveRequest(query, "docs", k=3))
    _check_ranked(passages, expected)
    assert len(passages) <= 3
    assert all(p.score > 0 for p in passages)
    first = passages[0]
    assert first.metadata["path"] == expected.split("#")[0]
    assert first.text  # the passage itself, not a pointer


@pytest.mark.slow
@pytest.mark.anyio
@pytest.mark.parametrize("type_", ["dense", "hybrid"])
@pytest.mark.parametrize(("query", "expected"), RELEVANT)
async def test_dense_and_hybrid_put_the_relevant_passage_first(
    env: ProviderEnv, type_: str, query: str, expected: str
) -> None:
    passages = await adapter(env, type_).call(RetrieveRequest(query, "docs", k=3))
    _check_ranked(passages, expected)
    assert len(passages) == 3


@pytest.mark.slow
@pytest.mark.anyio
async def test_dense_matches_meaning_without_shared_words(env: ProviderEnv) -> None:
    passages = await adapter(env, "dense").call(RetrieveRequest("kitten", "docs", k=1))
    assert [p.id for p in passages] == ["animals/cats.markdown#0"]
    assert -1.0 <= passages[0].score <= 1.0


@pytest.mark.slow
@pytest.mark.anyio
@pytest.mark.parametrize("type_", ["bm25", "dense", "hybrid"])
async def test_k_larger_than_the_corpus(env: ProviderEnv, library: CollectionLibrary, type_: str) -> None:
    n = len(read_folder("docs", library.get("docs").root))
    passages = await adapter(env, type_).call(
        RetrieveRequest("lighthouse keepers and lenses", "docs", k=n + 50)
    )
    assert 0 < len(passages) <= n
    if type_ != "bm25":  # bm25 drops zero-score passages; dense and hybrid rank every passage
        assert len(passages) == n
    assert passages[0].metadata["path"] == "lighthouses.md"


@pytest.mark.anyio
@pytest.mark.parametrize("query", ["the and of", "   ", "", "?!"])
async def test_bm25_query_without_indexable_terms_returns_nothing(env: ProviderEnv, query: str) -> None:
    assert await adapter(env, "bm25").call(RetrieveRequest(query, "docs", k=5)) == []


@pytest.mark.anyio
async def test_bm25_query_of_unknown_words_returns_nothing(env: ProviderEnv) -> None:
    assert await adapter(env, "bm25").call(RetrieveRequest("xylophone zeppelin", "docs", k=5)) == []


@pytest.mark.slow
@pytest.mark.anyio
@pytest.mark.parametrize("type_", ["bm25", "dense", "hybrid"])
async def test_empty_collection_returns_nothing(env: ProviderEnv, type_: str) -> None:
    assert await adapter(env, type_).call(RetrieveRequest("mars", "empty", k=5)) == []


@pytest.mark.anyio
@pytest.mark.parametrize("type_", ["bm25", "dense", "hybrid"])
async def test_unknown_collection_is_bad_request(env: ProviderEnv, type_: str) -> None:
    with pytest.raises(BadRequest) as caught:
        await adapter(env, type_, f"{type_}-arm").call(RetrieveRequest("mars", "nope", k=5))
    assert caught.value.provider == f"{type_}-arm"
    assert "'nope'" in caught.value.message


def test_library_names_and_default(corpus: Path, tmp_path: Path) -> None:
    library = CollectionLibrary([("docs", corpus), ("other", tmp_path)])
    assert library.names() == ["docs", "other"]
    assert library.default == "docs"
    assert library.get("missing") is None
    assert CollectionLibrary().default is None


# -------------------------------------------------------------------------------------------------- rrf


def test_rrf_fuses_by_reciprocal_rank() -> None:
    bm25 = [(1, 12.0), (2, 7.5)]
    dense = [(2, 0.91), (3, 0.40)]
    fused = rrf([bm25, dense], depth=10)
    assert [doc for doc, _ in fused] == [2, 1, 3]
    assert fused[0][1] == pytest.approx(1 / (RRF_K + 2) + 1 / (RRF_K + 1))
    assert fused[1][1] == pytest.approx(1 / (RRF_K + 1))
    assert fused[2][1] == pytest.approx(1 / (RRF_K + 2))


def test_rrf_ignores_raw_scores_breaks_ties_by_id_and_truncates() -> None:
    fused = rrf([[(5, 1000.0)], [(3, 0.001)]], depth=10, k=1)
    assert fused == [(3, 0.5), (5, 0.5)]
    assert rrf([[(5, 1.0), (4, 0.5), (6, 0.1)]], depth=2, k=0) == [(5, 1.0), (4, 0.5)]
    assert rrf([], depth=5) == []
    assert rrf([[], []], depth=5) == []
