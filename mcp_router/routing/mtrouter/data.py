"""The routing-data format (JSONL, one record per decision point) and converters from the shared data.

One format serves offline training, evaluation and anything a user brings, so training code never
special-cases a dataset. A record is the message list a router saw at one decision point plus, per
model, the outcome of sending it there:

    {"id": "...", "session": "...", "turn": 1, "messages": [{"role": "user", "content": "..."}],
     "outcomes": {"model": {"score": 0..1, "cost_usd": float | null, "latency_s": float | null}}}

`id` is unique in a file; `session` groups the records of one conversation (the training episode);
`turn` counts from 1. The reader rejects anything else with the line number, the field and the fix.

Converters write the two shared datasets in this format plus a models file (LiteLLM price field names):
- LLMRouter (`routing/llmrouter`): single-turn questions, 9 scored models; costs are estimated from the
  price table with the token rules below, because the data has no responses or token counts.
- MT-Bench (`routing/routellm-mtbench`): 80 two-turn questions, GPT-4-1106 and Mixtral-8x7B, judge
  scores /10; the turn-1 and turn-2 answers are parsed out of the judge prompts.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mcp_router.atomic import atomic_write

ROLES = ("system", "user", "assistant", "tool")
RECORD_FIELDS = ("id", "session", "turn", "messages", "outcomes")
OUTCOME_FIELDS = ("score", "cost_usd", "latency_s")

CHARS_PER_TOKEN = 4  # the token estimate used by both converters: ceil(characters / 4)
LLMROUTER_OUTPUT_TOKENS = 256  # assumed completion length of every model on every LLMRouter question

TOKEN_RULE = "tokens(text) = ceil(len(text) / 4) characters-per-token estimate (no tokenizer of the models)"
LLMROUTER_COST_ASSUMPTION = (
    "cost_usd = (prompt_tokens * input_price + output_tokens * output_price) / 1e6 with the numeric "
    "input_price/output_price (USD per million tokens) of default_llm.json; prompt_tokens = "
    f"ceil(len(question) / {CHARS_PER_TOKEN}); output_tokens = {LLMROUTER_OUTPUT_TOKENS} for every model "
    "and question (assumed: the data has no responses or token counts)"
)

# Context windows are not in default_llm.json; these are the published context lengths of the models.
LLMROUTER_CONTEXT_WINDOWS = {
    "qwen2.5-7b-instruct": 32768,
    "codegemma-7b": 8192,
    "gemma-2-9b-it": 8192,
    "llama-3.1-8b-instruct": 131072,
    "llama3-chatqa-1.5-8b": 8192,
    "mistral-7b-instruct-v0.3": 32768,
    "llama-3.3-nemotron-super-49b-v1": 131072,
    "llama-3.1-nemotron-51b-instruct": 131072,
    "llama3-chatqa-1.5-70b": 8192,
}

MTBENCH_STRONG = "gpt-4-1106-preview"
MTBENCH_WEAK = "mistralai/Mixtral-8x7B-Instruct-v0.1"
# List prices, USD per million tokens (input, output), with where they come from.
MTBENCH_PRICES = {
    MTBENCH_STRONG: (10.0, 30.0, "OpenAI list price of gpt-4-1106-preview"),
    MTBENCH_WEAK: (
        0.6,
        0.6,
        "mixtral-8x7b-instruct-v0.1 in LLMRouter's default_llm.json (NVIDIA NIM); Together AI lists the same",
    ),
}
MTBENCH_CONTEXT_WINDOWS = {MTBENCH_STRONG: 128000, MTBENCH_WEAK: 32768}
MTBENCH_COST_ASSUMPTION = (
    "cost_usd = (prompt_tokens * input_price + output_tokens * output_price) / 1e6 at list prices; "
    f"prompt_tokens = sum of ceil(len(content) / {CHARS_PER_TOKEN}) over the record's messages; "
    "output_tokens = ceil(len(answer) / 4) of that model's own answer at that turn"
)
MTBENCH_HISTORY_NOTE = (
    f"turn-2 records carry {MTBENCH_STRONG}'s turn-1 answer as the assistant message for both models: a "
    "record has one history, the stronger model's answer is the one a quality-first turn 1 produces, and "
    "it keeps the history identical across models so only the turn-2 choice differs. Each model's turn-2 "
    "score was judged on a conversation containing its own turn-1 answer, so for Mixtral the history "
    "shown differs from the one judged"
)


@dataclass(frozen=True)
class Outcome:
    score: float
    cost_usd: float | None = None
    latency_s: float | None = None


@dataclass(frozen=True)
class RoutingRecord:
    id: str
    session: str
    turn: int
    messages: tuple[dict[str, str], ...]
    outcomes: Mapping[str, Outcome] = field(default_factory=dict)


class RecordError(ValueError):
    """A record that does not follow the format; the message names the file, line, field and fix."""


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _check_str(where: str, name: str, value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise RecordError(f"{where}: field `{name}` must be a non-empty JSON string, got {value!r}")
    return value


def _parse_outcome(where: str, model: str, raw: Any) -> Outcome:
    prefix = f"outcomes.{model}"
    if not isinstance(raw, dict):
        raise RecordError(f'{where}: field `{prefix}` must be an object like {{"score": 0.5}}, got {raw!r}')
    unknown = sorted(set(raw) - set(OUTCOME_FIELDS))
    if unknown:
        raise RecordError(
            f"{where}: field `{prefix}` has unknown key(s) {unknown}; allowed: {list(OUTCOME_FIELDS)}"
        )
    if "score" not in raw:
        raise RecordError(f"{where}: field `{prefix}.score` is missing; add a score between 0 and 1")
    score = raw["score"]
    if not _is_number(score) or not 0.0 <= score <= 1.0:
        raise RecordError(
            f"{where}: field `{prefix}.score` must be a number in [0, 1], got {score!r}; rescale the "
            "metric to 0..1 (e.g. a 1-10 rating divided by 10)"
        )
    optional: dict[str, float | None] = {}
    for name in ("cost_usd", "latency_s"):
        value = raw.get(name)
        if value is not None and (not _is_number(value) or value < 0):
            raise RecordError(
                f"{where}: field `{prefix}.{name}` must be a number >= 0 or null, got {value!r}; "
                "write null when it is unknown"
            )
        optional[name] = None if value is None else float(value)
    return Outcome(score=float(score), **optional)


def _parse_record(where: str, raw: Any) -> RoutingRecord:
    if not isinstance(raw, dict):
        raise RecordError(f"{where}: a record must be a JSON object, got {type(raw).__name__}")
    missing = [name for name in RECORD_FIELDS if name not in raw]
    if missing:
        raise RecordError(f"{where}: missing field(s) {missing}; every record needs {list(RECORD_FIELDS)}")
    unknown = sorted(set(raw) - set(RECORD_FIELDS))
    if unknown:
        raise RecordError(f"{where}: unknown field(s) {unknown}; allowed: {list(RECORD_FIELDS)}")
    record_id = _check_str(where, "id", raw["id"])
    session = _check_str(where, "session", raw["session"])
    turn = raw["turn"]
    if not isinstance(turn, int) or isinstance(turn, bool) or turn < 1:
        raise RecordError(f"{where}: field `turn` must be an integer >= 1 (turns count from 1), got {turn!r}")
    messages = raw["messages"]
    if not isinstance(messages, list) or not messages:
        raise RecordError(f"{where}: field `messages` must be a non-empty list of {{role, content}} objects")
    parsed_messages = []
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or set(message) != {"role", "content"}:
            raise RecordError(
                f"{where}: field `messages[{i}]` must be an object with exactly `role` and `content`, "
                f"got {message!r}"
            )
        if message["role"] not in ROLES:
            raise RecordError(
                f"{where}: field `messages[{i}].role` is {message['role']!r}; use one of {list(ROLES)}"
            )
        if not isinstance(message["content"], str):
            raise RecordError(
                f"{where}: field `messages[{i}].content` must be a string, got "
                f"{type(message['content']).__name__}; join multi-part content into one string"
            )
        parsed_messages.append({"role": message["role"], "content": message["content"]})
    outcomes = raw["outcomes"]
    if not isinstance(outcomes, dict) or not outcomes:
        raise RecordError(
            f'{where}: field `outcomes` must be a non-empty object {{model: {{"score": ...}}}}, '
            f"got {outcomes!r}"
        )
    parsed_outcomes = {
        _check_str(where, "outcomes key", model): _parse_outcome(where, model, value)
        for model, value in outcomes.items()
    }
    return RoutingRecord(record_id, session, turn, tuple(parsed_messages), parsed_outcomes)


def read_records(path: Path) -> list[RoutingRecord]:
    """All records of a JSONL file, validated; blank lines are skipped, ids must be unique."""
    path = Path(path)
    records: list[RoutingRecord] = []
    first_line: dict[str, int] = {}
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            where = f"{path}:{lineno}"
            try:
                raw = json.loads(line)
            except json.JSONDecodeError as exc:
                raise RecordError(f"{where}: not valid JSON ({exc.msg} at column {exc.colno})") from None
            record = _parse_record(where, raw)
            if record.id in first_line:
                raise RecordError(
                    f"{where}: field `id` {record.id!r} already used on line {first_line[record.id]}; "
                    "ids must be unique in a file"
                )
            first_line[record.id] = lineno
            records.append(record)
    return records


def record_to_json(record: RoutingRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "session": record.session,
        "turn": record.turn,
        "messages": [dict(m) for m in record.messages],
        "outcomes": {
            model: {"score": o.score, "cost_usd": o.cost_usd, "latency_s": o.latency_s}
            for model, o in record.outcomes.items()
        },
    }


def write_records(path: Path, records: Iterable[RoutingRecord]) -> None:
    """One JSON object per line (UTF-8, not ASCII-escaped), written to a temp file and renamed."""
    lines = [json.dumps(record_to_json(r), ensure_ascii=False) + "\n" for r in records]
    atomic_write(Path(path), lambda fh: fh.write("".join(lines).encode()))


def write_models(path: Path, models: Mapping[str, Mapping[str, Any]]) -> None:
    text = json.dumps(models, indent=2, ensure_ascii=False) + "\n"
    atomic_write(Path(path), lambda fh: fh.write(text.encode()))


def estimate_tokens(text: str) -> int:
    """The converters' token rule (TOKEN_RULE): ceil(characters / 4)."""
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def _cost(prompt_tokens: int, output_tokens: int, input_per_m: float, output_per_m: float) -> float:
    return (prompt_tokens * input_per_m + output_tokens * output_per_m) / 1e6


# ---------------------------------------------------------------- LLMRouter


_WHITESPACE = re.compile(r"\s+")


def normalise_question(text: str) -> str:
    """Key for duplicate detection (shared with the qa-pool benchmark): stripped, whitespace runs
    collapsed to one space."""
    return _WHITESPACE.sub(" ", text).strip()


def convert_llmrouter(src: Path, out_dir: Path) -> dict[str, Any]:
    """`src` = routing/llmrouter. Writes llmrouter-train.jsonl (all of train.json), llmrouter-test.jsonl
    (test.json minus the questions that also appear in train, compared after stripping and collapsing
    whitespace runs) and llmrouter-models.json. Each question is a one-turn session (session = id)."""
    src, out_dir = Path(src), Path(out_dir)
    train = json.loads((src / "train.json").read_text(encoding="utf-8"))
    test = json.loads((src / "test.json").read_text(encoding="utf-8"))
    prices = json.loads((src / "default_llm.json").read_text(encoding="utf-8"))
    scored = list(train[0]["scores"])
    unpriced = [m for m in scored if m not in prices]
    if unpriced:
        raise ValueError(f"{src / 'default_llm.json'}: no price for scored model(s) {unpriced}")

    def record(split: str, index: int, item: dict[str, Any]) -> RoutingRecord:
        question = item["question"]
        prompt_tokens = estimate_tokens(question)
        if set(item["scores"]) != set(scored):
            raise ValueError(f"{split}.json item {index}: scores for {sorted(item['scores'])}, not {scored}")
        outcomes = {
            model: Outcome(
                score=float(item["scores"][model]),
                cost_usd=_cost(
                    prompt_tokens,
                    LLMROUTER_OUTPUT_TOKENS,
                    float(prices[model]["input_price"]),
                    float(prices[model]["output_price"]),
                ),
            )
            for model in scored
        }
        rid = f"{split}-{index}"
        return RoutingRecord(rid, rid, 1, ({"role": "user", "content": question},), outcomes)

    train_records = [record("train", i, item) for i, item in enumerate(train)]
    train_keys = {normalise_question(item["question"]) for item in train}
    kept = [
        (i, item) for i, item in enumerate(test) if normalise_question(item["question"]) not in train_keys
    ]
    test_records = [record("test", i, item) for i, item in kept]

    models = {
        model: {
            "input_cost_per_token": float(prices[model]["input_price"]) / 1e6,
            "output_cost_per_token": float(prices[model]["output_price"]) / 1e6,
            "context_window": LLMROUTER_CONTEXT_WINDOWS.get(model),
            "quality_prior": None,
            "size": prices[model].get("size"),
            "provider_model": prices[model].get("model"),
            "service": prices[model].get("service"),
            "price_source": "default_llm.json input_price/output_price (USD per million tokens)",
            "context_window_source": "published model context length (not in the data)",
            "cost_estimate": LLMROUTER_COST_ASSUMPTION,
        }
        for model in scored
    }
    files = {
        "train": out_dir / "llmrouter-train.jsonl",
        "test": out_dir / "llmrouter-test.jsonl",
        "models": out_dir / "llmrouter-models.json",
    }
    write_records(files["train"], train_records)
    write_records(files["test"], test_records)
    write_models(files["models"], models)
    return {
        "train_records": len(train_records),
        "test_records": len(test_records),
        "test_duplicates_removed": len(test) - len(kept),
        "duplicate_rule": "test question equal to a train question after strip + collapsing whitespace runs",
        "models": scored,
        "token_rule": TOKEN_RULE,
        "output_tokens_assumption": LLMROUTER_OUTPUT_TOKENS,
        "cost_assumption": LLMROUTER_COST_ASSUMPTION,
        "files": {k: str(v) for k, v in files.items()},
    }


# ---------------------------------------------------------------- MT-Bench

_T1_START = "[The Start of Assistant's Answer]\n"
_T1_END = "\n[The End of Assistant's Answer]"
_CONV_START = "<|The Start of Assistant A's Conversation with User|>"
_CONV_END = "<|The End of Assistant A's Conversation with User|>"
_ASSISTANT = "### Assistant A:\n"


def _between(text: str, start: str, end: str, where: str) -> str:
    i = text.find(start)
    j = text.rfind(end)
    if i < 0 or j < i + len(start):
        raise ValueError(f"{where}: judge prompt lacks {start!r} ... {end!r}")
    return text[i + len(start) : j]


def parse_mtbench_answers(user_prompt: str, turn: int, turns: list[str], where: str) -> list[str]:
    """The model's answers inside a judge prompt: [a1] for turn 1, [a1, a2] for turn 2.

    Anchored on the known question texts rather than on "### User:" headings, which answers may
    themselves contain: a1 runs from the first "### Assistant A:" after question 1 to the "### User:"
    that precedes question 2, a2 from the next "### Assistant A:" to the end marker."""
    if turn == 1:
        return [_between(user_prompt, _T1_START, _T1_END, where).strip()]
    conversation = _between(user_prompt, _CONV_START, _CONV_END, where)
    q1_at = conversation.find(turns[0])
    q2_marker = f"### User:\n{turns[1]}"
    q2_at = conversation.find(q2_marker, max(q1_at, 0))
    a1_at = conversation.find(_ASSISTANT, max(q1_at, 0))
    if q1_at < 0 or a1_at < 0 or q2_at < a1_at:
        raise ValueError(
            f"{where}: cannot locate the two user turns and the first answer in the judge prompt"
        )
    a2_at = conversation.find(_ASSISTANT, q2_at)
    if a2_at < 0:
        raise ValueError(f"{where}: no second answer after question 2 in the judge prompt")
    return [
        conversation[a1_at + len(_ASSISTANT) : q2_at].strip(),
        conversation[a2_at + len(_ASSISTANT) :].strip(),
    ]


def convert_mtbench(src: Path, out_dir: Path) -> dict[str, Any]:
    """`src` = routing/routellm-mtbench. Writes mtbench.jsonl (80 questions x 2 turns, both models'
    outcomes on every record; session = question_id, turn = 1|2) and mtbench-models.json.

    Turn-2 messages are [user q1, assistant a1, user q2] with a1 = GPT-4-1106's turn-1 answer (see
    MTBENCH_HISTORY_NOTE); scores are the judge's 1-10 ratings / 10."""
    src, out_dir = Path(src), Path(out_dir)
    questions = {}
    with open(src / "question.jsonl", encoding="utf-8") as f:
        for line in f:
            if line.strip():
                q = json.loads(line)
                questions[q["question_id"]] = q
    # (qid, model, turn of the judge prompt) -> the answers parsed from it: [a1] or [a1, a2]
    parsed: dict[tuple[int, str, int], list[str]] = {}
    scores: dict[tuple[int, int, str], float] = {}
    with open(src / "judgements.jsonl", encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            row = json.loads(line)
            qid, turn, model = row["question_id"], row["turn"], row["model"]
            where = f"{src / 'judgements.jsonl'}:{lineno}"
            if model not in MTBENCH_PRICES:
                raise ValueError(f"{where}: model {model!r} has no list price in MTBENCH_PRICES")
            if (qid, turn, model) in scores:
                raise ValueError(f"{where}: second judgement of question {qid} turn {turn} for {model}")
            scores[(qid, turn, model)] = float(row["score"]) / 10.0
            parsed[(qid, model, turn)] = parse_mtbench_answers(
                row["user_prompt"], turn, questions[qid]["turns"], where
            )
    models = list(MTBENCH_PRICES)
    # a1 from the turn-1 judge prompt; the turn-2 prompt repeats it, and disagreements are counted.
    answers = {
        (qid, model): [parsed[(qid, model, 1)][0], parsed[(qid, model, 2)][1]]
        for (qid, model, turn) in parsed
        if turn == 1 and (qid, model, 2) in parsed
    }
    a1_mismatch = sum(
        parsed[(qid, model, 1)][0] != parsed[(qid, model, 2)][0]
        for (qid, model, turn) in parsed
        if turn == 1 and (qid, model, 2) in parsed
    )
    records: list[RoutingRecord] = []
    for qid in sorted(questions):
        q1, q2 = questions[qid]["turns"][:2]
        for turn in (1, 2):
            missing = [m for m in models if (qid, turn, m) not in scores]
            if missing:
                raise ValueError(f"question {qid} turn {turn}: no judgement for {missing}")
            if turn == 1:
                messages: tuple[dict[str, str], ...] = ({"role": "user", "content": q1},)
            else:
                a1 = answers[(qid, MTBENCH_STRONG)][0]
                messages = (
                    {"role": "user", "content": q1},
                    {"role": "assistant", "content": a1},
                    {"role": "user", "content": q2},
                )
            prompt_tokens = sum(estimate_tokens(m["content"]) for m in messages)
            outcomes = {}
            for model in models:
                in_price, out_price, _ = MTBENCH_PRICES[model]
                output_tokens = estimate_tokens(answers[(qid, model)][turn - 1])
                outcomes[model] = Outcome(
                    score=scores[(qid, turn, model)],
                    cost_usd=_cost(prompt_tokens, output_tokens, in_price, out_price),
                )
            records.append(RoutingRecord(f"mtbench-{qid}-t{turn}", str(qid), turn, messages, outcomes))
    models_file = {
        model: {
            "input_cost_per_token": MTBENCH_PRICES[model][0] / 1e6,
            "output_cost_per_token": MTBENCH_PRICES[model][1] / 1e6,
            "context_window": MTBENCH_CONTEXT_WINDOWS[model],
            "quality_prior": None,
            "price_source": MTBENCH_PRICES[model][2],
            "cost_estimate": MTBENCH_COST_ASSUMPTION,
            "history_note": MTBENCH_HISTORY_NOTE,
        }
        for model in models
    }
    files = {"records": out_dir / "mtbench.jsonl", "models": out_dir / "mtbench-models.json"}
    write_records(files["records"], records)
    write_models(files["models"], models_file)
    return {
        "records": len(records),
        "questions": len(questions),
        "models": models,
        "history_model": MTBENCH_STRONG,
        "history_note": MTBENCH_HISTORY_NOTE,
        "turn1_answer_mismatches": a1_mismatch,
        "token_rule": TOKEN_RULE,
        "cost_assumption": MTBENCH_COST_ASSUMPTION,
        "prices_usd_per_million": {m: p[:2] for m, p in MTBENCH_PRICES.items()},
        "files": {k: str(v) for k, v in files.items()},
    }
