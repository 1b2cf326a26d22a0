"""Tool arguments and results as the MCP client sees them: constraints, descriptions, output models.

Argument types carry their constraints so that `tools/list` publishes them and a bad value is
rejected before any provider is called or any row is written, with a message naming the field.
Where pydantic's own wording would puzzle a model (a lone surrogate, content given as parts, 400
errors for 200 bad messages), a validator here says it plainly. Arguments a tool does not take are
not the types' business: the SDK drops them, and `unknown_arguments` words the error the server
raises for them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidatorFunctionWrapHandler,
    WrapValidator,
    model_validator,
)
from pydantic_core import PydanticCustomError

# Caps. Each bounds the work one call can cause (features, tokenizing, a row in the database) and
# is published in `tools/list`, so a client can respect it before sending.
QUERY_MAX_CHARS = 2_000
TOP_K_MAX = 20
COLLECTION_MAX_CHARS = 100
MESSAGES_MAX = 200
MESSAGE_MAX_CHARS = 100_000
MESSAGES_TOTAL_MAX_CHARS = 200_000  # all contents together: 200 full-size messages would be 20 MB
MAX_TOKENS_MAX = 4_096
TEMPERATURE_MAX = 2.0
SESSION_ID_MAX_CHARS = 200
BUDGET_USD_MAX = 10_000.0
TASK_MAX_CHARS = 20_000
COMMENT_MAX_CHARS = 2_000
MESSAGE_ERRORS_LISTED = 3  # past this many, a conversation's errors are counted instead of listed

SESSION_ID_CHARS = "letters, digits and . _ : @ / + = -"
COLLECTION_CHARS = "letters, digits, '.', '_' and '-'"  # config.py checks collection names with these
SESSION_ID_PATTERN = r"^[A-Za-z0-9._:@/+=\-]+$"
COLLECTION_PATTERN = r"^[A-Za-z0-9_.\-]*$"
CALL_ID_PATTERN = r"^call_[0-9a-f]{16}$"
_SURROGATE = re.compile(r"[\ud800-\udfff]")
# C0 and C1 controls and DEL, except tab, line feed and carriage return.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def _error(kind: str, message: str, **context: Any) -> PydanticCustomError:
    """A validation error whose text is `message` alone: pydantic prefixes a plain ValueError's text
    with "Value error, ", which reads worse in the message a model gets back."""
    return PydanticCustomError(kind, message, context or None)


def _codepoint(char: str) -> str:
    return f"U+{ord(char):04X}"


def _json_type(value: object) -> str:
    """The JSON name of a value's type, as the caller wrote it (not Python's name for it)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list | tuple):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _valid_unicode(value: object) -> object:
    """Runs before pydantic's own string check, which rejects an unpaired UTF-16 surrogate with "unable
    to parse raw data as a unicode string": this says where it is and what to send instead. Such a
    string cannot be encoded as UTF-8, so it could reach no provider and no database."""
    if isinstance(value, str) and (found := _SURROGATE.search(value)):
        raise _error(
            "string_surrogate",
            "contains an unpaired UTF-16 surrogate ({codepoint}) at character {at}; send valid Unicode text",
            codepoint=_codepoint(found.group()),
            at=found.start(),
        )
    return value


def _no_nul(value: str) -> str:
    """NUL ends a C string (llama.cpp's tokenizer) and PostgreSQL refuses it in text, so a router on
    either would fail later and less clearly; other control characters may stay in free text, where
    they can be meaningful (terminal output pasted into a conversation)."""
    at = value.find("\x00")
    if at >= 0:
        raise _error("string_nul", "contains a NUL character (U+0000) at character {at}; remove it", at=at)
    return value


def _printable(value: str) -> str:
    """A query is a line of words that ends up in URLs and logs: control characters there are never
    meaningful, only spaces, tabs and line breaks are."""
    if found := _CONTROL.search(value):
        raise _error(
            "string_control",
            "contains the control character {codepoint} at character {at}; only printable text, spaces, "
            "tabs and line breaks are allowed",
            codepoint=_codepoint(found.group()),
            at=found.start(),
        )
    return value


def _not_blank(value: str) -> str:
    stripped = value.strip()
    if not stripped:
        raise _error("string_blank", "is empty or only whitespace; pass the words to look for")
    return stripped


def _charset(pattern: str, allowed: str) -> AfterValidator:
    """An after-validator for identifiers matching `pattern` (one character class, anchored, as
    published in the JSON schema): names the first character outside it."""
    whole = re.compile(pattern)
    one = re.compile(pattern.removeprefix("^").removesuffix("$").rstrip("+*"))

    def check(value: str) -> str:
        if whole.fullmatch(value):
            return value
        at = next(i for i, char in enumerate(value) if not one.fullmatch(char))
        raise _error(
            "string_charset",
            "contains {char} at character {at}; use only {allowed}",
            char=repr(value[at]) if value[at].isprintable() else _codepoint(value[at]),
            at=at,
            allowed=allowed,
        )

    return AfterValidator(check)


def _session_id_not_empty(value: str) -> str:
    """An empty session_id would be one session shared by every caller that sends it, budget included."""
    if not value:
        raise _error("string_empty", "is empty; omit session_id for a call that is not part of a session")
    return value


def _not_boolean(value: object) -> object:
    """JSON true and false are not numbers, though pydantic would read them as 1 and 0: `score: true`
    is more likely a misunderstanding than a rating of 1."""
    if isinstance(value, bool):
        raise _error("number_type", "must be a number, not a boolean")
    return value


def _whole_number(value: object) -> object:
    """Integers may arrive as JSON numbers with a zero fraction (5.0, 1e3). Those are read as integers
    here, so that a huge one fails the range check ("less than or equal to 20") instead of pydantic's
    "unable to parse input string as an integer, exceeded maximum size"."""
    value = _not_boolean(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _error("int_finite", "must be a finite whole number")
        if value.is_integer():
            return int(value)
    return value


def _content_is_text(value: object) -> object:
    """Chat APIs also take content as a list of parts ([{"type": "text", "text": ...}]); here it is
    plain text, and the error says so rather than only "Input should be a valid string"."""
    if not isinstance(value, str):
        raise _error(
            "content_type",
            "must be a string of text, not {got}; content parts and objects are not accepted",
            got=_json_type(value),
        )
    return value


def _has_user_turn(messages: list[ChatMessageIn]) -> list[ChatMessageIn]:
    """The router picks a model from the last user message, and a model asked nothing answers nothing."""
    if not any(m.role == "user" and m.content.strip() for m in messages):
        raise _error("messages_no_user", "needs at least one message with role 'user' and some text")
    return messages


def _within_total(messages: list[ChatMessageIn]) -> list[ChatMessageIn]:
    """Per-message and count caps alone would let one call carry 20 MB of conversation to featurize,
    tokenize and store."""
    total = sum(len(m.content) for m in messages)
    if total > MESSAGES_TOTAL_MAX_CHARS:
        raise _error(
            "messages_too_long",
            "hold {total} characters in all; at most {limit} are allowed: drop or shorten older messages",
            total=f"{total:,}",
            limit=f"{MESSAGES_TOTAL_MAX_CHARS:,}",
        )
    return messages


def _few_errors(value: object, handler: ValidatorFunctionWrapHandler) -> object:
    """pydantic reports every bad message, role and content apart: 200 bad messages made an error of
    70,000 characters, which the model would have to read. Past a few, the rest are only counted."""
    try:
        return handler(value)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False)
        if len(errors) <= MESSAGE_ERRORS_LISTED:
            raise
        listed = "; ".join(
            ".".join(["messages", *(str(part) for part in error["loc"])]) + ": " + error["msg"]
            for error in errors[:MESSAGE_ERRORS_LISTED]
        )
        raise _error(
            "messages_invalid",
            "have {count} problems; the first {listed_count}: {listed}",
            count=len(errors),
            listed_count=MESSAGE_ERRORS_LISTED,
            listed=listed,
        ) from None


def unknown_arguments(tool: str, arguments: Mapping[str, object], known: Iterable[str]) -> str | None:
    """The error for arguments `tool` does not take, or None. The SDK drops unknown arguments without
    a word, so a model that writes `top_k` for `k` would silently get the default; the server calls
    this with the raw arguments to tell it instead. Names are clipped: they come from the caller."""
    names = list(known)
    unknown = [name for name in arguments if name not in names]
    if not unknown:
        return None
    shown = ", ".join(repr(name if len(name) <= 40 else name[:40] + "…") for name in unknown[:5])
    more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
    plural = "s" if len(unknown) > 1 else ""
    return f"unknown argument{plural} {shown}{more} for {tool}; it takes only: {', '.join(names)}"


Query = Annotated[
    str,
    Field(
        min_length=1,
        max_length=QUERY_MAX_CHARS,
        description="What to look for, in natural language or keywords.",
    ),
    BeforeValidator(_valid_unicode),
    AfterValidator(_printable),
    AfterValidator(_not_blank),
]
TopK = Annotated[
    int,
    Field(ge=1, le=TOP_K_MAX, description=f"How many results to return (1-{TOP_K_MAX})."),
    BeforeValidator(_whole_number),
]
Freshness = Annotated[
    Literal["day", "week", "month", "year"] | None,
    Field(description="Only results published within this period, where the provider supports it."),
]
CollectionName = Annotated[
    Annotated[
        str,
        Field(max_length=COLLECTION_MAX_CHARS, json_schema_extra={"pattern": COLLECTION_PATTERN}),
        BeforeValidator(_valid_unicode),
        _charset(COLLECTION_PATTERN, COLLECTION_CHARS),
    ]
    | None,
    Field(description="Collection to search; omit for the default. See router://config."),
]


class ChatMessageIn(BaseModel):
    """One turn of the conversation: who said it and the text, nothing else."""

    # Other fields are refused, not dropped: a `name` or `tool_calls` the caller meant to send would
    # otherwise vanish without a word. (The docstring above is the schema's description in tools/list.)
    model_config = ConfigDict(extra="forbid")

    role: Literal["system", "user", "assistant"] = Field(description="Who said it.")
    content: Annotated[
        str,
        Field(max_length=MESSAGE_MAX_CHARS, description="The message text."),
        BeforeValidator(_valid_unicode),
        BeforeValidator(_content_is_text),
        AfterValidator(_no_nul),
    ]

    @model_validator(mode="before")
    @classmethod
    def _only_role_and_content(cls, data: object) -> object:
        if isinstance(data, ChatMessageIn):
            return data
        if not isinstance(data, dict):  # pydantic would say "a valid dictionary or instance of ChatMessageIn"
            raise _error(
                "message_type",
                'must be an object like {"role": "user", "content": "..."}, not {got}',
                got=_json_type(data),
            )
        if unknown := [k for k in data if k not in ("role", "content")]:
            names = ", ".join(repr(str(k)[:40]) for k in unknown[:5])
            raise _error(
                "message_fields",
                "has unknown field(s) {names}; a message has only 'role' and 'content'",
                names=names,
            )
        return data


Messages = Annotated[
    list[ChatMessageIn],
    Field(
        min_length=1,
        max_length=MESSAGES_MAX,
        description=f"The conversation so far, oldest first: at most {MESSAGES_MAX} messages of at most "
        f"{MESSAGE_MAX_CHARS:,} characters each and {MESSAGES_TOTAL_MAX_CHARS:,} in all.",
    ),
    AfterValidator(_within_total),
    AfterValidator(_has_user_turn),
    WrapValidator(_few_errors),
]
MaxTokens = Annotated[
    int,
    Field(ge=1, le=MAX_TOKENS_MAX, description="Upper bound on generated tokens."),
    BeforeValidator(_whole_number),
]
Temperature = Annotated[
    float,
    Field(
        ge=0.0,
        le=TEMPERATURE_MAX,
        allow_inf_nan=False,
        description="Sampling temperature; 0 is deterministic.",
    ),
    BeforeValidator(_not_boolean),
]
SessionId = Annotated[
    Annotated[
        str,
        Field(max_length=SESSION_ID_MAX_CHARS, json_schema_extra={"pattern": SESSION_ID_PATTERN}),
        BeforeValidator(_valid_unicode),
        AfterValidator(_session_id_not_empty),
        _charset(SESSION_ID_PATTERN, SESSION_ID_CHARS),
    ]
    | None,
    Field(
        description="Ties the turns of one conversation together for routing: up to "
        f"{SESSION_ID_MAX_CHARS} {SESSION_ID_CHARS}."
    ),
]
BudgetUsd = Annotated[
    Annotated[
        float,
        # gt, not ge: the planner reads a budget of 0 as "none given" and would apply the default.
        Field(gt=0, le=BUDGET_USD_MAX, allow_inf_nan=False),
        BeforeValidator(_not_boolean),
    ]
    | None,
    Field(
        description="Spending cap in USD for the whole session (with session_id) or this call; the model "
        "router only picks models whose worst-case cost fits what is left.",
    ),
]
Task = Annotated[
    Annotated[str, Field(max_length=TASK_MAX_CHARS), BeforeValidator(_valid_unicode), AfterValidator(_no_nul)]
    | None,
    Field(description="What the conversation is for, if not its first user message."),
]


def _is_call_id(value: str) -> str:
    if not re.fullmatch(CALL_ID_PATTERN, value):
        raise _error(
            "call_id_format",
            "is not a call id: pass the call_id that search, retrieve or llm_complete returned "
            "('call_' and 16 hex digits)",
        )
    return value


CallId = Annotated[
    str,
    Field(
        max_length=len("call_") + 16,
        json_schema_extra={"pattern": CALL_ID_PATTERN},
        description="The call_id returned by an earlier tool call.",
    ),
    BeforeValidator(_valid_unicode),
    AfterValidator(_is_call_id),
]
Score = Annotated[
    float,
    Field(
        ge=0.0,
        le=1.0,
        allow_inf_nan=False,
        description="Quality of that call's result: 0 useless, 1 perfect.",
    ),
    BeforeValidator(_not_boolean),
]
Comment = Annotated[
    Annotated[
        str, Field(max_length=COMMENT_MAX_CHARS), BeforeValidator(_valid_unicode), AfterValidator(_no_nul)
    ]
    | None,
    Field(description="Optional note on what was good or bad."),
]


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
