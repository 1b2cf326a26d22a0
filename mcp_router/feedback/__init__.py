"""Quality feedback for the routers: the LLM-as-judge rubrics (`judge`) and the benchmarks' simulated
judge (`simulated`)."""

from mcp_router.feedback.judge import (
    RUBRIC_VERSION,
    TOOLS,
    JudgeInput,
    conversation_text,
    grades_to_reward,
    judge_messages,
    max_tokens_for,
    parse_grades,
    parse_verdict,
    required_keys,
)
from mcp_router.feedback.simulated import SimulatedJudge

__all__ = [
    "RUBRIC_VERSION",
    "TOOLS",
    "JudgeInput",
    "SimulatedJudge",
    "conversation_text",
    "grades_to_reward",
    "judge_messages",
    "max_tokens_for",
    "parse_grades",
    "parse_verdict",
    "required_keys",
]
