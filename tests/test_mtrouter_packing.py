"""The `turns` packing (long conversations chunked and pooled by recency), checkpoints served with
their own packing, the packing and stay-bonus config, and stability: switches and the stay bonus.

The hashing embedder counts tokens as whitespace words, so chunk sizes can be checked by hand; the
MiniLM tests use the real model and tokenizer, because the window they are about is MiniLM's.
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from mcp_router.config import ConfigError, parse_config
from mcp_router.routing.mtrouter import evaluate as ev
from mcp_router.routing.mtrouter.data import Outcome, RoutingRecord, write_records
from mcp_router.routing.mtrouter.embed import (
    HashingEmbedder,
    HistoryEncoder,
    MiniLMEmbedder,
    TurnsPacking,
    encoder_from_id,
)
from mcp_router.routing.mtrouter.offline import format_ablation, mtbench_ablation
from mcp_router.routing.mtrouter.policy import greedy_model, pick, switch_stats, switches
from mcp_router.routing.mtrouter.pool import ModelSpec
from mcp_router.routing.mtrouter.pooling import recency_weights
from mcp_router.routing.mtrouter.router import ModelParams, ModelRouter
from mcp_router.routing.mtrouter.stability import stay_bonus_sweep, summarise
from mcp_router.routing.mtrouter.train import TrainConfig, TrainingSet, fit
from mcp_router.serving.runtime import model_params
from providers.retrieve.embedder import load_model


class CountingEmbedder:
    """A real hashing embedder that records every text it is asked to embed."""

    def __init__(self, inner: HashingEmbedder) -> None:
        self.inner = inner
        self.embedder_id = inner.embedder_id
        self.dim = inner.dim
        self.embedded: list[str] = []

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.embedded.extend(texts)
        return self.inner.embed(texts)

    def count_tokens(self, text: str) -> int:
        return self.inner.count_tokens(text)

    def chunk(self, text: str, size: int) -> list[str]:
        return self.inner.chunk(text, size)


def user(text: str) -> dict[str, str]:
    return {"role": "user", "content": text}


def assistant(text: str) -> dict[str, str]:
    return {"role": "assistant", "content": text}


def filler(n: int, stem: str) -> str:
    return " ".join(f"{stem}{i}" for i in range(n))


def long_conversation(fact: str) -> list[dict[str, str]]:
    """Turn 1's answer opens with `fact` and runs to 300 words: far past a 64-token window."""
    return [
        user("plan a trip for me"),
        assistant(f"the capital you want is {fact} " + filler(300, "detail")),
        user("and what should I pack"),
    ]


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


# ------------------------------------------------------------------ the turns packing


def test_turns_sees_a_fact_beyond_the_window_that_split_and_single_drop() -> None:
    emb = HashingEmbedder(dim=64)
    for packing in ("split", "single"):
        old = HistoryEncoder(emb, packing=packing, max_tokens=64)
        a, b = old.encode([long_conversation("lisbon"), long_conversation("oslo")])
        np.testing.assert_array_equal(a, b)  # the long answer does not fit: packing stops before it
    turns = HistoryEncoder(emb, packing="turns", max_tokens=64)
    a, b = turns.encode([long_conversation("lisbon"), long_conversation("oslo")])
    assert a.shape == (128,) and not np.allclose(a, b)
    np.testing.assert_array_equal(a[:64], b[:64])  # the task half is the same; the context half moved


def test_turns_with_minilm_sees_past_its_254_token_window() -> None:
    emb = MiniLMEmbedder(load_model)
    answer = "The city you are thinking of is {}. " + " ".join(
        f"Point {i}: consider the weather, the transport and the budget." for i in range(60)
    )
    histories = [
        [user("Where should I travel?"), assistant(answer.format(city)), user("What should I pack?")]
        for city in ("Lisbon", "Reykjavik")
    ]
    assert emb.count_tokens(histories[0][1]["content"]) > 3 * 254
    split = HistoryEncoder(emb, packing="split").encode(histories)
    np.testing.assert_array_equal(split[0], split[1])
    turns = HistoryEncoder(emb, packing="turns").encode(histories)
    assert not np.allclose(turns[0], turns[1])
    chunks = emb.chunk(histories[0][1]["content"], 244)
    assert len(chunks) >= 4 and all(emb.count_tokens(c) <= 246 for c in chunks)
    assert chunks[0].startswith("The city you are thinking of is Lisbon.")


def test_a_single_short_message_gives_the_split_vector() -> None:
    emb = HashingEmbedder(dim=32)
    history = [user("what is the boiling point of water at altitude")]
    split = HistoryEncoder(emb, packing="split").encode([history])
    turns = HistoryEncoder(emb, packing="turns").encode([history])
    np.testing.assert_array_equal(turns, split)  # [task ; zeros]: the context half is empty
    assert np.linalg.norm(turns[0, :32]) == pytest.approx(1.0) and not turns[0, 32:].any()
    np.testing.assert_array_equal(  # an empty conversation is well defined too: "[Task]\n" and zeros
        HistoryEncoder(emb, packing="turns").encode([[]]), HistoryEncoder(emb, packing="split").encode([[]])
    )


def test_recency_weights_put_the_newest_message_first() -> None:
    np.testing.assert_allclose(recency_weights(3, 0.5), [0.25, 0.5, 1.0])
    emb = HashingEmbedder(dim=256)
    texts = ["alpha beta gamma delta", "kappa lambda omicron sigma", "omega theta zeta epsilon"]
    history = [user("the task"), user(texts[0]), assistant(texts[1]), user(texts[2])]
    context = HistoryEncoder(emb, packing="turns").encode([history])[0, 256:]
    similarity = [
        cosine(context, emb.embed([f"[Turn {k} - {role}]\n{t}"])[0])
        for t, k, role in zip(texts, (1, 1, 2), ("user", "assistant", "user"), strict=True)
    ]
    assert similarity[2] > similarity[1] > similarity[0] > 0


def test_a_new_turn_embeds_only_its_new_chunks() -> None:
    emb = CountingEmbedder(HashingEmbedder(dim=32))
    encoder = HistoryEncoder(emb, packing="turns", max_tokens=40)
    first = long_conversation("lisbon")
    encoder.encode([first])
    first_batch = list(emb.embedded)
    # the task, the 305-word answer in 30-word chunks (11, capped at max_chunks = 8), the question
    assert len(first_batch) == 1 + 8 + 1
    emb.embedded.clear()
    grown = [*first, assistant("pack a raincoat and walking shoes"), user("and for the evening")]
    vector = encoder.encode([grown])
    assert emb.embedded == [
        "[Turn 1 - assistant]\npack a raincoat and walking shoes",
        "[Turn 2 - user]\nand for the evening",
    ]
    fresh = HistoryEncoder(HashingEmbedder(dim=32), packing="turns", max_tokens=40).encode([grown])
    np.testing.assert_array_equal(vector, fresh)  # cached chunks give the same vector as recomputing


def test_long_texts_are_capped_per_message_and_by_message_count() -> None:
    emb = CountingEmbedder(HashingEmbedder(dim=16))
    turns = TurnsPacking(decay=0.5, max_messages=2, max_chunks=3)
    encoder = HistoryEncoder(emb, packing="turns", max_tokens=20, turns=turns)
    history = [user("task"), *[assistant(filler(100, f"m{i}-")) for i in range(4)], user("last")]
    rendering = encoder.render_turns(history)
    assert [len(m) for m in rendering.messages] == [3, 1]  # the newest 2 messages, at most 3 chunks each
    assert rendering.messages[0][0].startswith("[Turn 0 - assistant]\nm3-0 ")


def test_turns_encoder_id_round_trips_and_old_ids_keep_their_packing() -> None:
    turns = HistoryEncoder(HashingEmbedder(dim=16), packing="turns", turns=TurnsPacking(decay=0.25))
    assert turns.encoder_id.endswith("|packing=turns|max_tokens=254|decay=0.25|max_messages=8|max_chunks=8")
    rebuilt = encoder_from_id(turns.encoder_id)
    assert rebuilt.packing == "turns" and rebuilt.turns == TurnsPacking(decay=0.25)
    split = HistoryEncoder(HashingEmbedder(dim=16), packing="split")
    assert encoder_from_id(split.encoder_id).packing == "split"  # a pre-`turns` id, unchanged
    with pytest.raises(ValueError, match="cannot rebuild"):
        encoder_from_id(split.encoder_id.replace("packing=split", "packing=turns"))  # no decay etc.
    with pytest.raises(ValueError, match="decay"):
        TurnsPacking(decay=0.0)
    with pytest.raises(ValueError, match="max_messages"):
        TurnsPacking(max_messages=0)


# ------------------------------------------------------------------ config and serving


def config_text(mtrouter: str) -> str:
    return f"[tools.llm_complete.mtrouter]\n{mtrouter}\n"


def test_packing_and_stay_bonus_come_from_config(tmp_path: Path) -> None:
    loaded = parse_config(config_text('packing = "turns"\nstay_bonus = 0.02'), "test.toml", tmp_path)
    params = model_params(loaded)
    assert params.packing == "turns" and params.stay_bonus == 0.02
    with pytest.raises(ConfigError, match="packing"):
        parse_config(config_text('packing = "chunks"'), "test.toml", tmp_path)
    for bad in ("-0.01", "0.2"):
        with pytest.raises(ConfigError, match="stay_bonus"):
            parse_config(config_text(f"stay_bonus = {bad}"), "test.toml", tmp_path)


POOL = [
    ModelSpec("a", 1e-6, 2e-6, context_window=100_000, quality_prior=0.60),
    ModelSpec("b", 1e-6, 2e-6, context_window=100_000, quality_prior=0.61),
]


def saved_checkpoint(encoder: HistoryEncoder, path: Path) -> str:
    rng = np.random.default_rng(0)
    n = 40
    data = TrainingSet(
        zx=rng.normal(size=(n, encoder.dim)).astype(np.float32),
        model_idx=rng.integers(0, 2, n),
        score=rng.uniform(size=n),
        cost=rng.uniform(size=n),
        weight=np.ones(n),
        episode=np.array([f"e{i}" for i in range(n)]),
    )
    config = TrainConfig(epochs=2, val_fraction=0.0)
    checkpoint = fit(data, POOL, encoder_id=encoder.encoder_id, c_bar=1.0, config=config)
    checkpoint.save(path)
    return checkpoint.checkpoint_id


def test_a_split_checkpoint_keeps_serving_when_the_config_says_turns(tmp_path: Path) -> None:
    split = HistoryEncoder(HashingEmbedder(), packing="split")
    checkpoint_id = saved_checkpoint(split, tmp_path / "split.pt")
    row = {"checkpoint_id": checkpoint_id, "path": str(tmp_path / "split.pt")}
    router = ModelRouter(POOL, ModelParams(embedder="hashing", packing="turns"), promoted=lambda: row)
    router.refresh()
    assert router.checkpoint_id == checkpoint_id and router.encoder.encoder_id == split.encoder_id
    decision = router.decide([user("hello")], max_tokens=64, remaining_usd=None)
    assert decision.stage == "checkpoint" and decision.checkpoint_id == checkpoint_id


def test_a_checkpoint_from_other_embedder_weights_is_refused(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    split = HistoryEncoder(HashingEmbedder(), packing="split")
    checkpoint_id = saved_checkpoint(split, tmp_path / "c.pt")
    sidecar = tmp_path / "c.json"
    other = "all-MiniLM-L6-v2@sha256:0000|pool=mean|window=256|packing=split|max_tokens=254"
    sidecar.write_text(sidecar.read_text().replace(split.encoder_id, other))
    row = {"checkpoint_id": checkpoint_id, "path": str(tmp_path / "c.pt")}
    router = ModelRouter(POOL, ModelParams(embedder="hashing"), promoted=lambda: row, minilm=load_model)
    with caplog.at_level(logging.WARNING, logger="mcp_router.mtrouter"):
        router.refresh()
    assert router.checkpoint is None  # refused with the reason logged; the priors keep serving
    assert "embed with the same embedder files or retrain" in caplog.text
    assert router.decide([user("hello")], max_tokens=64, remaining_usd=None).stage == "prior"


# ------------------------------------------------------------------ stability


def test_switches_are_counted_per_conversation() -> None:
    assert switches([]) == 0 and switches(["a"]) == 0
    assert switches(["a", "a", "b", "a"]) == 2
    stats = switch_stats([["a", "a"], ["a", "b", "a"], ["b", "b", "b"], ["b", "a"]])
    assert stats.conversations == 4
    assert stats.mean_switches == pytest.approx(0.75) and stats.share_switching == pytest.approx(0.5)


def test_stay_bonus_changes_a_decision_only_when_the_margin_is_small() -> None:
    close, clear = {"a": 0.50, "b": 0.51}, {"a": 0.50, "b": 0.60}
    assert greedy_model(close, last_model="a") == "b"
    assert greedy_model(close, last_model="a", stay_bonus=0.02) == "a"
    assert greedy_model(clear, last_model="a", stay_bonus=0.02) == "b"
    assert pick(close, beta=1.0, rng=random.Random(0), last_model="a", stay_bonus=0.02).model == "a"


def test_the_server_applies_the_configured_stay_bonus() -> None:
    messages = [user("hi"), assistant("hello"), user("more")]
    for bonus, expected in ((0.0, "b"), (0.02, "a")):
        router = ModelRouter(POOL, ModelParams(beta=1.0, stay_bonus=bonus, lam=0.0))
        assert router.decide(messages, 64, None, last_model="a").model == expected


def record(session: str, turn: int, a: float, b: float) -> RoutingRecord:
    outcomes = {"a": Outcome(score=a, cost_usd=0.01), "b": Outcome(score=b, cost_usd=0.01)}
    return RoutingRecord(f"{session}-{turn}", session, turn, (user("q"),), outcomes)


def test_stay_bonus_sweep_counts_the_switches_the_bonus_removes() -> None:
    # conversation s1: b is estimated 0.005 better at turn 2 (a near-tie); s2: b is 0.2 better
    records = [record("s1", 1, 0.6, 0.5), record("s1", 2, 0.5, 0.6), record("s2", 1, 0.6, 0.5)]
    records.append(record("s2", 2, 0.4, 0.8))
    truth = ev.outcome_matrix(records, ["a", "b"])
    estimates = ev.Estimates(
        score=np.array([[0.6, 0.5], [0.5, 0.505], [0.6, 0.5], [0.4, 0.6]]), cost_units=np.ones((4, 2))
    )
    sweep = stay_bonus_sweep(records, estimates, truth, lambdas=[0.0], stay_bonuses=[0.0, 0.01, 0.5])
    by_bonus = {row["stay_bonus"]: row for row in sweep["rows"]}
    assert by_bonus[0.0]["mean_switches"] == 1.0  # both conversations switch to b
    assert by_bonus[0.01]["mean_switches"] == 0.5 and by_bonus[0.01]["share_switching"] == 0.5
    assert by_bonus[0.5]["mean_switches"] == 0.0
    assert by_bonus[0.01]["quality"] == pytest.approx((0.6 + 0.5 + 0.6 + 0.8) / 4)
    summary = summarise([sweep])
    assert summary["lambdas"] == [0.0]  # the no-bonus policy mixes both models there
    assert {r["stay_bonus"]: r["mean_switches"] for r in summary["over_lambdas"]} == {
        0.0: 1,
        0.01: 0.5,
        0.5: 0,
    }
    with pytest.raises(ValueError, match="including 0"):
        stay_bonus_sweep(records, estimates, truth, lambdas=[0.0], stay_bonuses=[0.01])


# ------------------------------------------------------------------ the ablation end to end

CHEAP, STRONG = "cheap-model", "strong-model"
MODELS = {
    CHEAP: {"input_cost_per_token": 1e-7, "output_cost_per_token": 1e-7, "context_window": 8192},
    STRONG: {"input_cost_per_token": 1e-6, "output_cost_per_token": 1e-6, "context_window": 8192},
}


def hidden_topic_sessions(n: int) -> list[RoutingRecord]:
    """Turn 1 asks the same thing every time; its long answer (past the 254-token window) opens with a
    paragraph on the topic it chose, and only poetry makes turn 2 too hard for the cheap model."""
    records = []
    for i in range(n):
        poetry = i % 2 == 0
        topic = "poem about rivers with rhyme" if poetry else "multiplication table of seven"
        turn1 = (user("surprise me with something"),)
        answer = f"I chose a {topic}. " * 8 + filler(300, "detail")
        turn2 = (*turn1, assistant(answer), user("now do it again"))
        easy = {CHEAP: Outcome(1.0, 1e-4), STRONG: Outcome(1.0, 1e-3)}
        hard = {CHEAP: Outcome(0.0, 1e-4), STRONG: Outcome(1.0, 1e-3)}
        records.append(RoutingRecord(f"s{i}-t1", f"s{i}", 1, turn1, easy))
        records.append(RoutingRecord(f"s{i}-t2", f"s{i}", 2, turn2, hard if poetry else easy))
    return records


def test_ablation_with_turns_uses_history_that_split_cannot_see(tmp_path: Path) -> None:
    write_records(tmp_path / "mt.jsonl", hidden_topic_sessions(40))
    (tmp_path / "models.json").write_text(json.dumps(MODELS))
    common = {
        "folds": 3,
        "repeats": 1,
        "embedder": "hashing",
        "cache": tmp_path / "emb.sqlite",
        "config": TrainConfig(epochs=40, patience=8, lr=3e-3, members=1),
        "stay_bonuses": [0.0, 0.05],
    }
    split = mtbench_ablation(
        tmp_path / "mt.jsonl",
        tmp_path / "models.json",
        packing="split",
        json_out=tmp_path / "split.json",
        **common,
    )
    turns = mtbench_ablation(
        tmp_path / "mt.jsonl",
        tmp_path / "models.json",
        packing="turns",
        compare_with=tmp_path / "split.json",
        **common,
    )
    # split's turn-2 histories all look alike, so best-single quality needs all-strong (ratio 1)
    assert split["summary"]["full"]["cost_ratio_at_best_single_quality"][0] in (None, pytest.approx(1.0))
    assert turns["summary"]["full"]["cost_ratio_at_best_single_quality"][0] < 0.7
    assert turns["versus_other_packing"]["full"]["mean_margin_per_repeat"][0] > 0
    assert {row["stay_bonus"] for row in turns["stability"]["runs"][0]["rows"]} == {0.0, 0.05}
    assert "this packing's frontier minus" in format_ablation(turns)
    with pytest.raises(ValueError, match="same --folds"):
        mtbench_ablation(
            tmp_path / "mt.jsonl", tmp_path / "models.json", compare_with=tmp_path / "split.json", folds=3
        )
