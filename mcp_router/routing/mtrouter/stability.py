"""Model switches within conversations, and what the stay bonus trades for fewer of them.

The server picks a model on every call of a conversation (`policy.pick`), adding `stay_bonus` to the
previous model's Q. Offline, with every model's outcome known for every turn, the same greedy rule
(`policy.greedy_model`) replays each conversation turn by turn from out-of-fold estimates: at each λ and
stay bonus we get the decisions, their true quality and cost (`evaluate.score_choice`) and the switches
(`policy.switch_stats`). Greedy only: the server's β-exploration adds switches that no bonus removes.

Caveat for data where a turn's history is fixed (MT-Bench records carry GPT-4's turn-1 answer whatever
turn 1 chose): the replay changes decisions, not the histories the later turns were recorded with.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

import numpy as np

from mcp_router.routing.mtrouter import evaluate as ev
from mcp_router.routing.mtrouter.data import RoutingRecord
from mcp_router.routing.mtrouter.policy import greedy_model, switch_stats

STAY_BONUSES: tuple[float, ...] = (0.0, 0.01, 0.02, 0.05)


def check_stay_bonuses(stay_bonuses: Sequence[float]) -> None:
    """A sweep needs the no-bonus reference and no negative bonus (that would be a switching reward)."""
    if 0.0 not in stay_bonuses or min(stay_bonuses) < 0:
        raise ValueError(
            f"stay bonuses {list(stay_bonuses)}: give non-negative values including 0 (the reference), "
            "e.g. --stay-bonus 0 0.01 0.02 0.05"
        )


def conversations(records: Sequence[RoutingRecord]) -> list[list[int]]:
    """Row indexes of `records` grouped by session, each in turn order."""
    rows: dict[str, list[int]] = defaultdict(list)
    for i, record in enumerate(records):
        rows[record.session].append(i)
    return [sorted(r, key=lambda i: records[i].turn) for r in rows.values()]


def replay(
    estimates: ev.Estimates,
    models: Sequence[str],
    sessions: Sequence[Sequence[int]],
    lam: float,
    stay_bonus: float,
) -> np.ndarray:
    """The greedy model index of every row, each conversation replayed turn by turn with the bonus on
    the model the previous turn chose."""
    q = estimates.score - lam * estimates.cost_units
    choice = np.zeros(len(q), dtype=int)
    for rows in sessions:
        last: str | None = None
        for i in rows:
            last = greedy_model(dict(zip(models, q[i].tolist(), strict=True)), last, stay_bonus)
            choice[i] = models.index(last)
    return choice


def stay_bonus_sweep(
    records: Sequence[RoutingRecord],
    estimates: ev.Estimates,
    truth: ev.OutcomeMatrix,
    lambdas: Sequence[float],
    stay_bonuses: Sequence[float] = STAY_BONUSES,
) -> dict[str, Any]:
    """One repeat: per stay bonus, every λ's quality (mean over all decisions), total cost, routing
    shares and switches; and the bonus's frontier against no bonus at equal cost (`compare_frontiers`)."""
    check_stay_bonuses(stay_bonuses)
    models = list(truth.models)
    sessions = conversations(records)
    points: dict[float, list[ev.PolicyResult]] = {}
    rows = []
    for bonus in stay_bonuses:
        points[bonus] = []
        for lam in lambdas:
            choice = replay(estimates, models, sessions, lam, bonus)
            result = ev.score_choice(f"mtrouter@{lam:g}+stay{bonus:g}", choice, truth, lam=lam)
            stats = switch_stats([[models[choice[i]] for i in conv] for conv in sessions])
            points[bonus].append(result)
            rows.append({"stay_bonus": bonus, **asdict(result), **asdict(stats)})
    versus = {
        str(bonus): ev.compare_frontiers(points[bonus], points[0.0])["mean_margin"] for bonus in stay_bonuses
    }
    return {"rows": rows, "mean_margin_vs_no_bonus": versus}


def mixed_lambdas(runs: Sequence[dict[str, Any]]) -> list[float]:
    """The λ points where the no-bonus policy routes to more than one model in some repeat: elsewhere
    every decision goes to one model, so there is nothing to switch and no bonus can matter."""
    return sorted(
        {
            row["lam"]
            for run in runs
            for row in run["rows"]
            if row["stay_bonus"] == 0 and len(row["shares"]) > 1
        }
    )


def summarise(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Means over repeats at the `mixed_lambdas` points: one row per (stay bonus, λ), and per stay bonus
    the mean over those points (the headline: switches per conversation and what they cost)."""
    display = mixed_lambdas(runs)
    grouped: dict[tuple[float, float], list[dict[str, Any]]] = defaultdict(list)
    for run in runs:
        for row in run["rows"]:
            if row["lam"] in display:
                grouped[(row["stay_bonus"], row["lam"])].append(row)
    keys = ("quality", "cost_usd", "mean_switches", "share_switching")
    table = [
        {"stay_bonus": bonus, "lam": lam, **{k: float(np.mean([r[k] for r in rows])) for k in keys}}
        for (bonus, lam), rows in sorted(grouped.items())
    ]
    overall = [
        {
            "stay_bonus": bonus,
            **{k: float(np.mean([r[k] for r in table if r["stay_bonus"] == bonus])) for k in keys},
        }
        for bonus in sorted({r["stay_bonus"] for r in table})
    ]
    return {"lambdas": display, "table": table, "over_lambdas": overall}


def format_stability(stability: dict[str, Any]) -> str:
    margins = stability["mean_margin_vs_no_bonus"]
    summary = stability["summary"]
    header = (
        f"{'stay_bonus':>10} {'lambda':>9} {'quality':>8} {'cost_usd':>9} {'switches/conv':>13} "
        f"{'share>=1 switch':>15}"
    )
    lines = [
        f"Stability: MTRouter's greedy decisions replayed over both turns of each conversation "
        f"({stability['conversations']} conversations, out-of-fold estimates, mean over "
        f"{stability['repeats']} repeats)",
        "frontier with the bonus minus without, at equal cost, mean margin per repeat: "
        + "; ".join(f"stay {b}: [{', '.join(ev.fmt_number(x, 4) for x in ms)}]" for b, ms in margins.items()),
        f"at the {len(summary['lambdas'])} λ points where the no-bonus policy mixes models "
        f"({', '.join(f'{lam:g}' for lam in summary['lambdas'])}), mean over them:",
        header,
    ]
    for row in summary["over_lambdas"]:
        lines.append(_stability_row(row, "mean"))
    lines += ["per λ:", header]
    lines += [_stability_row(row, f"{row['lam']:g}") for row in summary["table"]]
    return "\n".join(lines)


def _stability_row(row: dict[str, Any], lam: str) -> str:
    return (
        f"{row['stay_bonus']:>10g} {lam:>9} {row['quality']:>8.4f} {row['cost_usd']:>9.4f} "
        f"{row['mean_switches']:>13.3f} {row['share_switching']:>15.3f}"
    )
