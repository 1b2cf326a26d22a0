"""QA-pool benchmark data on the real shared data: LLMRouter quality matrix and llmperf trace replay."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np
import pytest

from mcp_router.bench.qa_pool import (
    ARRIVAL_RATE_PER_S,
    CAPACITY_PER_ARM,
    L_REF_S,
    LLMPERF_DIR,
    LLMROUTER_DIR,
    MAX_TEXT_CHARS,
    TRACE_FOR_MODEL,
    QAPool,
    ReplayService,
    load_qa_pool,
    load_trace,
    normalise_question,
)

DATA_DIR = Path(os.environ.get("MCP_ROUTER_DATA", Path(__file__).parents[2] / "shared" / "data"))

pytestmark = pytest.mark.skipif(
    not (DATA_DIR / LLMROUTER_DIR).is_dir() or not (DATA_DIR / LLMPERF_DIR).is_dir(),
    reason=f"shared benchmark data not found at {DATA_DIR} (set MCP_ROUTER_DATA)",
)

N_TRAIN, N_TEST, N_DUPLICATES = 5608, 500, 119


@pytest.fixture(scope="module")
def pool() -> QAPool:
    return load_qa_pool(DATA_DIR)


@pytest.fixture(scope="module")
def service(pool: QAPool) -> ReplayService:
    return ReplayService(pool, DATA_DIR)


@pytest.fixture(scope="module")
def model_size_b() -> dict[str, float]:
    table = json.loads((DATA_DIR / LLMROUTER_DIR / "default_llm.json").read_text())
    return {name: float(entry["size"].rstrip("Bb")) for name, entry in table.items()}


def _draws(service: ReplayService, arm: str, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    out = [service.service_time(arm, q, rng, q / n) for q in range(n)]
    return np.array([s for s, _ in out]), np.array([f for _, f in out])


def test_shapes_and_ranges(pool: QAPool) -> None:
    n = N_TRAIN + N_TEST - N_DUPLICATES
    assert len(pool.arms) == 9 and pool.arms == sorted(pool.arms)
    assert pool.quality.shape == (n, 9) and pool.quality.dtype == np.float64
    assert len(pool.texts) == len(pool.ids) == n
    assert len(set(pool.ids)) == n
    assert np.isfinite(pool.quality).all()
    assert pool.quality.min() >= 0.0 and pool.quality.max() <= 1.0
    assert all(0 < len(t) <= MAX_TEXT_CHARS for t in pool.texts)
    assert pool.ids[0] == "train-0" and pool.ids[N_TRAIN].startswith("test-")
    # the quality heterogeneity the benchmark relies on: mean scores span roughly 0.17..0.62
    means = pool.quality.mean(axis=0)
    assert means.min() < 0.25 and means.max() > 0.55


def test_dedupe_count_and_no_leak(pool: QAPool) -> None:
    assert pool.dropped_duplicates == N_DUPLICATES
    base = DATA_DIR / LLMROUTER_DIR
    train = json.loads((base / "train.json").read_text())
    test = json.loads((base / "test.json").read_text())
    train_keys = {normalise_question(x["question"]) for x in train}
    kept = [int(i.removeprefix("test-")) for i in pool.ids if i.startswith("test-")]
    assert len(kept) == N_TEST - N_DUPLICATES
    assert not any(normalise_question(test[i]["question"]) in train_keys for i in kept)
    # the kept rows carry the source scores
    row = pool.ids.index(f"test-{kept[0]}")
    assert pool.quality[row].tolist() == [test[kept[0]]["scores"][a] for a in pool.arms]


def test_normalise_question() -> None:
    assert normalise_question("  a\n\tb   c \n") == "a b c"


def test_mapping_covers_models_and_files_exist(pool: QAPool, model_size_b: dict[str, float]) -> None:
    assert set(TRACE_FOR_MODEL) == set(pool.arms)
    for model, name in TRACE_FOR_MODEL.items():
        assert (DATA_DIR / LLMPERF_DIR / name).is_file(), name
        trace_b = float(re.search(r"_(\d+)b\.json$", name).group(1))
        # smallest measured Llama-2 size >= the model's size
        assert trace_b >= model_size_b[model]
        assert trace_b == min(s for s in (7.0, 13.0, 70.0) if s >= model_size_b[model])
    assert len(set(TRACE_FOR_MODEL.values())) == 9  # one trace per model, none shared


def test_large_models_are_slower(service: ReplayService, model_size_b: dict[str, float]) -> None:
    medians = {arm: float(np.median(_draws(service, arm, 3000, seed=1)[0])) for arm in service.arms}
    large = [a for a in service.arms if model_size_b[a] >= 40]
    small = [a for a in service.arms if model_size_b[a] < 40]
    assert len(large) == 3 and len(small) == 6
    assert min(medians[a] for a in large) > max(medians[a] for a in small)
    assert min(medians[a] for a in large) > L_REF_S  # strong arms sit at or beyond the clip of tau~


def test_service_time_deterministic_for_fixed_seed(service: ReplayService) -> None:
    for arm in service.arms:
        a = _draws(service, arm, 200, seed=7)
        b = _draws(service, arm, 200, seed=7)
        assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    arm = service.arms[0]
    assert not np.array_equal(_draws(service, arm, 200, seed=7)[0], _draws(service, arm, 200, seed=8)[0])


def test_failure_rate_matches_trace(service: ReplayService) -> None:
    n = 20000
    for arm in service.arms:
        trace = service.traces[arm]
        seconds, failed = _draws(service, arm, n, seed=3)
        p = trace.error_rate
        assert abs(failed.mean() - p) <= 5 * np.sqrt(p * (1 - p) / n) + 1e-9, arm
        assert (seconds > 0).all(), arm  # zero-latency errors replay the fallback, not 0 s
    # the one heavily failing arm in the mapping: bedrock_70b, 49 errors out of 150
    assert service.traces["llama3-chatqa-1.5-70b"].error_rate == pytest.approx(49 / 150)


def test_zero_latency_errors_use_median_fallback() -> None:
    trace = load_trace(DATA_DIR / LLMPERF_DIR / "perplexity_70b.json")
    raw = json.loads((DATA_DIR / LLMPERF_DIR / "perplexity_70b.json").read_text())
    zero = [i for i, r in enumerate(raw) if r["error_code"] is not None and not r["end_to_end_latency_s"]]
    assert zero and trace.failed[zero].all()
    ok = [r["end_to_end_latency_s"] for r in raw if r["error_code"] is None]
    assert trace.fallback_s == pytest.approx(float(np.median(ok)))
    assert (trace.latency_s[zero] == trace.fallback_s).all()


def test_load_scenario_constants(service: ReplayService) -> None:
    for arm in service.arms:
        assert service.capacity(arm, 0.0) == service.capacity(arm, 0.99) == CAPACITY_PER_ARM == 5
    assert service.arrival_rate(0.0) == service.arrival_rate(0.5) == ARRIVAL_RATE_PER_S
    # documented derivation: capacity / mean service time of the slowest arm
    slowest = max(float(t.latency_s.mean()) for t in service.traces.values())
    assert abs(ARRIVAL_RATE_PER_S - CAPACITY_PER_ARM / slowest) <= 0.02 * ARRIVAL_RATE_PER_S


def test_bad_scores_rejected(tmp_path: Path) -> None:
    base = tmp_path / LLMROUTER_DIR
    base.mkdir(parents=True)
    scores = dict.fromkeys(TRACE_FOR_MODEL, 0.5)
    (base / "train.json").write_text(json.dumps([{"question": "q1", "scores": scores}]))
    (base / "test.json").write_text(json.dumps([{"question": "q2", "scores": {**scores, "codegemma-7b": 7}}]))
    with pytest.raises(ValueError, match="not in"):
        load_qa_pool(tmp_path)
    (base / "test.json").write_text(json.dumps([{"question": " q1 ", "scores": scores}]))
    tiny = load_qa_pool(tmp_path)
    assert tiny.dropped_duplicates == 1 and tiny.ids == ["train-0"]
