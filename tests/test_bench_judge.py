"""`mcp-router bench judge`: its metrics on hand-made data, its sampling on a toy corpus, and (slow) a
tiny real run of the agreement part on SmolLM2 and of the whole command."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from mcp_router.bench import judge_bench as jb
from mcp_router.bench import judge_sample as js
from mcp_router.bench.retrieval import SciFact
from mcp_router.cli import build_parser

# ---------------------------------------------------------------------------------------------- metrics


def test_rankdata_averages_ties():
    assert js.rankdata([10, 20, 20, 30]).tolist() == [1.0, 2.5, 2.5, 4.0]
    assert js.rankdata([3, 1, 2]).tolist() == [3.0, 1.0, 2.0]
    assert js.rankdata([5, 5, 5]).tolist() == [2.0, 2.0, 2.0]


def test_spearman_by_hand():
    assert js.spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert js.spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    # no ties: 1 - 6 Σd² / (n(n² - 1)) with d = (0, 1, 1, 0): 1 - 12/60
    assert js.spearman([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(0.8)
    # ties: Pearson of the average ranks x = (1, 2.5, 2.5, 4), y = (1, 2, 3, 4): 4.5 / √(4.5 · 5)
    assert js.spearman([0.1, 0.5, 0.5, 0.9], [1, 2, 3, 4]) == pytest.approx(4.5 / math.sqrt(4.5 * 5))
    assert js.spearman([1, 2], [1, 2]) is None  # too few points
    assert js.spearman([0.5, 0.5, 0.5], [1, 2, 3]) is None  # constant: undefined
    with pytest.raises(ValueError):
        js.spearman([1, 2, 3], [1, 2])


def test_spearman_matches_scipy_on_random_data_with_ties():
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(0)
    for _ in range(20):
        x = rng.integers(1, 6, size=15).astype(float)
        y = x + rng.normal(0, 1.5, size=15).round()
        expected = stats.spearmanr(x, y).statistic
        assert js.spearman(x.tolist(), y.tolist()) == pytest.approx(expected)


def test_auc_by_hand():
    # 3 vs (1, 2, 3): 1 + 1 + ½; 4 and 5 beat all three: 8.5 of 9 pairs
    assert js.auc([3, 4, 5], [1, 2, 3]) == pytest.approx(8.5 / 9)
    assert js.auc([1, 1], [5]) == 0.0
    assert js.auc([3, 3], [3, 3, 3]) == 0.5  # a constant judge is chance
    assert js.auc([], [1]) is None and js.auc([1], []) is None


def test_direction_shares_by_hand():
    assert js.direction_shares([3, 4, 2, 1], [1, 2, 3, 5]) == (0.5, 0.5)
    assert js.direction_shares([5, 5], [1]) == (1.0, 1.0)
    assert js.direction_shares([], [2, 3]) == (None, 0.5)


def test_summary_of_hand_made_judge_results():
    rel = [js.Pair(0, 10, True), js.Pair(1, 11, True), js.Pair(2, 12, True)]
    non = [js.Pair(0, 20, False), js.Pair(1, 21, False), js.Pair(2, 22, False)]
    pairs = rel + non
    grades = [(rel[0], 5), (rel[1], 3), (non[0], 1), (non[1], 3)]  # rel[2] and non[2] did not parse
    listed = [(0, 0.9, 1.0), (1, 0.2, 0.0), (2, 0.5, 0.6)]  # (query, judge reward, NDCG@10)
    calls = [jb.Call("x", 1.0, 100, 5, 0.0), jb.Call("x", 3.0, 200, 5, 0.0), jb.Call(None, 9.0, error="E")]
    entry = jb.summarise_judge(pairs, grades, [0, 1, 2, 3], listed, calls, 1.5, ["bad"])
    assert entry["pairs"] == 6 and entry["parsed"] == 4
    assert entry["parse_rate"] == pytest.approx(4 / 6, abs=1e-4)
    assert entry["relevant_ge3"] == 1.0 and entry["nonrelevant_le2"] == 0.5
    assert entry["direction_agreement"] == 0.75
    # (5 > 1, 5 > 3, 3 > 1, 3 = 3): 3.5 of 4
    assert entry["auc"] == 0.875
    assert entry["spearman_rho"] == 1.0  # rewards and NDCG in the same order
    assert entry["queries"] == 4 and entry["queries_parsed"] == 3 and entry["list_parse_rate"] == 0.75
    assert entry["grade_counts"]["relevant"] == {"1": 0, "2": 0, "3": 1, "4": 0, "5": 1}
    assert entry["calls"] == 3 and entry["call_errors"] == 1
    assert entry["latency_mean_s"] == 2.0  # failed calls are not in the latency
    assert entry["latency_p95_s"] == pytest.approx(2.9)
    assert entry["tokens_mean"] == 155.0 and entry["cost_per_call_usd"] == 0.0
    assert entry["list_rewards_distinct"] == 3
    assert "UNUSABLE" not in jb.verdict(entry) and "CHANCE" not in jb.verdict(entry)
    assert "CHANCE" in jb.verdict(entry | {"auc": 0.5, "spearman_rho": 0.1})
    assert "UNUSABLE" in jb.verdict(entry | {"parse_rate": 0.2})
    assert "not run" in jb.verdict({"error": "Unavailable: no model"})
    constant = {"relevant": {"1": 2, "5": 0}, "nonrelevant": {"1": 2, "5": 0}}
    assert "NO SIGNAL" in jb.verdict(entry | {"auc": 0.5, "grade_counts": constant})


def test_simulated_reference_is_perfect_without_noise_and_degrades_with_it():
    ndcg = [0.0, 0.2, 0.5, 0.7, 1.0, 0.3, 0.9, 0.1]
    assert jb.simulated_reference(ndcg, 0.0, seed=0) == 1.0
    noisy = jb.simulated_reference(ndcg, 0.3, seed=0)
    assert noisy is not None and 0.0 < noisy < jb.simulated_reference(ndcg, 0.1, seed=0) < 1.0


# ---------------------------------------------------------------------------------------------- sampling


def toy_corpus() -> js.Corpus:
    topics = ["vitamin scurvy", "smoking lung cancer", "aspirin heart attack", "statin cholesterol"]
    titles, abstracts, ids = [], [], []
    for t, topic in enumerate(topics):
        for v in range(3):
            ids.append(f"d{t}{v}")
            titles.append(f"{topic} study {v}")
            abstracts.append(f"We report on {topic} in cohort {v}.")
    qrels = [{f"d{t}0": 1.0} for t in range(len(topics))]
    data = SciFact(
        doc_ids=ids,
        titles=titles,
        abstracts=abstracts,
        query_ids=[f"q{t}" for t in range(len(topics))],
        query_texts=[f"does {topic} matter?" for topic in topics],
        query_split=["test"] * len(topics),
        qrels=qrels,
        files=[],
    )
    return js.Corpus(data)


def test_pairs_are_half_relevant_half_hard_negatives_and_seeded():
    corpus = toy_corpus()
    pairs = js.sample_pairs(corpus, 6, seed=0)
    assert len(pairs) == 6
    assert sum(p.relevant for p in pairs) == 3
    for p in pairs:
        relevant = corpus.relevant(p.query)
        if p.relevant:
            assert p.doc in relevant
        else:
            assert p.doc not in relevant and p.doc in corpus.top(p.query)
    assert {p.query for p in pairs if p.relevant} == {p.query for p in pairs if not p.relevant}
    assert js.sample_pairs(corpus, 6, seed=0) == pairs
    assert sum(p.relevant for p in js.sample_pairs(corpus, 5, seed=1)) == 3  # odd: one more relevant
    queries = js.sample_list_queries(corpus, 3, seed=0)
    assert len(set(queries)) == 3 and queries == js.sample_list_queries(corpus, 3, seed=0)
    assert corpus.ndcg10(0) == pytest.approx(1.0)  # the toy bm25 ranks d00 first for its query
    assert corpus.passage(0) == "vitamin scurvy study 0\nWe report on vitamin scurvy in cohort 0."


def test_cli_accepts_the_judge_benchmark():
    args = build_parser().parse_args(
        ["bench", "judge", "--json", "j.json", "--curve-steps", "200", "--curve-seeds", "1", "--pairs", "8"]
    )
    got = (args.name, args.curve_steps, args.curve_seeds, args.pairs, args.queries)
    assert got == ("judge", 200, 1, 8, 30)
    assert args.judges == "smollm2-135m,gemma3-270m"


# ---------------------------------------------------------------------------------------------- real runs


def scifact_corpus_or_skip() -> js.Corpus:
    try:
        return js.Corpus.load()
    except FileNotFoundError as exc:
        pytest.skip(f"SciFact not available: {exc}")


@pytest.mark.slow
def test_tiny_agreement_run_on_smollm2():
    corpus = scifact_corpus_or_skip()
    pairs = js.sample_pairs(corpus, 4, seed=0)
    queries = js.sample_list_queries(corpus, 2, seed=0)
    entry = jb.judge_agreement("smollm2-135m", corpus, pairs, queries, progress=False)
    print(json.dumps(entry, indent=1))
    assert "error" not in entry
    assert entry["pairs"] == 4 and entry["queries"] == 2 and entry["calls"] == 6
    assert 0 <= entry["parsed"] <= 4 and 0 <= entry["queries_parsed"] <= 2
    assert entry["latency_mean_s"] > 0 and entry["cost_per_call_usd"] == 0.0
    assert entry["tokens_mean"] > 0
    assert entry["auc"] is None or 0.0 <= entry["auc"] <= 1.0


@pytest.mark.slow
def test_command_without_judges_runs_a_tiny_curve(tmp_path: Path, capsys, monkeypatch):
    """On a 40-query slice of SciFact, with its own empty cache: what a fresh machine runs."""
    from mcp_router.bench import run

    pytest.importorskip("matplotlib")
    scifact_corpus_or_skip()
    monkeypatch.setenv("MCP_ROUTER_BENCH_CACHE", str(tmp_path / "cache"))
    out, png = tmp_path / "j.json", tmp_path / "j.png"
    argv = [
        "bench",
        "judge",
        "--judges",
        "none",
        "--curve-steps",
        "300",
        "--curve-seeds",
        "1",
        "--sample",
        "40",
    ]
    argv += ["--policies", "lqm,round-robin", "--workers", "1", "--json", str(out), "--plot", str(png)]
    args = build_parser().parse_args(argv)
    assert run("judge", args) == 0
    report = json.loads(out.read_text())
    assert report["benchmark"] == "judge" and report["judges"] == {}
    assert list((tmp_path / "cache").glob("scifact-*.npz")), "the slice's arm table is cached"
    curve = report["robustness"]
    assert curve["noise"] == [0.0, 0.1, 0.2, 0.3]
    assert set(curve["policies"]) == {"lqm", "round-robin"}
    for p in curve["policies"].values():
        assert len(p["quality"]) == len(p["quality_per_cycle"]) == 4
    # round-robin ignores rewards: its quality cannot depend on the judge's noise
    assert len(set(curve["policies"]["round-robin"]["quality"])) == 1
    assert png.stat().st_size > 0
    assert "robustness" in capsys.readouterr().out


def test_sample_must_be_a_whole_number_of_queries(capsys) -> None:
    for bad in ("-3", "ten"):
        with pytest.raises(SystemExit):
            build_parser().parse_args(["bench", "retrieval", "--sample", bad])
        assert "expected a whole number of queries (0 for all)" in capsys.readouterr().err
    assert build_parser().parse_args(["bench", "retrieval", "--sample", "40"]).sample == 40


# ---------------------------------------------------------------------------------------------- local judge


def test_pairs_and_lists_come_from_the_split_asked_for():
    corpus = toy_corpus()
    corpus.data.query_split[:] = ["test", "train", "test", "train"]
    pairs = js.sample_pairs(corpus, 8, seed=0, split="test")
    assert pairs and {p.query for p in pairs} <= {0, 2}
    assert set(js.sample_list_queries(corpus, 4, seed=0, split="train")) == {1, 3}
    assert len(js.sample_list_queries(corpus, 4, seed=0, split="all")) == 4


def test_cli_accepts_the_local_judge_options():
    args = build_parser().parse_args(["bench", "judge", "--judges", "local", "--curve-seeds", "0"])
    assert (args.judges, args.split, args.fit_local, args.fit_out) == ("local", "test", False, None)
    args = build_parser().parse_args(["bench", "judge", "--fit-local", "--fit-out", "p.json"])
    assert args.fit_local and args.fit_out == "p.json"


def test_local_judge_report_on_a_toy_corpus_with_the_real_encoder():
    """The whole `--judges local` entry on 4 queries × 12 documents (the torch-free encoder only)."""
    from mcp_router.bench.local_judge_data import ARMS, JudgeData
    from mcp_router.bench.local_judge_eval import format_local, local_agreement
    from mcp_router.feedback.local_judge import default_embed

    corpus = toy_corpus()
    data = corpus.data
    vectors = default_embed([f"{t} {a}" for t, a in zip(data.titles, data.abstracts, strict=True)])
    jd = JudgeData.build(corpus.data, vectors)
    pairs = js.sample_pairs(corpus, 6, seed=0)
    entry = local_agreement(corpus, pairs, [0, 1, 2, 3], progress=False, jd=jd)
    assert entry["kind"] == "local" and entry["relevant_pairs"] == entry["nonrelevant_pairs"] == 3
    assert 0.0 <= entry["auc"] <= 1.0 and 0.0 <= entry["list_reward_mean"] <= 1.0
    arms = entry["per_arm"]["arms"]
    assert set(arms) == set(ARMS)
    for a in arms.values():
        assert a["bias"] == pytest.approx(a["judge_mean"] - a["ndcg10_mean"], abs=2e-4)
    assert entry["per_arm"]["oracle_ndcg10"] >= entry["per_arm"]["best_fixed_arm_ndcg10"]
    assert entry["per_arm"]["oracle_ndcg10"] >= entry["per_arm"]["judge_choice_ndcg10"]
    assert entry["timed_lists"] == 4 and entry["latency_mean_s"] > 0
    assert entry["max_score_gap_served_vs_lookup"] < 1e-3  # the lookup stands in for the served encoder
    text = "\n".join(format_local("local", entry))
    assert "per-arm bias" in text and "dense" in text
    report = {"judges": {"local": entry}, "params": {"pairs": 6, "queries": 4, "split": "test"}}
    assert "LLM judges" not in jb.format_summary(report | {"robustness": None})
    assert jb.verdict(entry | {"auc": 0.8, "spearman_rho": 0.5}).startswith("usable")
    assert jb.verdict(entry | {"auc": 0.8, "spearman_rho": 0.3}).startswith("BELOW")


def test_bench_retrieval_learns_from_the_same_grades_bench_judge_measures():
    """`bench retrieval --judge local` feeds the routers `grade_arms`'s matrix: per arm, its mean is the
    judge mean `bench judge --judges local` reports on the same queries."""
    from mcp_router.bench.local_judge_data import ARMS, JudgeData
    from mcp_router.bench.local_judge_eval import per_arm
    from mcp_router.bench.retrieval_judged import grade_arms
    from mcp_router.feedback.local_judge import LocalJudge, default_embed

    corpus = toy_corpus()
    data = corpus.data
    vectors = default_embed([f"{t} {a}" for t, a in zip(data.titles, data.abstracts, strict=True)])
    jd = JudgeData.build(data, vectors)
    judge = LocalJudge(embed=jd.embed)
    rewards = grade_arms(data, jd, judge, progress=False)
    assert rewards.shape == (4, len(ARMS)) and np.all((rewards >= 0) & (rewards <= 1))
    measured = per_arm(judge, jd, [0, 1, 2, 3])["arms"]
    for a, arm in enumerate(ARMS):
        assert rewards[:, a].mean() == pytest.approx(measured[arm]["judge_mean"], abs=1e-4)
    args = build_parser().parse_args(["bench", "retrieval", "--judge", "local"])
    assert args.judge == "local"
    assert build_parser().parse_args(["bench", "retrieval"]).judge == "simulated"
