"""`mcp-router bench judge`: how good are the local LLM judges, and how much do the routers suffer when
the judge is noisy?

1. **Agreement with gold** on SciFact, for each local judge model (run for real through the
   `llamacpp` adapter, temperature 0), with the `retrieve` rubric of `feedback.judge`:
   (a) N query–passage pairs, half relevant per the qrels, half hard negatives (bm25 top-10, not in the
       qrels), on the same queries, each judged alone: the parse rate, the share of relevant passages
       graded ≥ 3, of non-relevant ones graded ≤ 2, and the AUC of the grades (P(grade of a relevant
       pair > grade of a non-relevant pair), ties count ½) over the parsed pairs;
   (b) M queries: the judge's retrieve reward on the bm25 top-5 against the true NDCG@10 of the bm25
       top-10 ranking, as Spearman's ρ over the parsed queries;
   (c) latency, tokens and cost per judge call (the model load is timed apart, by a warm-up call).
   Unparseable answers are dropped (never guessed) and counted.
   `--judges local` runs the same (a) and (b) on the local judge (`feedback.local_judge`), with its
   per-arm bias and cost (`local_judge_eval`); `--fit-local` refits it on the train split
   (`local_judge_fit`). Pairs and lists come from `--split` (default test).
2. **Robustness curve**: the retrieval benchmark (its spec and `run_benchmark`, unchanged) with the
   simulated judge's noise σ ∈ {0, 0.1, 0.2, 0.3}: quality and quality per cycle per policy.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mcp_router.bench.judge_sample import (
    LIST_K,
    Corpus,
    Pair,
    auc,
    direction_shares,
    mean,
    p95,
    sample_list_queries,
    sample_pairs,
    spearman,
)
from mcp_router.bench.report import ProgressBar
from mcp_router.feedback.judge import (
    RUBRIC_VERSION,
    JudgeInput,
    judge_messages,
    max_tokens_for,
    parse_grades,
    parse_verdict,
)
from mcp_router.feedback.simulated import SimulatedJudge

JUDGES = ("smollm2-135m", "gemma3-270m")
LOCAL = "local"  # the local judge (feedback.local_judge), not an LLM: see local_judge_eval
CURVE_POLICIES = ("lqm", "sw-ucb", "additive-0.5", "linucb-quality", "round-robin")
NOISE_LEVELS = (0.0, 0.1, 0.2, 0.3)
PAIR_CHARS = 1200  # a passage judged alone: SciFact abstracts are ~1,500 characters
LIST_CHARS = 600  # each of the top-5 passages judged together
N_CTX = 4096
N_THREADS = 2
MAX_SHOWN_OUTPUTS = 5


# ---------------------------------------------------------------------------------------------- judging


@dataclass
class Call:
    text: str | None  # None: the call raised
    latency_s: float
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    error: str | None = None


async def _judge_call(adapter: Any, item: JudgeInput, max_chars: int) -> Call:
    from providers.errors import ProviderError
    from providers.types import CompletionRequest

    request = CompletionRequest(
        messages=tuple(judge_messages(item, max_chars)), max_tokens=max_tokens_for(item), temperature=0.0
    )
    started = time.perf_counter()
    try:
        result = await adapter.call(request)
    except ProviderError as exc:
        return Call(None, time.perf_counter() - started, error=f"{type(exc).__name__}: {exc}"[:200])
    return Call(
        result.text,
        time.perf_counter() - started,
        result.usage.prompt_tokens,
        result.usage.completion_tokens,
        result.cost_usd,
    )


async def _run_judge(
    model: str, corpus: Corpus, pairs: list[Pair], queries: list[int], progress: bool
) -> dict[str, Any]:
    import httpx

    from providers import ProviderEnv, ProviderSpec, create_adapter
    from providers.retrieve.collections import CollectionLibrary

    spec = ProviderSpec(
        name=f"judge-{model}", type="llamacpp", model=model, options={"n_ctx": N_CTX, "n_threads": N_THREADS}
    )
    async with httpx.AsyncClient() as http:
        adapter = create_adapter(spec, ProviderEnv(http=http, collections=CollectionLibrary(())))
        warm = JudgeInput("retrieve", "warm-up", ("warm-up passage",))
        started = time.perf_counter()
        first = await _judge_call(adapter, warm, PAIR_CHARS)
        load_s = time.perf_counter() - started
        if first.text is None:
            return {"error": first.error, "load_s": round(load_s, 3)}

        bar = ProgressBar(len(pairs) + len(queries), label=f"judge {model}") if progress else None
        calls: list[Call] = []
        grades: list[tuple[Pair, int]] = []
        unparsed: list[str] = []
        for pair in pairs:
            item = JudgeInput("retrieve", corpus.data.query_texts[pair.query], (corpus.passage(pair.doc),))
            call = await _judge_call(adapter, item, PAIR_CHARS)
            calls.append(call)
            parsed = parse_grades(item, call.text) if call.text is not None else None
            if parsed is not None:
                grades.append((pair, parsed[0]))
            elif call.text is not None and len(unparsed) < MAX_SHOWN_OUTPUTS:
                unparsed.append(call.text[:120])
            if bar:
                bar.update(1, "pairs")
        listed: list[tuple[int, float, float]] = []  # (query, judge reward, true NDCG@10)
        for q in queries:
            top = corpus.top(q, LIST_K)
            item = JudgeInput("retrieve", corpus.data.query_texts[q], tuple(corpus.passage(d) for d in top))
            call = await _judge_call(adapter, item, LIST_CHARS)
            calls.append(call)
            reward = parse_verdict(item, call.text) if call.text is not None else None
            if reward is not None:
                listed.append((q, reward, corpus.ndcg10(q)))
            elif call.text is not None and len(unparsed) < MAX_SHOWN_OUTPUTS:
                unparsed.append(call.text[:120])
            if bar:
                bar.update(1, "top-5 lists")
        if bar:
            bar.close()
    return summarise_judge(pairs, grades, queries, listed, calls, load_s, unparsed)


def summarise_judge(
    pairs: list[Pair],
    grades: list[tuple[Pair, int]],
    queries: list[int],
    listed: list[tuple[int, float, float]],
    calls: list[Call],
    load_s: float,
    unparsed: list[str],
) -> dict[str, Any]:
    """One judge's report entry from its raw results."""
    rel = [g for p, g in grades if p.relevant]
    non = [g for p, g in grades if not p.relevant]
    ge3, le2 = direction_shares(rel, non)
    answered = [c for c in calls if c.text is not None]
    latencies = [c.latency_s for c in answered]
    rewards = [r for _, r, _ in listed]
    ndcgs = [n for _, _, n in listed]

    def rounded(x: float | None, digits: int = 4) -> float | None:
        return None if x is None else round(x, digits)

    return {
        "pairs": len(pairs),
        "parsed": len(grades),
        "parse_rate": rounded(len(grades) / len(pairs)) if pairs else None,
        "relevant_parsed": len(rel),
        "nonrelevant_parsed": len(non),
        "relevant_ge3": rounded(ge3),
        "nonrelevant_le2": rounded(le2),
        "direction_agreement": rounded((ge3 + le2) / 2) if ge3 is not None and le2 is not None else None,
        "auc": rounded(auc(rel, non)),
        "grade_counts": {
            "relevant": {str(s): rel.count(s) for s in range(1, 6)},
            "nonrelevant": {str(s): non.count(s) for s in range(1, 6)},
        },
        "spearman_rho": rounded(spearman(rewards, ndcgs)),
        "queries": len(queries),
        "queries_parsed": len(listed),
        "list_parse_rate": rounded(len(listed) / len(queries)) if queries else None,
        "list_reward_mean": rounded(mean(rewards)),
        "list_rewards_distinct": len({round(r, 9) for r in rewards}),
        "list_ndcg10_mean": rounded(mean(ndcgs)),
        "calls": len(calls),
        "call_errors": len(calls) - len(answered),
        "latency_mean_s": rounded(mean(latencies)),
        "latency_p95_s": rounded(p95(latencies)),
        "latency_pair_mean_s": rounded(
            mean([c.latency_s for c in calls[: len(pairs)] if c.text is not None])
        ),
        "latency_list_mean_s": rounded(
            mean([c.latency_s for c in calls[len(pairs) :] if c.text is not None])
        ),
        "cost_per_call_usd": rounded(mean([c.cost_usd for c in answered]), 8),
        "tokens_mean": rounded(mean([c.prompt_tokens + c.completion_tokens for c in answered]), 1),
        "prompt_tokens_mean": rounded(mean([c.prompt_tokens for c in answered]), 1),
        "completion_tokens_mean": rounded(mean([c.completion_tokens for c in answered]), 1),
        "load_s": round(load_s, 3),
        "unparsed_examples": unparsed,
    }


def judge_agreement(
    model: str, corpus: Corpus, pairs: list[Pair], queries: list[int], progress: bool = True
) -> dict[str, Any]:
    """Parts (a)–(c) for one local model (blocking; runs its own event loop)."""
    import anyio

    return anyio.run(_run_judge, model, corpus, pairs, queries, progress)


def simulated_reference(ndcgs: Sequence[float], noise: float, seed: int, draws: int = 200) -> float | None:
    """The mean Spearman ρ the simulated judge (gold + N(0, σ), clipped) would get against the same
    NDCG@10 values: the yardstick for part (b)."""
    judge = SimulatedJudge(noise, np.random.default_rng([seed, 23]))
    rhos = [spearman([judge.grade(x) for x in ndcgs], ndcgs) for _ in range(draws if noise > 0 else 1)]
    rhos = [r for r in rhos if r is not None]
    return round(float(np.mean(rhos)), 4) if rhos else None


# ---------------------------------------------------------------------------------------------- curve


def robustness(
    args: argparse.Namespace,
    policies: Sequence[str],
    noise_levels: Sequence[float],
    steps: int,
    seeds: int,
    progress: bool = True,
) -> dict[str, Any]:
    """The retrieval benchmark once per simulated-judge noise level, same streams per level."""
    from mcp_router.bench import retrieval
    from mcp_router.bench.runner import run_benchmark

    base = retrieval.build_spec(args, progress)
    out: dict[str, Any] = {
        "noise": list(noise_levels),
        "steps": steps,
        "seeds": seeds,
        "policies": {p: {"quality": [], "quality_ci95": [], "quality_per_cycle": []} for p in policies},
        "wall_s": [],
    }
    for noise in noise_levels:
        spec = dataclasses.replace(
            base,
            benchmark=f"retrieval σ={noise:g}",
            judge_noise=noise,
            params={**base.params, "judge_noise_sigma": noise},
        )
        report = run_benchmark(
            spec,
            policies,
            seeds=seeds,
            steps=steps,
            workers=getattr(args, "workers", None),
            progress=progress,
        )
        for name in policies:
            p = report["policies"][name]
            for key in ("quality", "quality_ci95", "quality_per_cycle"):
                out["policies"][name][key].append(round(p[key], 4))
        out["wall_s"].append(report["wall_s"]["total"])
    return out


# ---------------------------------------------------------------------------------------------- output


def verdict(entry: dict[str, Any]) -> str:
    """A plain-words rating of one judge."""
    if "error" in entry:
        return f"not run: {entry['error']}"
    if entry.get("kind") == "local":
        a, rho = entry.get("auc") or 0.0, entry.get("spearman_rho") or 0.0
        bars = f"AUC {a:.3f} (bar 0.75), Spearman {rho:.3f} (bar 0.4)"
        if a >= 0.75 and rho >= 0.4:
            return f"usable: it meets both bars ({bars})"
        return f"BELOW THE BARS: {bars}"
    a, rho, rate = entry.get("auc"), entry.get("spearman_rho"), entry.get("parse_rate") or 0.0
    if a is None or rate < 0.5:
        return "UNUSABLE: it mostly fails to answer in the rubric's format"
    counts = entry.get("grade_counts") or {}
    used = {g for side in counts.values() for g, n in side.items() if n}
    if len(used) == 1:
        return (
            f"NO SIGNAL: it gives every passage the same grade ({used.pop()}), relevant or not "
            "(most likely copying the last worked example in its prompt)"
        )
    if a < 0.6 and (rho is None or rho < 0.3):
        return "NO BETTER THAN CHANCE at telling relevant from non-relevant passages"
    if a < 0.75:
        return "WEAK: it separates relevant from non-relevant passages only a little better than chance"
    return "usable: it separates relevant from non-relevant passages clearly"


def _fmt(x: Any, spec: str = ".3f") -> str:
    return "  n/a" if x is None else format(x, spec)


def format_summary(report: dict[str, Any]) -> str:
    params = report["params"]
    llm_judges = {m: e for m, e in report["judges"].items() if e.get("kind") != "local"}
    lines = [
        f"judge agreement with SciFact gold, {params.get('split', 'all')} queries: "
        f"(a) {params['pairs']} query-passage pairs, half relevant (qrels), half bm25 top-10 hard negatives; "
        f"(b) {params['queries']} queries, judge reward on the bm25 top-{LIST_K} vs true NDCG@10",
    ]
    if llm_judges:
        lines.append(
            f"LLM judges: rubric {params['rubric_version']}, retrieve rubric, temperature 0, llamacpp "
            f"in-process, {params['n_threads']} threads"
        )
        head = (
            f"{'judge':<14} {'parsed':>7} {'rel>=3':>6} {'non<=2':>6} {'AUC':>6} {'rho':>6} "
            f"{'list ok':>7} {'lat mean':>8} {'lat p95':>7} {'tokens':>6} {'$/call':>6}"
        )
        lines += [head, "-" * len(head)]
    for model, e in llm_judges.items():
        if "error" in e:
            lines.append(f"{model:<14} not run: {e['error']}")
            continue
        lines.append(
            f"{model:<14} {e['parsed']:>3}/{e['pairs']:<3} {_fmt(e['relevant_ge3'], '6.2f')} "
            f"{_fmt(e['nonrelevant_le2'], '6.2f')} {_fmt(e['auc'], '6.3f')} "
            f"{_fmt(e['spearman_rho'], '6.3f')} "
            f"{e['queries_parsed']:>3}/{e['queries']:<3} {_fmt(e['latency_mean_s'], '8.2f')} "
            f"{_fmt(e['latency_p95_s'], '7.2f')} {_fmt(e['tokens_mean'], '6.0f')} "
            f"{_fmt(e['cost_per_call_usd'], '6.1f')}"
        )
    if llm_judges:
        lines.append(
            "(parsed = pairs whose answer parsed; unparseable answers are dropped, not guessed; "
            "AUC 0.5 = chance; rho = Spearman over the parsed lists; latency in s per judge call)"
        )
    for model, e in llm_judges.items():
        if "error" not in e and e["spearman_rho"] is None and e["queries_parsed"] >= 3:
            lines.append(
                f"{model}: rho undefined: its {e['queries_parsed']} parsed list rewards take "
                f"{e['list_rewards_distinct']} distinct value(s) (mean {e['list_reward_mean']})"
            )
    for model, e in report["judges"].items():
        if e.get("kind") == "local":
            from mcp_router.bench.local_judge_eval import format_local

            lines += format_local(model, e)
    reference = report.get("simulated_reference_rho") or {}
    if reference:
        lines.append(
            "simulated judge on the same queries, rho vs NDCG@10: "
            + ", ".join(f"σ={k}: {_fmt(v)}" for k, v in reference.items())
        )
    lines.append("")
    lines.append("verdict:")
    for model, e in report["judges"].items():
        lines.append(f"  {model}: {verdict(e)}")
    if llm_judges:
        lines.append(
            "  The packaged local judges are 135M/270M-parameter models: their grades carry little or no "
            "signal about relevance, far less than the simulated judge the router benchmarks assume. Treat "
            "the benchmarks' router results as what a competent judge would give, not these models."
        )
    curve = report.get("robustness")
    if curve:
        lines.append("")
        lines.append(
            f"robustness: retrieval benchmark, {curve['steps']} steps x {curve['seeds']} seeds, "
            "as the simulated judge's noise σ grows"
        )
        noise = curve["noise"]
        head = f"{'policy':<15} " + " ".join(f"{'q σ=' + format(s, 'g'):>8}" for s in noise)
        head += "   " + " ".join(f"{'q/c σ=' + format(s, 'g'):>9}" for s in noise)
        lines += [head, "-" * len(head)]
        for name, p in curve["policies"].items():
            lines.append(
                f"{name:<15} "
                + " ".join(f"{q:8.4f}" for q in p["quality"])
                + "   "
                + " ".join(f"{q:9.4f}" for q in p["quality_per_cycle"])
            )
        lines.append("(q = mean gold quality per call; q/c = quality per reference cycle)")
    return "\n".join(lines)


def plot(report: dict[str, Any], path: str | Path) -> None:
    """The robustness curve: quality (± ci95) and quality per cycle against the judge's noise σ."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curve = report["robustness"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.8))
    noise = curve["noise"]
    for k, (name, p) in enumerate(curve["policies"].items()):
        style = {"marker": "os^vD<>"[k % 7], "linewidth": 2.2 if name == "lqm" else 1.3}
        left.errorbar(noise, p["quality"], yerr=p["quality_ci95"], capsize=3, label=name, **style)
        right.plot(noise, p["quality_per_cycle"], label=name, **style)
    left.set_ylabel("mean gold quality per call")
    right.set_ylabel("quality per reference cycle")
    for ax in (left, right):
        ax.set_xlabel("simulated judge noise σ (reward = clip(gold + N(0, σ), 0, 1))")
        ax.set_xticks(noise)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    left.set_title(f"retrieval benchmark vs judge noise ({curve['steps']} steps x {curve['seeds']} seeds)")
    right.set_title("quality per reference cycle vs judge noise")
    notes = [
        f"{m}: AUC {_fmt(e.get('auc')).strip()}, Spearman ρ {_fmt(e.get('spearman_rho')).strip()}"
        + ("" if e.get("kind") == "local" else f", parsed {e.get('parsed')}/{e.get('pairs')} pairs")
        for m, e in report["judges"].items()
        if "error" not in e
    ]
    if notes:
        reference = report.get("simulated_reference_rho") or {}
        sim = ", ".join(f"σ={k}: {_fmt(v).strip()}" for k, v in reference.items())
        text = "real judges (chance: AUC 0.5, ρ 0) — " + "; ".join(notes)
        fig.text(
            0.5,
            0.01,
            text + (f"\nsimulated judge ρ on the same queries: {sim}" if sim else ""),
            ha="center",
            va="bottom",
            fontsize=8,
        )
        fig.tight_layout(rect=(0, 0.07, 1, 1))
    else:
        fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# ---------------------------------------------------------------------------------------------- main


def main(args: argparse.Namespace) -> int:
    from mcp_router.bench.runner import parse_policies

    started = time.perf_counter()
    if getattr(args, "fit_local", False):
        from mcp_router.bench import local_judge_fit
        from mcp_router.bench.paths import data_dir
        from mcp_router.bench.retrieval import load_scifact

        out = getattr(args, "fit_out", None)
        return local_judge_fit.main(load_scifact(data_dir() / "scifact"), Path(out) if out else None)
    models = [m.strip() for m in (getattr(args, "judges", None) or ",".join(JUDGES)).split(",") if m.strip()]
    models = [] if models == ["none"] else models
    split = getattr(args, "split", None) or "test"
    n_pairs = getattr(args, "pairs", None) or 60
    n_queries = getattr(args, "queries", None) or 30
    sample_seed = getattr(args, "sample_seed", None) or 0
    curve_steps = getattr(args, "curve_steps", None) or args.steps
    curve_seeds = args.seeds if getattr(args, "curve_seeds", None) is None else args.curve_seeds
    policies = parse_policies(getattr(args, "policies", None), CURVE_POLICIES)

    report: dict[str, Any] = {"benchmark": "judge", "judges": {}, "robustness": None}
    timings: dict[str, float] = {}
    pairs: list[Pair] = []
    queries: list[int] = []
    if models:
        t = time.perf_counter()
        corpus = Corpus.load()
        pairs = sample_pairs(corpus, n_pairs, sample_seed, split)
        queries = sample_list_queries(corpus, n_queries, sample_seed, split)
        timings["data_s"] = round(time.perf_counter() - t, 2)
        for model in models:
            t = time.perf_counter()
            if model == LOCAL:
                from mcp_router.bench.local_judge_eval import local_agreement

                report["judges"][model] = local_agreement(corpus, pairs, queries)
            else:
                report["judges"][model] = judge_agreement(model, corpus, pairs, queries)
            timings[f"judge_{model}_s"] = round(time.perf_counter() - t, 2)
        ndcgs = [corpus.ndcg10(q) for q in queries]
        report["simulated_reference_rho"] = {
            format(s, "g"): simulated_reference(ndcgs, s, sample_seed) for s in NOISE_LEVELS
        }
    if curve_seeds > 0 and policies:
        t = time.perf_counter()
        report["robustness"] = robustness(args, policies, NOISE_LEVELS, curve_steps, curve_seeds)
        timings["curve_s"] = round(time.perf_counter() - t, 2)
    timings["total_s"] = round(time.perf_counter() - started, 2)
    report["params"] = {
        "rubric_version": RUBRIC_VERSION,
        "rubric": "retrieve (feedback.judge), two worked examples in the prompt, strict parse",
        "judges": models,
        "adapter": "llamacpp (in-process), temperature 0, max_tokens = 8 + 7 per graded passage",
        "n_ctx": N_CTX,
        "n_threads": N_THREADS,
        "pairs": len(pairs),
        "pairs_requested": n_pairs,
        "pair_passage_chars": PAIR_CHARS,
        "split": split,
        "pairs_sampling": (
            f"queries of the {split} split (all: test+train) in a seeded permutation of SciFact's queries; "
            "each gives one relevant document (qrels) and one hard negative (a bm25 top-10 document not in "
            "the qrels), both random"
        ),
        "queries": len(queries),
        "queries_requested": n_queries,
        "list_k": LIST_K,
        "list_passage_chars": LIST_CHARS,
        "passage_text": "title + newline + abstract, cut to the character limit",
        "bm25": "bm25s over title + ' ' + abstract, stopwords 'en' (the retrieval benchmark's bm25 arm)",
        "sample_seed": sample_seed,
        "relevant_ge3": "share of parsed relevant pairs graded >= 3",
        "nonrelevant_le2": "share of parsed non-relevant pairs graded <= 2",
        "auc": "P(grade of a parsed relevant pair > grade of a parsed non-relevant pair), ties 1/2",
        "spearman_rho": "Spearman rho (average ranks) of the judge's retrieve reward on the bm25 top-5 vs "
        "the true NDCG@10 of the bm25 top-10, over the queries whose answer parsed",
        "latency": "wall seconds per judge call, model load excluded (timed by a warm-up call: load_s)",
        "curve_noise": list(NOISE_LEVELS),
        "curve_policies": list(policies),
        "curve_steps": curve_steps,
        "curve_seeds": curve_seeds,
        "timings_s": timings,
    }
    if getattr(args, "json", None):
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        print(f"bench: wrote {args.json}", file=sys.stderr)
    if getattr(args, "plot", None):
        if report["robustness"]:
            plot(report, args.plot)
            print(f"bench: wrote {args.plot}", file=sys.stderr)
        else:
            print("bench: no robustness curve was run; no plot", file=sys.stderr)
    print(format_summary(report))
    return 0
