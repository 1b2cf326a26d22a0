"""Training targets: a finished conversation -> one (score, cost, weight) target per logged step.

MTRouter regresses Monte-Carlo returns (reference §7): every step gets the episode's final score minus
the annealed error cost (AEC) of the steps from it onwards, and the log of the remaining cost relative
to the mean episode cost. AEC charges an error seen in the observation after a step, little early in an
episode and up to 1/N late, so an episode that recovers from early errors keeps most of its credit.

Errors are detected by case-sensitive substring rules over the observation (the tool result or the
next message). The rules here are the generic MCP ones of reference §11.7; `RULES_VERSION` names the
set so a checkpoint can record which rules made its targets. No torch here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

SEVERITIES = ("high", "medium", "low")


@dataclass(frozen=True)
class AECConfig:
    """AEC settings; the values are the authors' training config (§7.2), not their code defaults."""

    p0: float = 0.3
    p1: float = 0.7
    w_min: float = 0.3
    w_max: float = 1.0
    f_min: float = 0.2
    coef: Mapping[str, float] = field(
        default_factory=lambda: {"high": 1.0, "medium": 0.8, "low": 0.2}, hash=False
    )
    expected_steps: int = 8  # N when no per-task value is known (the reference's HLE default)


@dataclass(frozen=True)
class ErrorRule:
    """A case-sensitive substring rule. `name` is the error kind: several patterns may share it, and
    `suppresses` lists kinds a match of this rule silences (a named exception silences the generic
    traceback, a 429 the generic 4xx)."""

    name: str
    pattern: str
    severity: str
    suppresses: tuple[str, ...] = ()


RULES_VERSION = "mcp-generic-1"

_NAMED_EXCEPTIONS = (
    "ValueError:",
    "TypeError:",
    "KeyError:",
    "IndexError:",
    "AttributeError:",
    "NameError:",
    "ZeroDivisionError:",
    "SyntaxError:",
    "ModuleNotFoundError:",
    "ImportError:",
    "AssertionError",
    "RuntimeError:",
    "FileNotFoundError:",
    "PermissionError:",
    "RecursionError:",
    "MemoryError",
    "OverflowError:",
    "NotImplementedError",
)

# Severity says how much an error reflects on the model that made the call: malformed calls are the
# model's doing (high), failing code or client errors partly (medium), outages and empty results
# mostly not (low).
ERROR_RULES: tuple[ErrorRule, ...] = (
    # tool-call parse failure
    ErrorRule("tool_call_parse", "Failed to parse tool call", "high"),
    ErrorRule("tool_call_parse", "JSONDecodeError", "high", suppresses=("python_traceback",)),
    ErrorRule("tool_call_parse", "Parse error", "high"),  # JSON-RPC -32700
    # invalid arguments
    ErrorRule("invalid_arguments", "Invalid params", "high"),  # JSON-RPC -32602
    ErrorRule("invalid_arguments", "Invalid arguments", "high"),
    ErrorRule("invalid_arguments", "validation error for", "high", suppresses=("python_traceback",)),
    ErrorRule("invalid_arguments", "Unknown tool", "high"),
    ErrorRule("invalid_arguments", "Method not found", "high"),  # JSON-RPC -32601
    # Python traceback: the generic rule, and named exceptions that silence it
    ErrorRule("python_traceback", "Traceback (most recent call last)", "medium"),
    *(
        ErrorRule("python_exception", e, "medium", suppresses=("python_traceback",))
        for e in _NAMED_EXCEPTIONS
    ),
    # rate limit (before the generic 4xx it silences)
    ErrorRule("rate_limit", "Too Many Requests", "low", suppresses=("http_4xx",)),
    ErrorRule("rate_limit", "Rate limit", "low", suppresses=("http_4xx",)),
    ErrorRule("rate_limit", "rate limit", "low", suppresses=("http_4xx",)),
    ErrorRule("rate_limit", "RateLimitError", "low", suppresses=("http_4xx", "python_traceback")),
    # HTTP 4xx / 5xx, as urllib, requests and httpx word them
    ErrorRule("http_4xx", "HTTP Error 4", "medium"),
    ErrorRule("http_4xx", "Client error '4", "medium"),
    ErrorRule("http_4xx", "Client Error:", "medium"),
    ErrorRule("http_4xx", "400 Bad Request", "medium"),
    ErrorRule("http_4xx", "401 Unauthorized", "medium"),
    ErrorRule("http_4xx", "403 Forbidden", "medium"),
    ErrorRule("http_4xx", "404 Not Found", "medium"),
    ErrorRule("http_5xx", "HTTP Error 5", "low"),
    ErrorRule("http_5xx", "Server error '5", "low"),
    ErrorRule("http_5xx", "Server Error:", "low"),
    ErrorRule("http_5xx", "500 Internal Server Error", "low"),
    ErrorRule("http_5xx", "502 Bad Gateway", "low"),
    ErrorRule("http_5xx", "503 Service Unavailable", "low"),
    ErrorRule("http_5xx", "504 Gateway Timeout", "low"),
    # timeout
    ErrorRule("timeout", "timed out", "low"),
    ErrorRule("timeout", "Timed out", "low"),
    ErrorRule("timeout", "Timeout", "low", suppresses=("python_traceback",)),
    # no results
    ErrorRule("no_results", "No results", "low"),
    ErrorRule("no_results", "no results", "low"),
    ErrorRule("no_results", " 0 results", "low"),  # the space keeps "10 results" out
)


def fired_rules(observation: str | None, rules: Sequence[ErrorRule] = ERROR_RULES) -> list[ErrorRule]:
    """The rules matching `observation`, one per kind (its first matching pattern, in rule order),
    minus the kinds that another match suppresses."""
    if not observation:
        return []
    first: dict[str, ErrorRule] = {}
    suppressed: set[str] = set()
    for rule in rules:
        if rule.pattern in observation:
            first.setdefault(rule.name, rule)
            suppressed.update(rule.suppresses)
    return [rule for name, rule in first.items() if name not in suppressed]


def step_penalty(t: int, severities: Sequence[str], cfg: AECConfig, expected_steps: int) -> float:
    """ρ_t of reference §7.2 for 0-based step t whose observation fired rules of `severities`
    (empty: 0). A severity not in `cfg.coef` counts as medium."""
    if not severities:
        return 0.0
    if expected_steps < 1:
        raise ValueError(f"expected_steps must be >= 1, got {expected_steps}")
    base = 1.0 / expected_steps
    p = min((t + 1) / expected_steps, 1.0)
    if p <= cfg.p0:
        w = cfg.w_min
    elif p >= cfg.p1:
        w = cfg.w_max
    else:
        w = cfg.w_min + (cfg.w_max - cfg.w_min) * (p - cfg.p0) / (cfg.p1 - cfg.p0)
    m = max(cfg.coef.get(s, cfg.coef["medium"]) for s in severities)
    return max(base * m * w, cfg.f_min * base)


@dataclass(frozen=True)
class EpisodeStep:
    """One logged call: the model chosen, its cost, the observation that followed it and the
    probability the logging policy had of choosing that model (1 when unlogged)."""

    model: str
    cost_usd: float
    observation: str | None = None
    propensity: float = 1.0


@dataclass(frozen=True)
class StepTarget:
    score: float  # S'_t = S − A_t (may be negative)
    cost: float  # log(1 + C_rem(t)/c_bar), 0 when c_bar <= 0
    penalty: float  # A_t = Σ_{i >= t} ρ_i
    weight: float  # min(1/propensity, ips_clip)


def episode_targets(
    steps: Sequence[EpisodeStep],
    final_score: float,
    c_bar: float,
    cfg: AECConfig,
    expected_steps: int | None = None,
    ips_clip: float = 10.0,
    rules: Sequence[ErrorRule] = ERROR_RULES,
) -> list[StepTarget]:
    """Per-step targets of one finished episode. Remaining quantities include step t itself (A_t and
    C_rem(t) sum over i = t..T−1), as in the authors' code. `expected_steps` is N (default
    `cfg.expected_steps`); `c_bar` is the mean total episode cost of the training set."""
    n = cfg.expected_steps if expected_steps is None else expected_steps
    rho = []
    for t, step in enumerate(steps):
        if not (0.0 < step.propensity <= 1.0):
            raise ValueError(f"step {t}: propensity must be in (0, 1], got {step.propensity}")
        if not (math.isfinite(step.cost_usd) and step.cost_usd >= 0):
            raise ValueError(f"step {t}: cost_usd must be a finite number >= 0, got {step.cost_usd}")
        rho.append(step_penalty(t, [r.severity for r in fired_rules(step.observation, rules)], cfg, n))
    targets: list[StepTarget] = []
    a_rem = c_rem = 0.0
    for t in range(len(steps) - 1, -1, -1):
        a_rem += rho[t]
        c_rem += steps[t].cost_usd
        targets.append(
            StepTarget(
                score=final_score - a_rem,
                cost=math.log1p(c_rem / c_bar) if c_bar > 0 else 0.0,
                penalty=a_rem,
                weight=min(1.0 / steps[t].propensity, ips_clip),
            )
        )
    return targets[::-1]
