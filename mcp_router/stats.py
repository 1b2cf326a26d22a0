"""Per-tool and per-arm statistics, as the `router://stats` resources and `mcp-router stats` show them."""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from mcp_router.serving.dispatch import ToolRoute
from mcp_router.store import Store, p95
from mcp_router.store.model_log import ModelLog

if TYPE_CHECKING:
    from mcp_router.config import Config
    from mcp_router.serving.planner import Planner


def router_states(route: ToolRoute) -> dict[str, Any]:
    """The router's own view of its arms. Read on the event loop, where the router changes: a worker
    thread could see it half-updated."""
    return route.router.arm_states(time.time(), {n: a.busy for n, a in route.arms.items()})


def tool_stats(store: Store, route: ToolRoute, routers: dict[str, Any] | None = None) -> dict[str, Any]:
    """Totals from the store (a worker thread may run this), merged with `routers` (`router_states`)."""
    states = store.arm_states(route.tool)
    names = list(route.arms) + [n for n in route.disabled if n not in route.arms]
    names += [n for n in states if n not in names]  # arms served earlier, no longer configured
    total_calls = store.tool_call_count(route.tool)
    attempts_total = sum(s["calls"] for s in states.values()) or 1
    routers = router_states(route) if routers is None else routers
    arms: dict[str, Any] = {}
    for name in names:
        state = states.get(name, {})
        calls = state.get("calls", 0)
        arm = route.arms.get(name)
        latencies = store.recent_latencies(route.tool, name) if calls else []
        arms[name] = {
            "serving": arm is not None,
            "disabled_reason": None if arm else route.disabled.get(name, "not in the current config"),
            "calls": calls,
            "ok": state.get("ok", 0),
            "failures": state.get("failures", 0),
            "share": round(calls / attempts_total, 4),
            "success_rate": round(state["ok"] / calls, 4) if calls else None,
            "latency_mean_s": round(state["latency_sum_s"] / calls, 4) if calls else None,
            "latency_p95_s": round(v, 4) if (v := p95(latencies)) is not None else None,
            "quality_mean": round(state["quality_sum"] / state["quality_n"], 4)
            if state.get("quality_n")
            else None,
            "quality_n": state.get("quality_n", 0),
            "inflight": arm.busy if arm else 0,
            "warmed_up": arm.warmed if arm else None,
            "router": routers.get(name),
            "last_status": state.get("last_status"),
            "last_error": state.get("last_error"),
        }
    stats = {"tool": route.tool, "router": route.router.name, "calls": total_calls, "arms": arms}
    scopes = store.scope_arm_states(route.tool)
    if route.collections or scopes:
        stats["collections"] = collection_stats(route, scopes)
    return stats


def collection_stats(route: ToolRoute, scopes: dict[str, dict[str, dict[str, Any]]]) -> dict[str, Any]:
    """Per collection and arm: only the arms serving a collection compete for it, so how each one
    does there is what tells them apart. Collections no longer configured keep their totals (kind None)."""
    names = list(route.collections) + [n for n in scopes if n not in route.collections]
    view: dict[str, Any] = {}
    for name in names:
        entry = route.collections.get(name)
        rows = scopes.get(name, {})
        arm_names = list(entry.arms) if entry else []
        arm_names += [a for a in rows if a not in arm_names]
        view[name] = {
            "kind": entry.kind if entry else None,
            "arms": {arm: _scope_arm(rows.get(arm, {})) for arm in arm_names},
        }
    return view


def _scope_arm(state: dict[str, Any]) -> dict[str, Any]:
    calls = state.get("calls", 0)
    quality_n = state.get("quality_n", 0)
    return {
        "calls": calls,
        "ok": state.get("ok", 0),
        "success_rate": round(state["ok"] / calls, 4) if calls else None,
        "latency_mean_s": round(state["latency_sum_s"] / calls, 4) if calls else None,
        "quality_mean": round(state["quality_sum"] / quality_n, 4) if quality_n else None,
        "quality_n": quality_n,
    }


def all_stats(
    store: Store, routes: dict[str, ToolRoute], routers: dict[str, dict[str, Any]] | None = None
) -> dict[str, Any]:
    routers = routers or {tool: router_states(route) for tool, route in routes.items()}
    return {
        "database": store.display,
        "tools": {tool: tool_stats(store, route, routers[tool]) for tool, route in routes.items()},
    }


def promotion_estimate(row: dict[str, Any] | None) -> dict[str, Any] | None:
    """The off-policy estimate the promoted checkpoint was promoted on: its doubly robust value on the
    held-out sessions against the policy it replaced (None before any promotion, or for a checkpoint
    promoted before the estimate existed)."""
    if row is None:
        return None
    gate = (row.get("validation") or {}).get("gate") or {}
    if "dr" not in gate:
        return None
    return {"checkpoint_id": row["checkpoint_id"], "doubly_robust": gate["dr"]}


def models_view(config: Config, store: Store, planner: Planner | None) -> dict[str, Any]:
    """`router://models`: the pool as configured and as serving, the checkpoint in use, and spend."""
    model_log = ModelLog(store)
    serving = {m.name: m.endpoints for m in config.serving_pool()}
    mt = config.tool("llm_complete").mtrouter
    router = planner.router if planner else None
    by_model = model_log.usage_by_model()
    promoted = model_log.promoted()
    return {
        "enabled": planner is not None,
        "lambda": mt.lambda_,
        "beta": mt.beta,
        "embedder": mt.embedder,
        "packing": mt.packing,
        "default_budget_usd": mt.default_budget_usd,
        "max_budget_usd": mt.max_budget_usd,
        "pool": [
            {
                **{k: v for k, v in asdict(m).items() if k != "endpoints"},
                "endpoints": list(m.endpoints),
                "serving_endpoints": list(serving.get(m.name, ())),
                "steps": by_model.get(m.name, {}).get("n", 0),
                "cost_usd": by_model.get(m.name, {}).get("cost_usd", 0.0),
            }
            for m in config.model_pool()
        ],
        "checkpoint": {
            "in_use": router.checkpoint_id if router else None,
            "stage": "checkpoint" if router and router.checkpoint is not None else "prior",
            "promoted": promoted,
            "estimate": promotion_estimate(promoted),
            "recent": [
                {k: c[k] for k in ("checkpoint_id", "created_at", "status", "validation")}
                for c in model_log.checkpoints(limit=6)
            ],
        },
        "sessions": model_log.sessions(),
    }
