"""What the judge is shown for each tool, built from the tool's request and result types."""

from __future__ import annotations

from typing import Any

from mcp_router.feedback.judge import JudgeInput
from providers.types import Completion, CompletionRequest, Passage, RetrieveRequest, SearchHit, SearchRequest

JUDGED_PASSAGES = 5  # the retrieve rubric grades the top passages only, to keep the prompt small


def judge_input(tool: str, request: Any, result: Any) -> JudgeInput | None:
    """None when there is nothing to judge (an empty result list is an implicit signal instead)."""
    if tool == "search":
        assert isinstance(request, SearchRequest)
        hits: list[SearchHit] = result
        items = tuple(f"{h.title}\n{h.url}\n{h.snippet}" for h in hits[: request.k])
        return JudgeInput("search", request.query, items) if items else None
    if tool == "retrieve":
        assert isinstance(request, RetrieveRequest)
        passages: list[Passage] = result
        items = tuple(p.text for p in passages[: min(request.k, JUDGED_PASSAGES)])
        return JudgeInput("retrieve", request.query, items) if items else None
    assert isinstance(request, CompletionRequest) and isinstance(result, Completion)
    conversation = "\n".join(f"{m.role}: {m.content}" for m in request.messages)
    return JudgeInput("llm_complete", conversation, (result.text,))
