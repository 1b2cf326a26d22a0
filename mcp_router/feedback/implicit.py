"""Implicit quality signals: what the conversation itself says about an earlier answer.

Documented weights (rewards in [0, 1], learned like any other signal, replaced by explicit feedback):
- provider error or timeout on a sampled call: 0 (recorded by the dispatcher as a `failure` signal);
- an empty result list from `search` or `retrieve`: EMPTY_RESULT = 0.1;
- `llm_complete`, next turn of the same session repeats the previous user message (a retry): RETRY = 0.1;
- `llm_complete`, next user message opens with a correction ("no", "that's wrong", ...): CORRECTION = 0.25.
"""

from __future__ import annotations

import re

EMPTY_RESULT = 0.1
RETRY = 0.1
CORRECTION = 0.25
_CORRECTION = re.compile(
    r"^\s*(no\b|nope\b|wrong\b|incorrect\b|not quite\b|not really\b|that'?s (not|wrong|incorrect)|"
    r"that is (not|wrong|incorrect)|you('re| are) wrong|actually,)",
    re.IGNORECASE,
)


def _normalise(text: str) -> str:
    return " ".join(text.lower().split())


def session_signal(previous_user: str, next_user: str) -> tuple[float, str] | None:
    """(reward, reason) that the next user turn implies for the answer to the previous one, if any."""
    if previous_user and _normalise(previous_user) == _normalise(next_user):
        return RETRY, "retried turn"
    if _CORRECTION.match(next_user):
        return CORRECTION, "correction in the next user message"
    return None
