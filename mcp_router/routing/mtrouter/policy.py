"""Which models may answer this call, and which one does: budget and context filters, Q-values, and
β-mixed selection with the propensity that makes the logs usable for training.

Pure computation (no torch, no I/O), so the rules are unit-tested exactly and the server, the
trainer's off-policy checks and the tests share one implementation.

Two prompt-size estimates, because the two errors cost differently:
- the **budget** uses an upper bound (one token per two UTF-8 bytes, plus per-message overhead), so a
  session never spends past its budget even when the tokenizer is unknown;
- the **context filter** uses a typical size (four bytes per token): overestimating would shut a
  small local model out of conversations it can hold, while underestimating only costs a provider
  rejection, which the dispatcher turns into a fallback to the next model.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from mcp_router.routing.mtrouter.pool import ModelSpec

MESSAGE_OVERHEAD_TOKENS = 8  # role markers and separators of a chat template
MIN_OUTPUT_TOKENS = 16  # a model that cannot afford this many output tokens is not worth calling
DEFAULT_QUALITY_PRIOR = 0.5


def _prompt_tokens(messages: Sequence[Mapping[str, str]], bytes_per_token: int) -> int:
    return MESSAGE_OVERHEAD_TOKENS + sum(
        math.ceil(len(m["content"].encode()) / bytes_per_token) + MESSAGE_OVERHEAD_TOKENS for m in messages
    )


def prompt_tokens_bound(messages: Sequence[Mapping[str, str]]) -> int:
    """An upper bound on the prompt's tokens for any common tokenizer (≥ 2 bytes per token)."""
    return _prompt_tokens(messages, 2)


def prompt_tokens_typical(messages: Sequence[Mapping[str, str]]) -> int:
    """The usual size of the prompt (about 4 bytes per token in English)."""
    return _prompt_tokens(messages, 4)


@dataclass(frozen=True)
class Allowance:
    """A model that may serve the call, with the output it may produce and the most it can cost."""

    model: str
    max_tokens: int
    est_cost_usd: float  # upper bound: bound prompt tokens × input price + max_tokens × output price


@dataclass(frozen=True)
class Admission:
    allowed: dict[str, Allowance]  # in pool order
    excluded: dict[str, str]  # model -> why it may not serve this call


def admit(
    pool: Sequence[ModelSpec],
    messages: Sequence[Mapping[str, str]],
    max_tokens: int,
    remaining_usd: float | None,
) -> Admission:
    """Filter the pool by context window and remaining budget; clamp each model's max_tokens to what
    its window, its output limit and the budget allow."""
    bound = prompt_tokens_bound(messages)
    typical = prompt_tokens_typical(messages)
    floor_out = min(max_tokens, MIN_OUTPUT_TOKENS)
    allowed: dict[str, Allowance] = {}
    excluded: dict[str, str] = {}
    for model in pool:
        out = min(max_tokens, model.max_output_tokens or max_tokens)
        if model.context_window is not None:
            if typical + floor_out > model.context_window:
                excluded[model.name] = (
                    f"context: the conversation (~{typical} tokens) does not fit its "
                    f"{model.context_window}-token window"
                )
                continue
            out = min(out, model.context_window - typical)
        input_cost = bound * model.input_cost_per_token
        if remaining_usd is not None:
            left = remaining_usd - input_cost
            if model.output_cost_per_token > 0:
                out = min(out, math.floor(max(left, 0.0) / model.output_cost_per_token))
            if left < 0 or out < floor_out:
                need = input_cost + floor_out * model.output_cost_per_token
                excluded[model.name] = f"budget: needs up to ${need:.6f}, ${max(remaining_usd, 0):.6f} left"
                continue
        allowed[model.name] = Allowance(model.name, out, input_cost + out * model.output_cost_per_token)
    return Admission(allowed, excluded)


def prior_values(
    pool: Sequence[ModelSpec], admission: Admission, lam: float, typical_cost_usd: float
) -> dict[str, float]:
    """Q₀(m) = prior quality − λ·(worst-case cost / typical conversation cost): the policy before any
    checkpoint, ignoring the history."""
    specs = {m.name: m for m in pool}
    return {
        name: (specs[name].quality_prior if specs[name].quality_prior is not None else DEFAULT_QUALITY_PRIOR)
        - lam * allowance.est_cost_usd / typical_cost_usd
        for name, allowance in admission.allowed.items()
    }


@dataclass(frozen=True)
class Pick:
    model: str
    propensity: float  # probability this policy had of picking `model`
    policy: str  # greedy | explore | only
    greedy: str
    q_values: dict[str, float] = field(default_factory=dict)


def greedy_model(
    q_values: Mapping[str, float], last_model: str | None = None, stay_bonus: float = 0.0
) -> str:
    """argmax of Q with `stay_bonus` added to the conversation's previous model, so a switch must gain
    more than the bonus: Q estimates are noisy, and a switch on a near-tie changes style mid-conversation
    for no expected gain. Ties go to the earlier model (pool order)."""
    names = list(q_values)
    if not names:
        raise ValueError("no model to pick from")
    scored = {n: q + (stay_bonus if n == last_model else 0.0) for n, q in q_values.items()}
    return max(names, key=lambda n: (scored[n], -names.index(n)))


def pick(
    q_values: Mapping[str, float],
    beta: float,
    rng: random.Random,
    last_model: str | None = None,
    stay_bonus: float = 0.0,
) -> Pick:
    """β-mixed choice over the allowed models (the keys of `q_values`, in pool order): the greedy
    model (`greedy_model`, with the stay bonus) with probability β, otherwise one drawn uniformly."""
    names = list(q_values)
    greedy = greedy_model(q_values, last_model, stay_bonus)
    if len(names) == 1:
        return Pick(greedy, 1.0, "only", greedy, dict(q_values))
    explore = rng.random() >= beta
    chosen = rng.choice(names) if explore else greedy
    propensity = beta * (chosen == greedy) + (1 - beta) / len(names)
    return Pick(chosen, propensity, "explore" if explore else "greedy", greedy, dict(q_values))


def fallback_order(
    chosen: str, q_values: Mapping[str, float], pool: Sequence[ModelSpec], fallback_model: str | None
) -> list[str]:
    """The models to try, in order: the chosen one, then the fallback model (named in config, else
    the one with the largest context window, the likeliest to take a request others rejected), then
    the rest by decreasing Q."""
    allowed = [m for m in pool if m.name in q_values]
    if fallback_model not in q_values:
        windows = [m for m in allowed if m.name != chosen]
        fallback_model = max(windows, key=lambda m: m.context_window or 0).name if windows else None
    rest = sorted((n for n in q_values if n not in (chosen, fallback_model)), key=lambda n: -q_values[n])
    return [chosen, *([fallback_model] if fallback_model and fallback_model != chosen else []), *rest]


@dataclass(frozen=True)
class SwitchStats:
    """How often a policy changes model within a conversation."""

    conversations: int
    mean_switches: float  # model changes per conversation
    share_switching: float  # conversations with at least one change


def switches(models: Sequence[str]) -> int:
    """Model changes along one conversation's calls, in order."""
    return sum(a != b for a, b in itertools.pairwise(models))


def switch_stats(conversations: Sequence[Sequence[str]]) -> SwitchStats:
    counts = [switches(models) for models in conversations]
    n = len(counts)
    return SwitchStats(n, sum(counts) / n if n else 0.0, sum(c > 0 for c in counts) / n if n else 0.0)
