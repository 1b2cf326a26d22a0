"""The history text MTRouter embeds: the task plus the most recent turns that fit a token budget.

Training and inference must render a conversation identically, or the estimator sees a different
distribution at run time; this module is that single rendering (reference §3.2, with the MCP
adaptation of §3.3 and the two packings of §4.2). It is pure text work: token counts come from the
embedder's `count_tokens` so the budget matches the embedder's window, and nothing here imports torch.

Rendering of a message list (roles `system`, `user`, `assistant`, `tool`):

1. Task: an explicit `task` argument if given, else taken from the first user message by the first
   matching rule: `<task_description>` text; the block after a `## HLE Question` heading up to the
   first `---` line; the first "Your task is to … ." sentence; the whole message, stripped.
2. 20 tokens are reserved for the format markers; a task at or over `max_tokens - 20` tokens is cut to
   that length and rendered alone (`single`).
3. Context: system messages are dropped. The first user message keeps only its
   `<initial_observation>` text, or is dropped without that tag, because the task already carries it.
   With an explicit `task` the first user message is not the task, so it stays in the context whole.
4. Recency-first packing: newest to oldest, each message costs tokens(content) + 10; packing stops at
   the first message that does not fit, so no older message is packed after a gap.
5. Absolute turn numbers: every maximal run of non-assistant messages (user or tool) opens a turn; the
   runs in the whole context list are numbered 1..U, an assistant message shares the number of the run
   before it, and one before any run gets 0. Each kept message renders as `[Turn k - role]\\ncontent`.

The `turns` packing (a project extension, reference §4.2 leaves it open) replaces step 4: instead of
dropping whatever does not fit one window, every context message (the newest `max_messages`) is cut
into window-sized chunks, each embedded on its own and pooled by recency in `pooling.py`. A message's
chunk texts depend only on the message and its absolute turn number, so as a conversation grows its
old chunks keep their cache keys and only the new turn is embedded.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

Message = Mapping[str, str]
CountTokens = Callable[[str], int]
ChunkText = Callable[[str, int], list[str]]  # (text, tokens per chunk) -> chunks; [] for blank text

FORMAT_RESERVE = 20  # tokens kept free for "[Task]", "[Context]" and the separators
MESSAGE_OVERHEAD = 10  # tokens charged per packed message for its "[Turn k - role]" header
DEFAULT_MAX_TOKENS = 254  # all-MiniLM-L6-v2's 256-token window minus [CLS] and [SEP]
TASK_HEADER = "[Task]\n"
CONTEXT_HEADER = "[Context]\n"

_TASK_DESCRIPTION = re.compile(r"<task_description>(.*?)</task_description>", re.DOTALL)
_HLE_BLOCK = re.compile(r"^##\s*HLE Question[^\n]*\n(.*?)(?=^-{3,}\s*$|\Z)", re.DOTALL | re.MULTILINE)
_YOUR_TASK = re.compile(r"Your task is to[^.]*\.", re.DOTALL)
_INITIAL_OBSERVATION = re.compile(r"<initial_observation>(.*?)</initial_observation>", re.DOTALL)


@dataclass(frozen=True)
class _ContextMessage:
    role: str
    content: str
    turn: int


def _content(message: Message) -> str:
    return str(message.get("content") or "")


def _first_user_index(messages: Sequence[Message]) -> int | None:
    return next((i for i, m in enumerate(messages) if m.get("role") == "user"), None)


def extract_task(first_user_message: str) -> str:
    """The task segment of the first user message: the first of the four rules of §3.2 that matches."""
    for pattern in (_TASK_DESCRIPTION, _HLE_BLOCK):
        found = pattern.search(first_user_message)
        if found:
            return found.group(1).strip()
    found = _YOUR_TASK.search(first_user_message)
    if found:
        return found.group(0).strip()
    return first_user_message.strip()


def truncate_to_tokens(text: str, limit: int, count_tokens: CountTokens) -> str:
    """The longest prefix of `text` with at most `limit` tokens, cut back to a word boundary when one
    exists (binary search on the prefix length, since only a counter is available, not a tokenizer)."""
    if limit <= 0:
        return ""
    if count_tokens(text) <= limit:
        return text
    lo, hi = 0, len(text)  # invariant: prefix of length lo fits, prefix of length hi does not
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if count_tokens(text[:mid]) <= limit:
            lo = mid
        else:
            hi = mid
    prefix = text[:lo]
    if not text[lo].isspace():  # the cut splits a word: drop the partial word if a boundary exists
        boundary = max(prefix.rfind(" "), prefix.rfind("\n"), prefix.rfind("\t"))
        if boundary > 0:
            prefix = prefix[:boundary]
    return prefix.rstrip()


def _task_text(messages: Sequence[Message], task: str | None) -> str:
    if task is not None:
        return task.strip()
    first_user = _first_user_index(messages)
    return "" if first_user is None else extract_task(_content(messages[first_user]))


def _context_messages(messages: Sequence[Message], explicit_task: bool) -> list[_ContextMessage]:
    """Steps 3 and 5: the messages that may enter the context, each with its absolute turn number."""
    first_user = None if explicit_task else _first_user_index(messages)
    kept: list[tuple[str, str]] = []
    for i, message in enumerate(messages):
        role = str(message.get("role") or "")
        if role == "system":
            continue
        content = _content(message)
        if i == first_user:
            found = _INITIAL_OBSERVATION.search(content)
            if not found:
                continue
            content = found.group(1)
        kept.append((role, content))
    opens_turn = [
        role != "assistant" and (i == 0 or kept[i - 1][0] == "assistant") for i, (role, _) in enumerate(kept)
    ]
    turn = sum(opens_turn)
    numbered: list[_ContextMessage] = []
    for (role, content), opens in zip(reversed(kept), reversed(opens_turn), strict=True):
        numbered.append(_ContextMessage(role, content, turn))
        if opens:
            turn -= 1
    numbered.reverse()
    return numbered


def _pack(context: list[_ContextMessage], budget: int, count_tokens: CountTokens) -> str:
    """Step 4: newest first while the budget lasts; the first message that does not fit ends packing."""
    packed: list[str] = []
    for message in reversed(context):
        cost = count_tokens(message.content) + MESSAGE_OVERHEAD
        if cost > budget:
            break
        budget -= cost
        packed.append(f"[Turn {message.turn} - {message.role}]\n{message.content}")
    return "\n\n".join(reversed(packed))


def render_split(
    messages: Sequence[Message],
    count_tokens: CountTokens,
    max_tokens: int = DEFAULT_MAX_TOKENS,
    task: str | None = None,
) -> tuple[str, str]:
    """(`[Task]\\n{task}`, `[Context]\\n{packed}` or "") for the `split` packing of §4.2.

    The two strings are embedded separately, so each has the whole window: the task string is cut to
    `max_tokens` tokens and the context is packed with B = max_tokens - 20, independent of the task."""
    task_text = _task_text(messages, task)
    task_limit = max_tokens - count_tokens(TASK_HEADER)
    task_string = TASK_HEADER + truncate_to_tokens(task_text, task_limit, count_tokens)
    context = _pack(_context_messages(messages, task is not None), max_tokens - FORMAT_RESERVE, count_tokens)
    return task_string, (CONTEXT_HEADER + context) if context else ""


def render_single(
    messages: Sequence[Message],
    count_tokens: CountTokens,
    max_tokens: int = DEFAULT_MAX_TOKENS,
    task: str | None = None,
) -> str:
    """One string `[Task]\\n{task}\\n\\n[Context]\\n{packed}` (the faithful `single` packing of §3.2):
    the context budget is what the task leaves, B = max_tokens - task_tokens - 20."""
    task_text = _task_text(messages, task)
    task_tokens = count_tokens(task_text)
    if task_tokens >= max_tokens - FORMAT_RESERVE:
        return TASK_HEADER + truncate_to_tokens(task_text, max_tokens - FORMAT_RESERVE, count_tokens)
    budget = max_tokens - task_tokens - FORMAT_RESERVE
    context = _pack(_context_messages(messages, task is not None), budget, count_tokens)
    if not context:
        return TASK_HEADER + task_text
    return f"{TASK_HEADER}{task_text}\n\n{CONTEXT_HEADER}{context}"


@dataclass(frozen=True)
class TurnsRendering:
    """The texts the `turns` packing embeds: the task's chunks (at least one, `[Task]\\n` alone for an
    empty task, as `split` renders it) and each kept context message's chunks, oldest message first."""

    task: tuple[str, ...]
    messages: tuple[tuple[str, ...], ...]

    def texts(self) -> list[str]:
        """Every chunk in embedding order: the task's, then each message's, oldest first."""
        return [*self.task, *(text for message in self.messages for text in message)]


def render_turns(
    messages: Sequence[Message],
    count_tokens: CountTokens,
    chunk: ChunkText,
    max_tokens: int = DEFAULT_MAX_TOKENS,
    task: str | None = None,
    max_messages: int = 8,
    max_chunks: int = 8,
) -> TurnsRendering:
    """Chunked task and context for the `turns` packing. Each task chunk is `[Task]\\n{chunk}` and each
    message chunk `[Turn k - role]\\n{chunk}`, sized so header and chunk fit `max_tokens`. A task that
    fits one window gives exactly `render_split`'s task string, so the two packings share its
    embedding. Only the newest `max_messages` messages and the first `max_chunks` chunks of each text
    are kept: a bound on the work of one call whatever the conversation's length."""
    task_text = _task_text(messages, task)
    task_chunks = chunk(task_text, max_tokens - count_tokens(TASK_HEADER))[:max_chunks] or [""]
    context = _context_messages(messages, task is not None)[-max_messages:] if max_messages > 0 else []
    rendered: list[tuple[str, ...]] = []
    for message in context:
        parts = chunk(message.content, max_tokens - MESSAGE_OVERHEAD)[:max_chunks]
        if parts:  # a blank message carries nothing to embed and takes no recency slot
            header = f"[Turn {message.turn} - {message.role}]\n"
            rendered.append(tuple(header + part for part in parts))
    return TurnsRendering(tuple(TASK_HEADER + part for part in task_chunks), tuple(rendered))
