"""From logged steps to training targets: which steps are labelled, with what score, cost and weight."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mcp_router.logged_sessions import episodes_from_steps, step_targets
from mcp_router.model_training import holdout_split
from mcp_router.routing.mtrouter.targets import AECConfig

POOL = ["big", "small"]


def row(step_id: int, session: str, turn: int, outcome: float | None = None, **fields: Any) -> dict[str, Any]:
    history = [{"role": "user", "content": "q0"}]
    for t in range(turn):
        history += [{"role": "assistant", "content": f"a{t}"}, {"role": "user", "content": f"q{t + 1}"}]
    base = {
        "step_id": step_id,
        "session_id": session,
        "turn": turn,
        "status": "ok",
        "chosen_model": "small",
        "served_model": "small",
        "propensity": 0.5,
        "cost_usd": 0.01,
        "history": history,
        "task": None,
        "outcome": outcome,
    }
    return base | fields


def test_a_session_is_cut_at_its_last_rated_step_and_takes_that_rating() -> None:
    rows = [
        row(1, "s", 0, outcome=0.2),
        row(2, "s", 1, outcome=0.9),
        row(3, "s", 2),  # after the last rating: no outcome yet, left out
        row(4, "unrated", 0),
        row(5, "t", 0, outcome=1.0, served_model="retired-model"),  # outside the pool
        row(6, "u", 0, outcome=0.0, status="failed", served_model=None),
    ]
    episodes = episodes_from_steps(rows, POOL)
    assert [(e.session_id, [s["step_id"] for s in e.steps], e.score) for e in episodes] == [
        ("s", [1, 2], 0.9)
    ]
    assert episodes[0].cost_usd == pytest.approx(0.02)


def test_steps_are_ordered_by_turn_whatever_the_log_order() -> None:
    rows = [row(9, "s", 1, outcome=1.0), row(3, "s", 0)]
    (episode,) = episodes_from_steps(rows, POOL)
    assert [s["turn"] for s in episode.steps] == [0, 1]


def test_targets_charge_an_error_seen_in_the_next_turn_and_weight_by_propensity() -> None:
    first = row(1, "s", 0, served_model="big", chosen_model="big", propensity=0.25, cost_usd=0.03)
    second = row(2, "s", 1, outcome=0.8, chosen_model="big", cost_usd=0.01)  # a fallback served "small"
    second["history"][-1]["content"] = "Traceback (most recent call last):\nKeyError: 'x'"
    (episode,) = episodes_from_steps([first, second], POOL)
    targets = step_targets(episode, c_bar=0.02, aec=AECConfig())
    # N = 8; a named Python exception (medium, coef 0.8) follows step 0: p = 1/8 <= 0.3 so w = 0.3;
    # rho_0 = max(0.125 * 0.8 * 0.3, 0.2 * 0.125) = 0.03; step 1 has no observation: rho_1 = 0.
    assert targets[0].penalty == pytest.approx(0.03) and targets[1].penalty == 0.0
    assert targets[0].score == pytest.approx(0.8 - 0.03) and targets[1].score == pytest.approx(0.8)
    # C_rem includes the step itself: log1p(0.04 / 0.02) and log1p(0.01 / 0.02)
    assert targets[0].cost == pytest.approx(1.0986123) and targets[1].cost == pytest.approx(0.4054651)
    assert targets[0].weight == pytest.approx(4.0)  # 1 / 0.25
    assert targets[1].weight == 1.0  # served by a fallback: its propensity is unknown


def test_holdout_takes_whole_sessions_and_none_from_a_single_one() -> None:
    episodes = episodes_from_steps([row(i, f"s{i}", 0, outcome=1.0) for i in range(10)], POOL)
    train, held = holdout_split(episodes, seed=3)
    assert len(held) == 2 and len(train) == 8
    assert not {e.session_id for e in train} & {e.session_id for e in held}
    assert holdout_split(episodes[:1], seed=3) == (episodes[:1], [])


def _rated_sessions(db: Path, n: int) -> None:
    """`n` one-step sessions of `small`, each rated, written through the store as the server does."""
    from mcp_router.store import AttemptRecord, CallRecord, StepRecord, Store

    store = Store(db)
    for i in range(n):
        step = StepRecord(
            session_id=f"s{i}",
            turn=0,
            chosen_model="small",
            propensity=0.5,
            policy="greedy",
            stage="prior",
            checkpoint_id=None,
            lam=1.0,
            q_values={"small": 0.5, "big": 0.4},
            excluded={},
            history=[{"role": "user", "content": f"question {i}"}],
            task=None,
            obs_rules=[],
            budget_usd=None,
            spent_before_usd=0.0,
            est_cost_usd=0.001,
            max_tokens=8,
            served_model="small",
            prompt_tokens=5,
            completion_tokens=3,
        )
        store.record_call(
            CallRecord(
                call_id=f"call_{i}",
                tool="llm_complete",
                router="lqm",
                ts=float(i),
                request={},
                attempts=[AttemptRecord("small-ep", "ok", 0.1, ts_done=float(i))],
                session_id=f"s{i}",
                cost_usd=0.001,
                step=step,
            )
        )
        store.add_feedback(f"call_{i}", 0.8, "explicit", now=float(i) + 0.5)
    store.close()


def test_the_promotion_gate_refuses_without_enough_sessions_to_hold_out(tmp_path: Path) -> None:
    """No checkpoint is promoted without a held-out comparison; too little data is refused with how
    much more is needed (only --force overrides, and says so)."""
    from mcp_router.config import load_config
    from mcp_router.model_training import NothingToTrain, sessions_needed, train_from_db

    config = tmp_path / "router.toml"
    config.write_text(
        'auto_providers = false\n[tools.llm_complete.mtrouter]\nembedder = "hashing"\n'
        + "".join(
            f'[[tools.llm_complete.providers]]\nname = "{m}-ep"\ntype = "openai"\nmodel = "{m}"\n'
            f'api_key_env = "MCP_ROUTER_TEST_KEY"\nenabled = true\nquality_prior = 0.5\n'
            for m in POOL
        )
    )
    loaded = load_config(config)
    db = tmp_path / "r.db"
    _rated_sessions(db, 1)
    with pytest.raises(
        NothingToTrain, match=rf"needs {sessions_needed()}: rate {sessions_needed() - 1} more"
    ):
        train_from_db(loaded, db)
    forced = train_from_db(loaded, db, force=True)
    assert (
        forced["promoted"]
        and forced["forced"]
        and forced["gate"]
        == {
            "passes": False,
            "reason": "no held-out session",
        }
    )
