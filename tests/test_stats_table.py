"""`mcp-router stats`: the terminal table, with retrieve's totals per collection and provider."""

from __future__ import annotations

from mcp_router.report import stats_table


def arm(calls: int, ok: int) -> dict:
    return {
        "serving": True,
        "disabled_reason": None,
        "calls": calls,
        "ok": ok,
        "failures": calls - ok,
        "share": 1.0,
        "latency_mean_s": 0.01,
        "latency_p95_s": 0.02,
        "quality_mean": None,
        "quality_n": 0,
    }


def scoped(calls: int, ok: int, quality: float | None, rated: int) -> dict:
    return {"calls": calls, "ok": ok, "latency_mean_s": 0.5, "quality_mean": quality, "quality_n": rated}


def test_collections_get_their_own_table_with_a_row_per_provider() -> None:
    stats = {
        "tools": {
            "retrieve": {
                "arms": {"bm25": arm(3, 3), "pg": arm(2, 1)},
                "collections": {
                    "docs": {"kind": "folder", "arms": {"bm25": scoped(3, 3, 0.75, 2)}},
                    "papers": {"kind": "remote", "arms": {"pg": scoped(2, 1, None, 0)}},
                    "old": {"kind": None, "arms": {"dense": scoped(1, 1, None, 0)}},
                },
            }
        }
    }
    text = stats_table(stats)
    rows = [line.split() for line in text.splitlines()]
    assert ["docs", "folder", "bm25", "3", "3", "0.500", "0.75", "2"] in rows
    assert ["papers", "remote", "pg", "2", "1", "0.500", "-", "0"] in rows
    assert ["old", "gone", "dense", "1", "1", "0.500", "-", "0"] in rows


def test_without_collections_there_is_one_table() -> None:
    text = stats_table({"tools": {"search": {"arms": {"wiki": arm(1, 1)}}}})
    assert "collection" not in text and "wiki" in text
