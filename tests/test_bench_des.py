"""The discrete-event simulator: exact queueing, in-flight counts, timeouts, failures and the judge."""

from __future__ import annotations

import numpy as np
import pytest
from bench_support import FixedService, Scripted

from mcp_router.bench.des import OK, TIMEOUT, UNAVAILABLE, arrival_times, sample_queries, simulate


def run(
    service, policy, arrivals, *, timeout_s=10.0, gold=None, queries=None, noise=0.0, seed=0, judged=None
):
    n = len(arrivals)
    queries = np.arange(n) if queries is None else np.asarray(queries)
    n_queries = int(queries.max()) + 1
    gold = np.full((n_queries, len(service.arms)), 0.5) if gold is None else gold
    return simulate(
        service,
        policy,
        queries,
        [f"q{i}" for i in range(n_queries)],
        None,
        gold,
        l_ref_s=1.0,
        timeout_s=timeout_s,
        judge_noise=noise,
        seed=seed,
        arrivals=np.asarray(arrivals, float),
        judged=judged,
    )


def test_capacity_one_queues_fifo_with_exact_waits_and_inflight():
    service = FixedService(["a"], seconds={"a": 1.0}, slots={"a": 1})
    policy = Scripted(lambda i: "a", ["a"])
    records = run(service, policy, [0.0, 0.2, 0.4, 3.0])
    assert records.wait.tolist() == pytest.approx([0.0, 0.8, 1.6, 0.0])
    assert records.latency.tolist() == pytest.approx([1.0, 1.8, 2.6, 1.0])
    assert records.status.tolist() == [OK] * 4
    # in flight at each decision = queued + in service; the call ending exactly at t=3 has left
    assert [c.inflight["a"] for c in policy.contexts] == [0, 1, 2, 0]
    assert records.inflight[:, 0].tolist() == [0, 1, 2, 0]
    # outcomes reach the policy at the end of service, in time order
    assert [(o.status, o.now) for o in policy.outcomes] == [
        ("ok", 1.0),
        ("ok", 2.0),
        ("ok", 3.0),
        ("ok", 4.0),
    ]
    assert [pytest.approx(o.latency_s) for o in policy.outcomes] == [1.0, 1.8, 2.6, 1.0]
    assert [c.now for c in policy.contexts] == [0.0, 0.2, 0.4, 3.0]


def test_outcomes_are_delivered_before_later_decisions():
    service = FixedService(["a"], seconds={"a": 1.0}, slots={"a": 1})
    policy = Scripted(lambda i: "a", ["a"])
    run(service, policy, [0.0, 1.5, 1.6])
    # by the second decision (t=1.5) the first call's outcome (t=1.0) was observed
    assert policy.outcomes[0].now == 1.0
    assert len(policy.contexts) == 3


def test_two_slots_and_independent_arms():
    service = FixedService(["a", "b"], seconds={"a": 1.0, "b": 0.5}, slots={"a": 2, "b": 1})
    policy = Scripted(["a", "a", "a", "b", "b"], ["a", "b"])
    records = run(service, policy, [0.0, 0.1, 0.2, 0.3, 0.4])
    assert records.wait.tolist() == pytest.approx([0.0, 0.0, 0.8, 0.0, 0.4])
    assert [dict(c.inflight) for c in policy.contexts] == [
        {"a": 0, "b": 0},
        {"a": 1, "b": 0},
        {"a": 2, "b": 0},
        {"a": 3, "b": 0},
        {"a": 3, "b": 1},
    ]


def test_capacity_drop_with_progress():
    # two slots, one from the half-way point: the third call (progress 0.5) waits for both to drain to 1 busy
    service = FixedService(["a"], seconds={"a": 1.0}, slots={"a": 2}, slots_after={"a": (0.5, 1)})
    policy = Scripted(lambda i: "a", ["a"])
    records = run(service, policy, [0.0, 0.1, 0.2, 0.3])
    # call 2 arrives at 0.2 with 2 busy, capacity now 1: starts when busy < 1, i.e. after both end (1.1);
    # call 3 follows it at 2.1
    assert records.wait.tolist() == pytest.approx([0.0, 0.0, 0.9, 1.8])


def test_timeout_counts_timeout_latency_and_keeps_the_slot_busy():
    service = FixedService(["a"], seconds={"a": 1.0}, slots={"a": 1})
    policy = Scripted(lambda i: "a", ["a"])
    gold = np.full((5, 1), 0.8)
    records = run(service, policy, [0.0, 0.2, 0.4, 2.5, 2.6], timeout_s=2.0, gold=gold)
    # call 2 would take 2.6 s > 2: timeout at 2.4; still served 2..3, so call 3 (t=2.5) waits until 3
    assert records.status.tolist() == [OK, OK, TIMEOUT, OK, TIMEOUT]
    assert records.latency.tolist() == pytest.approx([1.0, 1.8, 2.0, 1.5, 2.0])
    assert records.quality.tolist() == pytest.approx([0.8, 0.8, 0.0, 0.8, 0.0])
    assert records.wait[3] == pytest.approx(0.5)
    assert records.t_done[2] == pytest.approx(2.4)
    # the policy hears the timeout at the deadline, with latency = timeout and reward 0
    timeout = next(o for o in policy.outcomes if o.status == "timeout")
    assert timeout.now == pytest.approx(2.4) and timeout.latency_s == 2.0
    assert ("a", 0.0, pytest.approx(2.4)) in policy.rewards
    # the timed-out call is still in the system (queued or in service) for the in-flight counts
    assert policy.contexts[3].inflight["a"] == 1  # call 2, timed out at 2.4, in service until 3.0
    assert [o.now for o in policy.outcomes] == sorted(o.now for o in policy.outcomes)


def test_latency_equal_to_timeout_is_not_a_timeout():
    service = FixedService(["a"], seconds={"a": 2.0}, slots={"a": 1})
    policy = Scripted(lambda i: "a", ["a"])
    records = run(service, policy, [0.0], timeout_s=2.0)
    assert records.status.tolist() == [OK]


def test_queued_call_past_its_deadline_times_out_before_starting():
    service = FixedService(["a"], seconds={"a": 5.0}, slots={"a": 1})
    policy = Scripted(lambda i: "a", ["a"])
    records = run(service, policy, [0.0, 0.1], timeout_s=1.0)
    assert records.status.tolist() == [TIMEOUT, TIMEOUT]
    assert [o.now for o in policy.outcomes] == pytest.approx([1.0, 1.1])
    assert records.wait[1] == pytest.approx(4.9)  # the server still serves it after the client gave up


def test_failures_are_unavailable_with_zero_quality_and_sampled_latency():
    service = FixedService(["a"], seconds={"a": 0.3}, slots={"a": 1}, fail=lambda arm, q: q == 1)
    policy = Scripted(lambda i: "a", ["a"])
    records = run(service, policy, [0.0, 1.0, 2.0], gold=np.full((3, 1), 0.9))
    assert records.status.tolist() == [OK, UNAVAILABLE, OK]
    assert records.latency.tolist() == pytest.approx([0.3, 0.3, 0.3])
    assert records.quality.tolist() == pytest.approx([0.9, 0.0, 0.9])
    assert [o.status for o in policy.outcomes] == ["ok", "unavailable", "ok"]
    assert [r for _, r, _ in policy.rewards] == pytest.approx([0.9, 0.0, 0.9])


def test_judge_is_gold_plus_clipped_noise_shared_across_policies():
    service = FixedService(["a", "b"], seconds={"a": 0.1, "b": 0.1}, slots={"a": 100, "b": 100})
    gold = np.array([[0.0, 1.0], [0.5, 0.5], [0.98, 0.02]])
    queries = np.tile([0, 1, 2], 100)
    arrivals = np.arange(300) * 1.0
    first = run(service, Scripted(lambda i: "a", ["a", "b"]), arrivals, gold=gold, queries=queries, noise=0.3)
    second = run(
        service, Scripted(lambda i: "b", ["a", "b"]), arrivals, gold=gold, queries=queries, noise=0.3
    )
    assert first.reward.min() >= 0.0 and first.reward.max() <= 1.0
    assert np.mean(first.reward[queries == 0] == 0.0) > 0.3  # gold 0: about half the noise is clipped
    noise_a = first.reward[queries == 1] - 0.5
    noise_b = second.reward[queries == 1] - 0.5
    assert np.allclose(noise_a, noise_b)  # the same judge noise per step for every policy
    assert 0.2 < np.std(noise_a) < 0.4
    without = run(
        service, Scripted(lambda i: "a", ["a", "b"]), arrivals, gold=gold, queries=queries, noise=0.0
    )
    assert np.array_equal(without.reward, without.quality)


def test_a_real_judges_grades_replace_the_simulated_judge_and_quality_stays_gold():
    """With `judged`, the policy learns from judged[q, a] (no noise); the metric is still gold; a
    timed-out call is rewarded 0 whatever the judge would have said."""
    service = FixedService(["a", "b"], seconds={"a": 0.1, "b": 5.0}, slots={"a": 10, "b": 10})
    gold = np.array([[0.2, 0.9], [0.6, 0.4]])
    judged = np.array([[0.7, 0.1], [0.3, 0.8]])
    queries = [0, 1, 0, 1]
    policy = Scripted(lambda i: "a" if i < 2 else "b", ["a", "b"])
    records = run(
        service,
        policy,
        [0.0, 1.0, 2.0, 3.0],
        gold=gold,
        queries=queries,
        judged=judged,
        noise=0.5,
        timeout_s=1.0,
    )
    assert records.status.tolist() == [OK, OK, TIMEOUT, TIMEOUT]
    assert records.quality.tolist() == pytest.approx([0.2, 0.6, 0.0, 0.0])
    assert records.reward.tolist() == pytest.approx([0.7, 0.3, 0.0, 0.0])
    assert [r for _, r, _ in policy.rewards] == pytest.approx([0.7, 0.3, 0.0, 0.0])


def test_seeded_streams_are_reproducible():
    service = FixedService(["a"], seconds={"a": 0.1}, slots={"a": 1}, rate=6.0)
    t1, t2 = arrival_times(service, 2000, 3), arrival_times(service, 2000, 3)
    assert np.array_equal(t1, t2)
    assert np.mean(np.diff(t1)) == pytest.approx(1 / 6.0, rel=0.1)
    assert np.array_equal(sample_queries(50, 100, 1), sample_queries(50, 100, 1))
    assert not np.array_equal(sample_queries(50, 100, 1), sample_queries(50, 100, 2))


def test_progress_dependent_arrival_rate():
    class Surge(FixedService):
        def arrival_rate(self, progress):
            return 12.0 if 0.4 <= progress < 0.6 else 6.0

    service = Surge(["a"], seconds={"a": 0.1}, slots={"a": 1})
    t = arrival_times(service, 20000, 0)
    gaps = np.diff(np.concatenate([[0.0], t]))
    assert np.mean(gaps[:8000]) == pytest.approx(1 / 6, rel=0.05)
    assert np.mean(gaps[8000:12000]) == pytest.approx(1 / 12, rel=0.05)
