"""What the i-th call of the load is: mostly `search`, some `llm_complete` turns of budgeted sessions,
some `feedback` on calls acknowledged earlier.

Deterministic in (seed, i), so two runs send the same load; only `feedback` depends on what was
acknowledged before it (it rates an earlier successful call, each at most once, since a second
rating of one call is refused by design and would count as a tool error that is not a fault's).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from mcp_router.bench.load.setting import BUDGET_USD
from mcp_router.bench.overhead.setting import queries

SEARCH_SHARE = 0.75
LLM_SHARE = 0.15  # the rest (0.10) is feedback
SESSIONS = 200  # llm_complete conversations the turns are spread over
MAX_TOKENS = 32
TEXTS = queries(512, seed=11)


@dataclass(frozen=True)
class Call:
    tool: str
    args: dict[str, Any]


class Rateable:
    """Successful call_ids not yet rated; `feedback` takes one at random (swap-remove: O(1))."""

    def __init__(self) -> None:
        self.ids: list[str] = []

    def add(self, call_id: str) -> None:
        self.ids.append(call_id)

    def take(self, rng: random.Random) -> str | None:
        if not self.ids:
            return None
        index = rng.randrange(len(self.ids))
        self.ids[index], self.ids[-1] = self.ids[-1], self.ids[index]
        return self.ids.pop()


def call_of(i: int, seed: int, rateable: Rateable) -> Call:
    """The i-th call of a run with `seed`."""
    rng = random.Random(seed * 1_000_003 + i)
    draw = rng.random()
    text = TEXTS[rng.randrange(len(TEXTS))]
    if draw >= SEARCH_SHARE + LLM_SHARE and (call_id := rateable.take(rng)) is not None:
        score = round(rng.uniform(0.5, 1.0), 3)  # the same for either arm: only faults tell them apart
        return Call("feedback", {"call_id": call_id, "score": score})
    if SEARCH_SHARE <= draw < SEARCH_SHARE + LLM_SHARE:
        session = f"load-{seed}-{rng.randrange(SESSIONS)}"
        return Call(
            "llm_complete",
            {
                "messages": [{"role": "user", "content": text}],
                "max_tokens": MAX_TOKENS,
                "session_id": session,
                "budget_usd": BUDGET_USD,
            },
        )
    return Call("search", {"query": text, "k": 5})
