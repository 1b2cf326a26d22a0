"""History rendering (reference §3.2/§3.3/§4.2), embedders, caches and the history encoder.

Rendering tests count tokens as whitespace-separated words, so every budget below can be checked by
hand: a packed message costs words(content) + 10, and the context budget is max_tokens - task - 20
(single) or max_tokens - 20 (split).
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys

import numpy as np
import pytest

from mcp_router.routing.mtrouter.embed import (
    HashingEmbedder,
    HistoryEncoder,
    MemoryCache,
    MiniLMEmbedder,
    encoder_from_id,
    text_hash,
)
from mcp_router.routing.mtrouter.history import (
    extract_task,
    render_single,
    render_split,
    truncate_to_tokens,
)
from mcp_router.store.embedding_file import SqliteCache
from providers.retrieve.embedder import load_model


def words(text: str) -> int:
    return len(text.split())


def user(text: str) -> dict[str, str]:
    return {"role": "user", "content": text}


def assistant(text: str) -> dict[str, str]:
    return {"role": "assistant", "content": text}


def tool(text: str) -> dict[str, str]:
    return {"role": "tool", "content": text}


def w(n: int, stem: str = "w") -> str:
    return " ".join(f"{stem}{i}" for i in range(n))


# ------------------------------------------------------------------ task segment


def test_task_rules_apply_in_order() -> None:
    tagged = "Intro. Your task is to ignore this. <task_description>Boil water</task_description>"
    assert extract_task(tagged) == "Boil water"
    hle = "Preamble\n## HLE Question\nWhat is 2+2?\nShow work.\n---\nFormatting rules here"
    assert extract_task(hle) == "What is 2+2?\nShow work."
    sentence = "You are in a lab. Your task is to find the key. Then report it."
    assert extract_task(sentence) == "Your task is to find the key."
    assert extract_task("  just a question?  \n") == "just a question?"


def test_no_user_message_gives_an_empty_task() -> None:
    assert render_single([{"role": "system", "content": "be brief"}], words) == "[Task]\n"
    assert render_split([assistant("hi")], words) == ("[Task]\n", "[Context]\n[Turn 0 - assistant]\nhi")


# ------------------------------------------------------------------ context and packing


def test_system_and_first_user_leave_the_context_and_turns_are_numbered_from_the_end() -> None:
    messages = [
        {"role": "system", "content": "You are helpful"},
        user("Plan a trip to Rome"),
        assistant("Sure, when?"),
        user("Next week please"),
    ]
    assert render_single(messages, words) == (
        "[Task]\nPlan a trip to Rome\n\n[Context]\n"
        "[Turn 0 - assistant]\nSure, when?\n\n[Turn 1 - user]\nNext week please"
    )
    assert render_split(messages, words) == (
        "[Task]\nPlan a trip to Rome",
        "[Context]\n[Turn 0 - assistant]\nSure, when?\n\n[Turn 1 - user]\nNext week please",
    )


def test_packing_stops_at_the_first_message_that_does_not_fit() -> None:
    # single, max 50: task 1 word -> budget 50 - 1 - 20 = 29. Newest first: c (2 + 10 = 12, 17 left),
    # then b (20 + 10 = 30 > 17) stops packing, so a (5 + 10 = 15, would fit) is not packed after the gap.
    messages = [user("t"), assistant(w(5, "a")), user(w(20, "b")), assistant(w(2, "c"))]
    assert (
        render_single(messages, words, max_tokens=50) == "[Task]\nt\n\n[Context]\n[Turn 1 - assistant]\nc0 c1"
    )


def test_a_message_that_uses_the_budget_exactly_is_packed() -> None:
    # single, max 50: task 1 -> budget 29 = 19 words + 10 overhead.
    messages = [user("t"), assistant(w(19, "a"))]
    assert render_single(messages, words, max_tokens=50).endswith(f"[Turn 0 - assistant]\n{w(19, 'a')}")
    messages = [user("t"), assistant(w(20, "a"))]
    assert render_single(messages, words, max_tokens=50) == "[Task]\nt"


def test_turn_numbers_are_absolute_when_old_turns_are_cut() -> None:
    messages = [user("task"), assistant("r1"), user("q2"), assistant("r2"), user(w(3, "q")), assistant("r3")]
    # single, max 45: budget 45 - 1 - 20 = 24: r3 (11) and q0..q2 (13) fit exactly, r2 does not.
    assert render_single(messages, words, max_tokens=45) == (
        "[Task]\ntask\n\n[Context]\n[Turn 2 - user]\nq0 q1 q2\n\n[Turn 2 - assistant]\nr3"
    )


def test_single_task_over_the_reserve_is_cut_and_rendered_alone() -> None:
    # max 50: 50 - 20 = 30; a 30-word task is "at or over" the limit and is cut to 30 words, no context.
    messages = [user(w(40)), assistant("ignored")]
    assert render_single(messages, words, max_tokens=50) == "[Task]\n" + w(30)
    messages = [user(w(29)), assistant("kept")]  # 29 < 30: budget 50 - 29 - 20 = 1 < 11, context empty
    assert render_single(messages, words, max_tokens=50) == "[Task]\n" + w(29)


def test_split_budgets_task_and_context_independently() -> None:
    # split, max 30: the task string "[Task]\n..." may hold 30 tokens ("[Task]" is one), so 29 words;
    # the context budget is 30 - 20 = 10 whatever the task length: a 0-word message (cost 10) fits.
    messages = [user(w(40)), assistant(""), user("x")]
    task, context = render_split(messages, words, max_tokens=30)
    assert task == "[Task]\n" + w(29)
    assert context == ""  # newest first: "x" costs 11 > 10, packing stops
    task, context = render_split([user(w(40)), user("x"), assistant("")], words, max_tokens=30)
    assert context == "[Context]\n[Turn 1 - assistant]\n"


def test_tool_results_join_the_observation_run_that_opens_a_turn() -> None:
    messages = [
        user("Find the weather"),
        assistant("call search"),
        tool("search failed"),
        user("try again"),
        assistant("call search"),
        tool("sunny"),
    ]
    assert render_split(messages, words)[1] == (
        "[Context]\n[Turn 0 - assistant]\ncall search\n\n[Turn 1 - tool]\nsearch failed\n\n"
        "[Turn 1 - user]\ntry again\n\n[Turn 1 - assistant]\ncall search\n\n[Turn 2 - tool]\nsunny"
    )


def test_initial_observation_is_kept_from_the_first_user_message() -> None:
    first = (
        "<task_description>Find the key</task_description>\n<initial_observation>A room</initial_observation>"
    )
    messages = [user(first), assistant("look"), user("You see a key")]
    assert render_single(messages, words) == (
        "[Task]\nFind the key\n\n[Context]\n[Turn 1 - user]\nA room\n\n[Turn 1 - assistant]\nlook\n\n"
        "[Turn 2 - user]\nYou see a key"
    )


def test_an_explicit_task_keeps_the_first_user_message_in_the_context() -> None:
    messages = [user("Here is the report text"), assistant("Noted")]
    assert render_split(messages, words, task="Summarise the report") == (
        "[Task]\nSummarise the report",
        "[Context]\n[Turn 1 - user]\nHere is the report text\n\n[Turn 1 - assistant]\nNoted",
    )


def test_truncation_backs_off_to_a_word_boundary() -> None:
    assert truncate_to_tokens("hello world foo", 8, len) == "hello"  # 8 characters end inside "world"
    assert truncate_to_tokens("hello world foo", 11, len) == "hello world"
    assert truncate_to_tokens("abcdefghij", 4, len) == "abcd"  # no boundary: a hard cut
    assert truncate_to_tokens("short", 10, len) == "short"
    assert truncate_to_tokens("anything", 0, len) == ""


# ------------------------------------------------------------------ embedders and caches


def test_hashing_embedder_is_normalised_deterministic_and_similarity_preserving() -> None:
    emb = HashingEmbedder(dim=64, seed=0)
    v = emb.embed(["the cat sat on the mat", "the cat sat on a mat", "quantum field theory", ""])
    assert v.shape == (4, 64) and v.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(v[:3], axis=1), 1.0, rtol=1e-5)
    assert not v[3].any()
    assert v[0] @ v[1] > v[0] @ v[2] + 0.3
    assert not np.array_equal(HashingEmbedder(seed=1).embed(["the cat"]), emb.embed(["the cat"]))
    assert emb.count_tokens(" a  b\nc ") == 3


def test_hashing_embedder_is_identical_in_another_process() -> None:
    code = (
        "from mcp_router.routing.mtrouter.embed import HashingEmbedder;"
        "import sys; sys.stdout.write(HashingEmbedder().embed(['route this call please']).tobytes().hex())"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONHASHSEED": "123"},
    ).stdout
    assert bytes.fromhex(out) == HashingEmbedder().embed(["route this call please"]).tobytes()


def test_memory_cache_evicts_least_recently_used() -> None:
    cache = MemoryCache(max_items=2)
    cache.put_many("e", {"a": np.ones(2), "b": np.zeros(2)})
    cache.get_many("e", ["a"])  # a is now the most recent
    cache.put_many("e", {"c": np.ones(2)})
    assert set(cache.get_many("e", ["a", "b", "c"])) == {"a", "c"}
    assert cache.get_many("other", ["a"]) == {}


def test_sqlite_cache_round_trips_and_survives_reopening(tmp_path) -> None:
    path = tmp_path / "sub" / "emb.sqlite"
    cache = SqliteCache(path)
    vectors = {f"h{i}": np.arange(3, dtype=np.float32) + i for i in range(700)}  # > one IN-chunk
    cache.put_many("emb-1", vectors)
    cache.close()
    reopened = SqliteCache(path)
    got = reopened.get_many("emb-1", [*vectors, "absent"])
    assert set(got) == set(vectors)
    np.testing.assert_array_equal(got["h699"], vectors["h699"])
    assert reopened.get_many("emb-2", ["h1"]) == {}  # keyed by embedder too
    reopened.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        cols = [r[1] for r in conn.execute("PRAGMA table_info(embedding_cache)")]
    assert cols == ["embedder_id", "text_hash", "dim", "vec"]


class CountingEmbedder(HashingEmbedder):
    def __init__(self) -> None:
        super().__init__(dim=16)
        self.seen: list[str] = []

    def embed(self, texts):
        self.seen.extend(texts)
        return super().embed(texts)


def test_encoder_embeds_a_conversations_task_once_and_only_missing_texts() -> None:
    emb = CountingEmbedder()
    enc = HistoryEncoder(emb, packing="split")
    turn1 = [user("Plan a trip")]
    turn2 = [user("Plan a trip"), assistant("Where to?"), user("Rome")]
    z = enc.encode([turn1, turn2, turn2])
    assert z.shape == (3, 32) and enc.dim == 32
    assert emb.seen.count("[Task]\nPlan a trip") == 1
    assert not z[0, 16:].any()  # empty context -> zero half
    np.testing.assert_allclose(z[0, :16], z[1, :16])  # the same task half on both turns
    np.testing.assert_allclose(np.linalg.norm(z[1, 16:]), 1.0, rtol=1e-5)
    before = len(emb.seen)
    np.testing.assert_array_equal(enc.encode([turn2]), z[1:2])
    assert len(emb.seen) == before  # everything came from the cache
    assert enc.encoder_id == emb.embedder_id + "|packing=split|max_tokens=254"


def test_single_packing_encodes_one_string_and_tasks_override() -> None:
    emb = HashingEmbedder(dim=16)
    enc = HistoryEncoder(emb, packing="single", max_tokens=64)
    history = [user("Here is the doc"), assistant("ok")]
    z = enc.encode([history, history], tasks=[None, "Summarise"])
    assert z.shape == (2, 16)
    expected = emb.embed([render_single(history, emb.count_tokens, 64, "Summarise")])
    np.testing.assert_allclose(z[1], expected[0], rtol=1e-6)
    assert not np.allclose(z[0], z[1])
    with pytest.raises(ValueError, match="packing"):
        HistoryEncoder(emb, packing="both")


def test_text_hash_is_sha256_hex() -> None:
    assert text_hash("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


@pytest.mark.slow
def test_minilm_embedder_counts_without_special_tokens_and_truncates_at_its_window() -> None:
    emb = MiniLMEmbedder(load_model)
    assert emb.count_tokens("Hello world") == 2
    assert (
        "window=256" in emb.embedder_id and "pool=mean" in emb.embedder_id and "@sha256:" in emb.embedder_id
    )
    long = " ".join(["routing"] * 300)
    v = emb.embed(["Hello world", "", long, long + " completely different words at the end"])
    assert v.shape == (4, 384)
    np.testing.assert_allclose(np.linalg.norm(v[[0, 2]], axis=1), 1.0, rtol=1e-5)
    assert not v[1].any()
    np.testing.assert_allclose(v[2], v[3], atol=1e-6)  # words past the 256-token window change nothing
    # split rendering with the real tokenizer keeps each string inside the window
    messages = [user(long), assistant(long), user("and now?")]
    for text in render_split(messages, emb.count_tokens):
        assert emb.count_tokens(text) <= 254


def test_encoder_from_id_rebuilds_the_same_encoder_and_refuses_others() -> None:
    original = HistoryEncoder(HashingEmbedder(dim=16, seed=3), packing="single", max_tokens=100)
    rebuilt = encoder_from_id(original.encoder_id)
    assert rebuilt.encoder_id == original.encoder_id
    history = [user("same text both ways")]
    np.testing.assert_array_equal(rebuilt.encode([history]), original.encode([history]))
    with pytest.raises(ValueError, match="cannot rebuild an encoder"):
        encoder_from_id("other-embedder|packing=split|max_tokens=254")
    other_weights = "all-MiniLM-L6-v2@sha256:0000|pool=mean|window=256|packing=split|max_tokens=254"
    with pytest.raises(ValueError, match="this installation gives"):
        encoder_from_id(other_weights)  # the weights' hash decides; the model itself is not loaded
