"""MTRouter training targets: the annealed error cost, the generic MCP error rules and per-step targets."""

from __future__ import annotations

import math

import pytest

from mcp_router.routing.mtrouter.targets import (
    ERROR_RULES,
    RULES_VERSION,
    SEVERITIES,
    AECConfig,
    EpisodeStep,
    ErrorRule,
    episode_targets,
    fired_rules,
    step_penalty,
)

CFG = AECConfig()


def kinds(observation: str | None) -> list[str]:
    return [r.name for r in fired_rules(observation)]


def test_worked_example_of_the_reference() -> None:
    # §7.2, N = 8, severity high: t = 1 -> p = .25, w = .3, ρ = max(.125·.3, .025); t = 6 -> p = .875, w = 1.
    assert step_penalty(1, ["high"], CFG, 8) == pytest.approx(0.0375)
    assert step_penalty(6, ["high"], CFG, 8) == pytest.approx(0.125)


def test_penalty_ramp_floor_and_severity() -> None:
    # p = 4/8 = .5 lies on the ramp: w = .3 + .7·(.5 − .3)/(.7 − .3) = .65, ρ = .125·.65 = .08125.
    assert step_penalty(3, ["high"], CFG, 8) == pytest.approx(0.08125)
    # low early: .125·.2·.3 = .0075 is under the floor f_min·base = .025.
    assert step_penalty(1, ["low"], CFG, 8) == pytest.approx(0.025)
    # the worst fired severity counts; an unknown severity counts as medium (.8).
    assert step_penalty(6, ["low", "high"], CFG, 8) == pytest.approx(0.125)
    assert step_penalty(6, ["bogus"], CFG, 8) == pytest.approx(0.1)
    assert step_penalty(6, ["bogus"], CFG, 8) == step_penalty(6, ["medium"], CFG, 8)
    # past N, p stays 1 and ρ stays at the cap 1/N
    assert step_penalty(40, ["high"], CFG, 8) == pytest.approx(0.125)
    assert step_penalty(6, [], CFG, 8) == 0.0
    with pytest.raises(ValueError, match="expected_steps"):
        step_penalty(0, ["high"], CFG, 0)


def test_multi_step_episode_by_hand() -> None:
    steps = [
        EpisodeStep("a", 0.01, "No results found for 'x'", propensity=0.5),
        EpisodeStep("b", 0.02, "Traceback (most recent call last):\n  File \"t.py\"\nKeyError: 'x'", 0.05),
        EpisodeStep("a", 0.03, "42 results, all fine", propensity=1.0),
        EpisodeStep("c", 0.04, "Failed to parse tool call: unexpected token", propensity=0.25),
    ]
    # N = 4, base = .25, S = .9, c_bar = .05
    # ρ0: low (no results), p = 1/4 = .25 → w = .3: .25·.2·.3 = .015 < floor .2·.25 = .05 → .05
    # ρ1: medium (KeyError; the traceback rule is suppressed), p = .5 → w = .65: .25·.8·.65 = .13
    # ρ2: nothing fires → 0
    # ρ3: high (parse failure), p = 1 → w = 1: .25·1·1 = .25
    # A = suffix sums: A3 = .25, A2 = .25, A1 = .38, A0 = .43 → S' = .47, .52, .65, .65
    # C_rem (includes step t): .10, .09, .07, .04
    #   → cost = log(1 + C_rem/.05) = log 3, log 2.8, log 2.4, log 1.8
    # weights = min(1/p, 10): 2, 10 (1/.05 = 20 clipped), 1, 4
    out = episode_targets(steps, final_score=0.9, c_bar=0.05, cfg=CFG, expected_steps=4)
    assert [t.penalty for t in out] == pytest.approx([0.43, 0.38, 0.25, 0.25])
    assert [t.score for t in out] == pytest.approx([0.47, 0.52, 0.65, 0.65])
    assert [t.cost for t in out] == pytest.approx([math.log(3), math.log(2.8), math.log(2.4), math.log(1.8)])
    assert [t.weight for t in out] == [2.0, 10.0, 1.0, 4.0]


def test_defaults_cost_without_c_bar_and_empty_episode() -> None:
    steps = [EpisodeStep("a", 0.5, "Failed to parse tool call")]
    (target,) = episode_targets(steps, final_score=1.0, c_bar=0.0, cfg=CFG)
    # default N = 8: t = 0, p = .125 → w = .3, ρ = max(.125·.3, .025) = .0375
    assert target.penalty == pytest.approx(0.0375)
    assert target.cost == 0.0
    assert episode_targets([], final_score=1.0, c_bar=1.0, cfg=CFG) == []


def test_ips_weights_are_clipped_and_propensities_checked() -> None:
    steps = [EpisodeStep("a", 0.0, propensity=0.01), EpisodeStep("a", 0.0, propensity=0.2)]
    assert [t.weight for t in episode_targets(steps, 1.0, 1.0, CFG)] == [10.0, 5.0]
    assert [t.weight for t in episode_targets(steps, 1.0, 1.0, CFG, ips_clip=50.0)] == [50.0, 5.0]
    for bad in (0.0, 1.5):
        with pytest.raises(ValueError, match="propensity"):
            episode_targets([EpisodeStep("a", 0.0, propensity=bad)], 1.0, 1.0, CFG)
    with pytest.raises(ValueError, match="cost_usd"):
        episode_targets([EpisodeStep("a", -1.0)], 1.0, 1.0, CFG)


def test_named_exception_suppresses_generic_traceback() -> None:
    generic = 'Traceback (most recent call last):\n  File "x.py", line 1\nboom'
    assert kinds(generic) == ["python_traceback"]
    assert kinds(generic + "\nValueError: bad") == ["python_exception"]
    assert kinds(generic + "\njson.decoder.JSONDecodeError: Expecting value") == ["tool_call_parse"]


def test_generic_mcp_rules() -> None:
    assert kinds("Error: Invalid params for tool search") == ["invalid_arguments"]
    assert kinds("1 validation error for SearchArgs\nquery\n  Field required") == ["invalid_arguments"]
    assert kinds("HTTP Error 404: Not Found") == ["http_4xx"]
    assert kinds("Server error '503 Service Unavailable' for url 'https://x'") == ["http_5xx"]
    # a 429 is a rate limit, not a generic client error
    assert kinds("Client error '429 Too Many Requests' for url 'https://x'") == ["rate_limit"]
    assert kinds("The read operation timed out") == ["timeout"]
    assert kinds("No results found.") == ["no_results"]
    assert kinds("Search returned 0 results") == ["no_results"]
    assert kinds("Found 10 results") == []
    assert kinds(None) == [] and kinds("") == []


def test_rules_are_case_sensitive() -> None:
    assert kinds("TRACEBACK (MOST RECENT CALL LAST)") == []
    assert kinds("failed to parse tool call") == []


def test_rule_table_is_consistent() -> None:
    assert RULES_VERSION
    names = {r.name for r in ERROR_RULES}
    assert {"tool_call_parse", "invalid_arguments", "python_traceback", "http_4xx", "http_5xx"} <= names
    assert {"timeout", "rate_limit", "no_results"} <= names
    assert all(r.severity in SEVERITIES for r in ERROR_RULES)
    assert all(s in names for r in ERROR_RULES for s in r.suppresses)


def test_custom_rules() -> None:
    rules = (ErrorRule("invalid_action", "No known action matches", "weird"),)
    assert [r.name for r in fired_rules("No known action matches that input.", rules)] == ["invalid_action"]
    (target,) = episode_targets(
        [EpisodeStep("a", 0.0, "No known action matches")], 1.0, 1.0, CFG, expected_steps=1, rules=rules
    )
    assert target.penalty == pytest.approx(0.8)  # N = 1: p = 1, w = 1, unknown severity → medium .8
