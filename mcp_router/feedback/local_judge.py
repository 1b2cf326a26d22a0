"""The local judge: a quality score for `search` and `retrieve` results that needs no key, no network
and no LLM, so the routers learn out of the box.

Why not the packaged LLMs: `mcp-router bench judge` measured the 135M/270M models at chance (AUC 0.50
on SciFact), so with only them nothing could be judged and the routers never left warm-up.

How it scores one result list (the same `JudgeInput` the LLM judge gets):
1. Per result k of the top `list_k`: cheap features of (query, result text), see `FEATURES`: the
   all-MiniLM-L6-v2 cosine (the packaged sentence model), the share of the query's content terms
   (and of its adjacent term pairs) found in the result, and products of these. A logistic model
   turns them into p_k, the chance the result is relevant. It is fitted on SciFact's *train* qrels
   over the top-10 lists of all four retrieval arms (bm25, bm25-title, dense, hybrid), so p_k has
   realistic base rates, and the lexical terms temper the cosine: the dense arm ranks by that same
   cosine, so a judge on cosine alone would favour it.
2. The list statistic (`list_statistic`): `max_discounted` = max_k p_k / log2(k + 1), how early the
   clearly relevant result comes; or `expected_dcg` = Σ_k p_k / log2(k + 1). The fit picks one by
   cross-validation on train; the sum did worse there, because the many near-miss results of a
   good list add up to as much as one relevant result.
3. reward = min(1, list_scale · statistic^list_power): no intercept, so a list with nothing relevant
   scores near 0. `list_scale` makes the mean reward over the train lists equal their mean NDCG@10;
   `list_power` is the one whose per-arm mean rewards come nearest each arm's mean NDCG@10 on the
   train lists (4 in local-v2). LQM ranks arms by mean reward per service cycle, so what matters is
   that each arm's mean reward follows its mean quality. With power 1 the judge regresses every
   list towards the mean: a weak arm's misses still score something and a strong arm's hits less
   than 1, which made the weak, fast bm25-title arm look almost as good as bm25 (and the
   benchmark's LQM no better than round-robin). An intercept would pull the lists together more.
   The power spreads the rewards apart (at 4 the reward is nearly a yes/no on whether a clearly
   relevant result comes early: 56 % of the train lists score 1); the judge never sees which arm
   produced a list.

The fitted numbers are a versioned JSON file next to this module (`local_judge.json`), refitted by
`mcp-router bench judge --fit-local` (`mcp_router/bench/local_judge_fit.py`), never on test queries.
Scoring is pure apart from the sentence encoder, which is injected: the server uses MiniLM through
`providers.retrieve.embedder` (torch-free unless torch is already loaded), in a worker thread off
the call path, and remembers the vectors of recent results; the benchmarks pass a lookup of
precomputed vectors of the same texts.
"""

from __future__ import annotations

import itertools
import json
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from mcp_router.feedback.judge import JudgeInput

LOCAL_TOOLS = ("search", "retrieve")  # an answer's correctness is beyond it: llm_complete needs an LLM
PARAMS_FILE = Path(__file__).with_name("local_judge.json")
BASE_FEATURES = ("cosine", "overlap", "bigram")
FEATURES = (*BASE_FEATURES, "cosine^2", "overlap^2", "cosine*overlap")
STATISTICS = ("max_discounted", "expected_dcg")
MAX_CHARS = 2000  # a result is cut here before scoring: MiniLM reads ~1,000-1,300 characters anyway
CACHED_VECTORS = 4096  # result vectors remembered (1.5 KB each): a collection's popular passages recur
Embed = Callable[[Sequence[str]], np.ndarray]

# Function words never count as query terms: bm25s's English list plus the words of questions.
_STOPWORD_TEXT = """
a an and are as at be but by for if in into is it no not of on or such that the their then there
these they this to was will with what which who whom whose when where why how do does did can could
should would may might must has have had been being its our your we you he she his her them than
so from about over under more most less very also any all some each other
"""
STOPWORDS = frozenset(_STOPWORD_TEXT.split())
_WORD = re.compile(r"[a-z0-9]+")
_URL_LINE = re.compile(r"^\s*https?://\S+\s*$")
STEM_CHARS = 6  # terms are compared by their first 6 characters: a crude stemmer, no dependency


def terms(text: str) -> list[str]:
    """The content terms of `text` in order: lower-case words, stop words dropped, cut to 6 characters
    (so "vaccines" and "vaccination" meet), single characters dropped."""
    return [w[:STEM_CHARS] for w in _WORD.findall(text.lower()) if len(w) > 1 and w not in STOPWORDS]


def result_text(tool: str, item: str) -> str:
    """What is scored of one result: a search hit without its URL line (title and snippet carry its
    meaning; a URL only adds noise to the sentence vector), cut to `MAX_CHARS`."""
    if tool == "search":
        item = "\n".join(line for line in item.splitlines() if not _URL_LINE.match(line))
    return item.strip()[:MAX_CHARS]


def lexical_features(query_terms: Sequence[str], text: str) -> tuple[float, float]:
    """(share of the distinct query terms found in `text`, share of the query's adjacent term pairs
    found adjacent in `text`); 0 for a query without terms (or pairs)."""
    found = terms(text)
    bag = set(found)
    distinct = set(query_terms)
    overlap = sum(t in bag for t in distinct) / len(distinct) if distinct else 0.0
    wanted = set(itertools.pairwise(query_terms))
    pairs = set(itertools.pairwise(found))
    bigram = sum(p in pairs for p in wanted) / len(wanted) if wanted else 0.0
    return overlap, bigram


def derived(base: np.ndarray) -> np.ndarray:
    """All `FEATURES` from the `BASE_FEATURES` columns (a cosine, an overlap, a bigram share)."""
    cosine, overlap = base[:, 0], base[:, 1]
    return np.column_stack([base, cosine**2, overlap**2, cosine * overlap])


def rank_weights(n: int) -> np.ndarray:
    """DCG's discounts 1/log2(k + 1) for ranks k = 1..n."""
    return 1.0 / np.log2(np.arange(2, n + 2))


def list_statistic(name: str, p: Sequence[float]) -> float:
    """The list statistic `name` (see `STATISTICS`) of relevance chances `p`, in rank order."""
    arr = np.asarray(p, dtype=np.float64)
    if not len(arr):
        return 0.0
    discounted = arr * rank_weights(len(arr))
    if name == "max_discounted":
        return float(discounted.max())
    if name == "expected_dcg":
        return float(discounted.sum())
    raise ValueError(f"unknown list statistic {name!r}; expected one of {STATISTICS}")


@dataclass(frozen=True)
class LocalJudgeParams:
    """The fitted numbers: the per-result logistic model over `features`, the list statistic and
    its scale."""

    version: str
    features: tuple[str, ...]
    weights: tuple[float, ...]
    bias: float
    list_k: int
    list_statistic: str
    list_scale: float
    list_power: float = 1.0  # reward = min(1, scale · statistic^power); 1 in judges fitted before it
    fit: dict[str, Any] = field(default_factory=dict, compare=False)  # how and on what it was fitted

    def __post_init__(self) -> None:
        unknown = set(self.features) - set(FEATURES)
        if unknown or len(self.weights) != len(self.features):
            raise ValueError(f"bad local judge parameters: features {self.features}, weights {self.weights}")
        if (
            self.list_k < 1
            or self.list_statistic not in STATISTICS
            or self.list_scale <= 0
            or self.list_power <= 0
        ):
            raise ValueError(
                f"bad local judge list parameters: {self.list_k}, {self.list_statistic!r}, "
                f"{self.list_scale}, {self.list_power}"
            )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LocalJudgeParams:
        return cls(
            version=str(data["version"]),
            features=tuple(data["features"]),
            weights=tuple(float(w) for w in data["weights"]),
            bias=float(data["bias"]),
            list_k=int(data["list_k"]),
            list_statistic=str(data["list_statistic"]),
            list_scale=float(data["list_scale"]),
            list_power=float(data.get("list_power", 1.0)),
            fit=dict(data.get("fit", {})),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "features": list(self.features),
            "weights": list(self.weights),
            "bias": self.bias,
            "list_k": self.list_k,
            "list_statistic": self.list_statistic,
            "list_scale": self.list_scale,
            "list_power": self.list_power,
            "fit": self.fit,
        }

    @classmethod
    def load(cls, path: Path = PARAMS_FILE) -> LocalJudgeParams:
        return cls.from_dict(json.loads(path.read_text(encoding="utf-8")))


@cache
def packaged_params() -> LocalJudgeParams:
    """The parameters shipped with the package (read once)."""
    return LocalJudgeParams.load()


def default_embed(texts: Sequence[str]) -> np.ndarray:
    """MiniLM as the server runs it: the torch-free encoder (loads in under a second), or
    sentence-transformers when the process has loaded torch already; the same vectors either way."""
    from providers.retrieve.embedder import embed_passages

    return embed_passages(texts)


class CachedEmbed:
    """`embed` remembering the vectors of the last `size` texts (thread-safe): a judged result that
    was judged before costs nothing."""

    def __init__(self, embed: Embed, size: int = CACHED_VECTORS) -> None:
        self.embed = embed
        self.size = size
        self._vectors: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        with self._lock:
            known = {t: self._vectors[t] for t in texts if t in self._vectors}
            for t in known:
                self._vectors.move_to_end(t)
        missing = list(dict.fromkeys(t for t in texts if t not in known))
        if missing:
            fresh = dict(zip(missing, np.asarray(self.embed(missing), dtype=np.float32), strict=True))
            known.update(fresh)
            with self._lock:
                self._vectors.update(fresh)
                while len(self._vectors) > self.size:
                    self._vectors.popitem(last=False)
        return np.stack([known[t] for t in texts]) if texts else np.zeros((0, 0), dtype=np.float32)


def features(embed: Embed, tool: str, query: str, items: Sequence[str]) -> np.ndarray:
    """The (len(items), len(FEATURES)) feature matrix of the results `items` for `query`: one call
    of `embed` for the query and every result."""
    texts = [result_text(tool, item) for item in items]
    if not texts:
        return np.zeros((0, len(FEATURES)))
    vectors = np.asarray(embed([query.strip()[:MAX_CHARS], *texts]), dtype=np.float64)
    cosines = vectors[1:] @ vectors[0]
    query_terms = terms(query)
    lexical = np.asarray([lexical_features(query_terms, text) for text in texts]).reshape(len(texts), 2)
    return derived(np.column_stack([cosines, lexical]))


class LocalJudge:
    """Scores result lists in [0, 1] (see the module docstring). Thread-safe: its only state is the
    vector cache, behind a lock, and the default encoder may be called from several threads."""

    name = "local"

    def __init__(self, params: LocalJudgeParams | None = None, embed: Embed | None = None) -> None:
        self.params = params or packaged_params()
        self.embed = embed or CachedEmbed(default_embed)
        self._columns = [FEATURES.index(f) for f in self.params.features]

    def probabilities(self, x: np.ndarray) -> np.ndarray:
        """p_k from a feature matrix (rows: results, columns: `FEATURES`)."""
        logits = x[:, self._columns] @ np.asarray(self.params.weights) + self.params.bias
        return 1.0 / (1.0 + np.exp(-logits))

    def relevance(self, tool: str, query: str, items: Sequence[str]) -> np.ndarray:
        """p_k: each result's calibrated chance of being relevant to `query`."""
        return self.probabilities(features(self.embed, tool, query, items))

    def list_score(self, p: Sequence[float]) -> float:
        """The reward of a list whose top results have relevance chances `p`, in rank order."""
        stat = list_statistic(self.params.list_statistic, list(p)[: self.params.list_k])
        return float(min(1.0, max(0.0, self.params.list_scale * stat**self.params.list_power)))

    def score(self, item: JudgeInput) -> float:
        """The reward in [0, 1] of a `search` or `retrieve` result list (its top `list_k` results)."""
        if item.tool not in LOCAL_TOOLS:
            raise ValueError(f"the local judge grades {LOCAL_TOOLS} only, not {item.tool!r}")
        if not item.items:
            return 0.0
        return self.list_score(self.relevance(item.tool, item.query, item.items[: self.params.list_k]))
