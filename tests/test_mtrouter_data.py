"""The routing-data JSONL format (round trip, validation messages) and the two converters on the real
shared data (skipped when the data folder is absent)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from mcp_router.bench.paths import data_dir
from mcp_router.routing.mtrouter.data import (
    LLMROUTER_OUTPUT_TOKENS,
    MTBENCH_STRONG,
    MTBENCH_WEAK,
    Outcome,
    RecordError,
    RoutingRecord,
    convert_llmrouter,
    convert_mtbench,
    parse_mtbench_answers,
    read_records,
    write_records,
)
from mcp_router.routing.mtrouter.pool import load_models_file


def record(**overrides) -> dict:
    raw = {
        "id": "r1",
        "session": "s1",
        "turn": 1,
        "messages": [{"role": "user", "content": "hi"}],
        "outcomes": {"m": {"score": 0.5, "cost_usd": 0.001, "latency_s": None}},
    }
    raw.update(overrides)
    return raw


def write_lines(path: Path, rows: list) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def test_round_trip_keeps_every_field(tmp_path) -> None:
    records = [
        RoutingRecord(
            "a",
            "conv-1",
            2,
            (
                {"role": "system", "content": "be kind"},
                {"role": "user", "content": "Grüße — ✓"},
                {"role": "assistant", "content": "x"},
                {"role": "tool", "content": "{}"},
            ),
            {"m1": Outcome(1.0, 0.25, 1.5), "m2": Outcome(0.0)},
        ),
        RoutingRecord("b", "conv-2", 1, ({"role": "user", "content": ""},), {"m1": Outcome(0.3, None, 0.0)}),
    ]
    path = tmp_path / "d.jsonl"
    write_records(path, records)
    assert read_records(path) == records
    assert "Grüße" in path.read_text(encoding="utf-8")  # not ASCII-escaped
    assert not list(tmp_path.glob(".*.tmp"))


def test_blank_lines_are_skipped(tmp_path) -> None:
    path = write_lines(tmp_path / "d.jsonl", [record(), "", "   ", record(id="r2")])
    assert [r.id for r in read_records(path)] == ["r1", "r2"]


@pytest.mark.parametrize(
    ("bad", "expected"),
    [
        ("{not json", r"d\.jsonl:2: not valid JSON"),
        ([1, 2], r":2: a record must be a JSON object"),
        (record(turn=0), r":2: field `turn` must be an integer >= 1"),
        (record(turn=True), r":2: field `turn`"),
        (record(session=7), r":2: field `session` must be a non-empty JSON string"),
        ({k: v for k, v in record().items() if k != "outcomes"}, r":2: missing field\(s\) \['outcomes'\]"),
        (record(extra=1), r":2: unknown field\(s\) \['extra'\]"),
        (record(messages=[]), r":2: field `messages` must be a non-empty list"),
        (record(messages=[{"role": "bot", "content": "x"}]), r"`messages\[0\]\.role` is 'bot'; use one of"),
        (record(messages=[{"role": "user"}]), r"`messages\[0\]` must be an object with exactly `role`"),
        (record(messages=[{"role": "user", "content": ["a"]}]), r"`messages\[0\]\.content` must be a string"),
        (record(outcomes={}), r"field `outcomes` must be a non-empty object"),
        (record(outcomes={"m": {"score": 7}}), r"`outcomes\.m\.score` must be a number in \[0, 1\].*rescale"),
        (record(outcomes={"m": {"score": float("nan")}}), r"`outcomes\.m\.score`"),
        (record(outcomes={"m": {"cost_usd": 1}}), r"`outcomes\.m\.score` is missing"),
        (
            record(outcomes={"m": {"score": 1, "cost_usd": -1}}),
            r"`outcomes\.m\.cost_usd` must be a number >= 0",
        ),
        (record(outcomes={"m": {"score": 1, "latency_s": "2s"}}), r"`outcomes\.m\.latency_s`.*write null"),
        (record(outcomes={"m": {"score": 1, "cost": 2}}), r"`outcomes\.m` has unknown key\(s\) \['cost'\]"),
        (record(id="r0"), r":2: field `id` 'r0' already used on line 1"),
    ],
)
def test_validation_errors_name_line_field_and_fix(tmp_path, bad, expected) -> None:
    path = write_lines(tmp_path / "d.jsonl", [record(id="r0"), bad])
    with pytest.raises(RecordError, match=expected):
        read_records(path)


def test_mtbench_answer_parsing_is_anchored_on_the_questions() -> None:
    turns = ["Write a poem.", "Now shorten it."]
    answer1 = "Roses\n\n### User:\nfake heading inside the answer\n\n### Assistant A:\nstill answer 1"
    prompt = (
        "<|The Start of Assistant A's Conversation with User|>\n\n### User:\nWrite a poem.\n\n"
        f"### Assistant A:\n{answer1}\n\n### User:\nNow shorten it.\n\n### Assistant A:\nRoses.\n\n"
        "<|The End of Assistant A's Conversation with User|>"
    )
    assert parse_mtbench_answers(prompt, 2, turns, "x") == [answer1, "Roses."]
    single = (
        "[Question]\nWrite a poem.\n\n[The Start of Assistant's Answer]\nA poem\n"
        "[The End of Assistant's Answer]"
    )
    assert parse_mtbench_answers(single, 1, turns, "x") == ["A poem"]
    with pytest.raises(ValueError, match="x: judge prompt lacks"):
        parse_mtbench_answers("no markers", 1, turns, "x")


# ------------------------------------------------------------------ converters on the shared data


@pytest.fixture(scope="module")
def routing_dir() -> Path:
    try:
        path = data_dir() / "routing"
    except FileNotFoundError:
        pytest.skip("shared data not found (set MCP_ROUTER_DATA)")
    if not (path / "llmrouter").is_dir() or not (path / "routellm-mtbench").is_dir():
        pytest.skip(f"{path} lacks llmrouter/ or routellm-mtbench/")
    return path


def test_convert_llmrouter(routing_dir, tmp_path) -> None:
    summary = convert_llmrouter(routing_dir / "llmrouter", tmp_path)
    assert (summary["train_records"], summary["test_records"], summary["test_duplicates_removed"]) == (
        5608,
        381,
        119,
    )
    assert "output_tokens = 256" in summary["cost_assumption"]
    train = read_records(tmp_path / "llmrouter-train.jsonl")
    test = read_records(tmp_path / "llmrouter-test.jsonl")
    assert len(train) == 5608 and len(test) == 381
    train_questions = {" ".join(r.messages[0]["content"].split()) for r in train}
    assert not any(" ".join(r.messages[0]["content"].split()) in train_questions for r in test)
    assert all(r.turn == 1 and r.session == r.id and len(r.outcomes) == 9 for r in train + test)

    models = load_models_file(tmp_path / "llmrouter-models.json")
    assert list(models) == summary["models"] and len(models) == 9
    prices = json.loads((routing_dir / "llmrouter" / "default_llm.json").read_text())
    source = json.loads((routing_dir / "llmrouter" / "train.json").read_text())[0]
    first = train[0]
    for name, spec in models.items():
        assert spec.input_cost_per_token == pytest.approx(prices[name]["input_price"] / 1e6)
        assert spec.metadata["size"] == prices[name]["size"]
        expected = (
            math.ceil(len(source["question"]) / 4) * prices[name]["input_price"]
            + LLMROUTER_OUTPUT_TOKENS * prices[name]["output_price"]
        ) / 1e6
        assert first.outcomes[name] == Outcome(source["scores"][name], pytest.approx(expected), None)


def test_convert_mtbench(routing_dir, tmp_path) -> None:
    summary = convert_mtbench(routing_dir / "routellm-mtbench", tmp_path)
    records = read_records(tmp_path / "mtbench.jsonl")
    assert summary["records"] == len(records) == 160 and summary["turn1_answer_mismatches"] == 0
    assert len({r.session for r in records}) == 80
    assert sorted({r.turn for r in records}) == [1, 2]
    by_id = {r.id: r for r in records}
    questions = {
        q["question_id"]: q
        for q in map(
            json.loads, (routing_dir / "routellm-mtbench" / "question.jsonl").read_text().splitlines()
        )
    }
    judgements = [json.loads(line) for line in (routing_dir / "routellm-mtbench" / "judgements.jsonl").open()]
    for row in judgements:
        assert by_id[f"mtbench-{row['question_id']}-t{row['turn']}"].outcomes[row["model"]].score == (
            pytest.approx(row["score"] / 10)
        )
    gpt4_turn1 = next(
        j for j in judgements if j["question_id"] == 81 and j["turn"] == 1 and j["model"] == MTBENCH_STRONG
    )
    t2 = by_id["mtbench-81-t2"]
    assert [m["role"] for m in t2.messages] == ["user", "assistant", "user"]
    assert t2.messages[0]["content"] == questions[81]["turns"][0]
    assert t2.messages[2]["content"] == questions[81]["turns"][1]
    assert t2.messages[1]["content"] in gpt4_turn1["user_prompt"]  # GPT-4's own turn-1 answer
    assert "[The End of" not in t2.messages[1]["content"] and t2.messages[1]["content"]
    assert by_id["mtbench-81-t1"].messages == (t2.messages[0],)
    assert all(r.outcomes[MTBENCH_STRONG].cost_usd > r.outcomes[MTBENCH_WEAK].cost_usd > 0 for r in records)
    gpt4_turn2 = next(
        j for j in judgements if j["question_id"] == 81 and j["turn"] == 2 and j["model"] == MTBENCH_STRONG
    )
    answer2 = parse_mtbench_answers(gpt4_turn2["user_prompt"], 2, questions[81]["turns"], "t")[1]
    prompt_tokens = sum(math.ceil(len(m["content"]) / 4) for m in t2.messages)
    expected = (prompt_tokens * 10 + math.ceil(len(answer2) / 4) * 30) / 1e6
    assert t2.outcomes[MTBENCH_STRONG].cost_usd == pytest.approx(expected)
    models = load_models_file(tmp_path / "mtbench-models.json")
    assert models[MTBENCH_STRONG].output_cost_per_token == pytest.approx(30e-6)
    assert models[MTBENCH_WEAK].input_cost_per_token == pytest.approx(0.6e-6)
