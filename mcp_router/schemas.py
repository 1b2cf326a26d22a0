"""Tool arguments and results as the MCP client sees them: constraints, descriptions, output models.

Argument types carry their constraints so that `tools/list` publishes them and a bad value is
rejected before any provider is called or any row is written, with a message naming the field.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, Field


def _not_blank(value: str) -> str:
    stripped = value.strip()
    if not stripped:
        raise ValueError("is empty or only whitespace; pass the words to look for")
    return stripped


def _has_user_turn(messages: list[ChatMessageIn]) -> list[ChatMessageIn]:
    if not any(m.role == "user" for m in messages):
        raise ValueError("needs at least one message with role 'user'")
    return messages


Query = Annotated[
    str,
    Field(min_length=1, max_length=2000, description="What to look for, in natural language or keywords."),
    AfterValidator(_not_blank),
]
TopK = Annotated[int, Field(ge=1, le=20, description="How many results to return (1-20).")]
Freshness = Annotated[
    Literal["day", "week", "month", "year"] | None,
    Field(description="Only results published within this period, where the provider supports it."),
]
CollectionName = Annotated[
    str | None,
    Field(max_length=100, description="Collection to search; omit for the default. See router://config."),
]


class ChatMessageIn(BaseModel):
    role: Literal["system", "user", "assistant"] = Field(description="Who said it.")
    content: str = Field(max_length=100_000, description="The message text.")


Messages = Annotated[
    list[ChatMessageIn],
    Field(min_length=1, max_length=200, description="The conversation so far, oldest first."),
    AfterValidator(_has_user_turn),
]
MaxTokens = Annotated[int, Field(ge=1, le=4096, description="Upper bound on generated tokens.")]
Temperature = Annotated[float, Field(ge=0.0, le=2.0, description="Sampling temperature; 0 is deterministic.")]
SessionId = Annotated[
    str | None,
    Field(max_length=200, description="Ties the turns of one conversation together for routing."),
]
BudgetUsd = Annotated[
    float | None,
    Field(
        gt=0,
        le=10_000,
        description="Spending cap in USD for the whole session (with session_id) or this call; the model "
        "router only picks models whose worst-case cost fits what is left.",
    ),
]
Task = Annotated[
    str | None,
    Field(max_length=20_000, description="What the conversation is for, if not its first user message."),
]
CallId = Annotated[
    str, Field(pattern=r"^call_[0-9a-f]{16}$", description="The call_id returned by an earlier tool call.")
]
Score = Annotated[
    float, Field(ge=0.0, le=1.0, description="Quality of that call's result: 0 useless, 1 perfect.")
]
Comment = Annotated[str | None, Field(max_length=2000, description="Optional note on what was good or bad.")]


class Routed(BaseModel):
    call_id: str = Field(description="Pass to `feedback` to rate this result.")
    provider: str = Field(description="The provider that served the call.")
    latency_s: float = Field(description="Time spent in providers, fallbacks included.")
    fallbacks: list[str] = Field(
        default_factory=list, description="Providers tried first that failed, and why."
    )


class WebResult(BaseModel):
    title: str
    url: str
    snippet: str
    source: str


class SearchOutput(Routed):
    results: list[WebResult]


class PassageOut(BaseModel):
    id: str
    text: str
    score: float
    metadata: dict[str, str | int | float | bool | None]


class RetrieveOutput(Routed):
    collection: str
    passages: list[PassageOut]


class UsageOut(BaseModel):
    prompt_tokens: int
    completion_tokens: int


class ModelChoiceOut(BaseModel):
    chosen: str = Field(description="The model MTRouter picked for this turn.")
    policy: str = Field(description="greedy, explore (a logged exploration step), or only.")
    propensity: float = Field(description="The probability the router had of picking it.")
    stage: str = Field(description="prior (no trained checkpoint yet) or checkpoint.")
    budget_remaining_usd: float | None = Field(description="What the session may still spend.")


class CompletionOutput(Routed):
    text: str
    model: str
    usage: UsageOut
    cost_usd: float
    finish_reason: str | None = None
    model_choice: ModelChoiceOut | None = None


class FeedbackOutput(BaseModel):
    call_id: str
    score: float
    tool: str
    provider: str
