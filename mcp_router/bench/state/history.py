"""A realistic router history, written through the store as a server writes it.

Start-up cost depends on what the database holds (how many events, of which kinds, with which
feature vectors), so the history is made of the records a server produces, written by the store's
own `write_call` / `write_signal` / `write_feedback` in transactions of `BATCH` calls:

- `search` over three arms and `retrieve` over two, with failed first attempts that fall back to the
  next arm (rate limits, timeouts), and, rarely, calls where every arm failed;
- `llm_complete` turns in sessions of one to six turns, each with MTRouter's step (chosen model,
  propensity, tokens, cost) and the session's running spend;
- a judge signal on about a fifth of the calls, implicit signals on some follow-up turns, a sampled
  failure's zero reward, and a few explicit feedbacks, which supersede the judge's signal (a
  `forget` event).

Quality events carry the query's real feature vector (the server's featurizer, its version), so a
replay folds them into the LinUCB heads exactly as it would fold a server's. Timestamps are spaced
`SPACING_S` apart and end now, so the windows a router keeps by age see a live history.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from mcp_router.bench.overhead.setting import BUDGET_USD, MAX_TOKENS, MODELS, queries
from mcp_router.bench.state.setting import COLLECTION, RETRIEVE_ARMS, SEARCH_ARMS
from mcp_router.routing.features import Featurizer
from mcp_router.store import AttemptRecord, CallRecord, QualityObs, StepRecord, Store
from mcp_router.store.schema import Connection

BATCH = 1_000  # calls per transaction, as a busy server's group writer commits them
SPACING_S = 0.5  # between two calls: 1M calls span about six days
ORIGIN = "bench-history"  # the writing "process": no server counts these decisions as its own
QUERIES = 512
SHARE = {"search": 0.6, "retrieve": 0.25, "llm_complete": 0.15}
TOOLS = tuple(SHARE)
CUMULATIVE = np.cumsum(list(SHARE.values()))[:-1]
FAIL_FIRST = {"search": 0.08, "retrieve": 0.01, "llm_complete": 0.03}  # first attempt fails
FAIL_AGAIN = 0.15  # a fallback fails too
SAMPLED = 0.25  # calls the router asks to have judged
JUDGED = 0.8  # of the sampled served calls: a judge signal (0.25 × 0.8 = a fifth of all calls)
FEEDBACK = 0.005  # served calls rated explicitly
IMPLICIT = 0.3  # follow-up turns whose message gives an implicit signal on the previous answer
LATENCY_S = {"search": 0.4, "retrieve": 0.005, "llm_complete": 1.5}  # median of a served attempt
ERRORS = (
    ("rate_limited", "429 Too Many Requests", 30.0),
    ("timeout", "no answer within 8.0 s", None),
    ("unavailable", "503 Service Unavailable", None),
)


@dataclass
class Written:
    """What a generation wrote, counted as the store numbered it."""

    calls: int = 0
    failed_calls: int = 0
    attempts: int = 0
    signals: int = 0
    feedbacks: int = 0
    steps: int = 0
    events: int = 0
    seconds: float = 0.0

    def add(self, other: Written) -> None:
        for name in ("calls", "failed_calls", "attempts", "signals", "feedbacks", "steps", "events"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.seconds += other.seconds

    def to_json(self) -> dict[str, Any]:
        return {**self.__dict__, "seconds": round(self.seconds, 2)}


@dataclass
class Session:
    session_id: str
    turns: int
    turn: int = 0
    spent_usd: float = 0.0
    history: list[dict[str, str]] = field(default_factory=list)
    last_call: str | None = None


class History:
    """A deterministic, seeded history; each `write` appends the next calls (sessions carry over)."""

    def __init__(self, seed: int = 0) -> None:
        self.rng = np.random.default_rng(seed)
        featurizer = Featurizer.default()
        self.texts = queries(QUERIES, seed=seed)
        self.features = featurizer.transform(self.texts)
        self.feat_version = featurizer.version
        self.serial = 0
        self.session: Session | None = None

    def write(
        self,
        store: Store,
        calls: int,
        end_ts: float,
        progress: Callable[[int], None] | None = None,
    ) -> Written:
        """Write `calls` calls whose timestamps end at `end_ts`, `BATCH` per transaction."""
        written = Written()
        started = time.perf_counter()
        start_ts = end_ts - calls * SPACING_S
        done = 0
        while done < calls:
            n = min(BATCH, calls - done)
            with store.transaction() as db:
                for i in range(done, done + n):
                    self._one(store, db, start_ts + i * SPACING_S, written)
            done += n
            if progress is not None:
                progress(done)
        written.seconds = time.perf_counter() - started
        return written

    # -- one call --------------------------------------------------------------------------------

    def _one(self, store: Store, db: Connection, ts: float, written: Written) -> None:
        tool = TOOLS[int(np.searchsorted(CUMULATIVE, self.rng.random(), side="right"))]
        if tool == "llm_complete":
            self._turn(store, db, ts, written)
            return
        q = int(self.rng.integers(QUERIES))
        arms = SEARCH_ARMS if tool == "search" else RETRIEVE_ARMS
        request: dict[str, Any] = {"query": self.texts[q], "k": 5}
        request |= {"freshness": None} if tool == "search" else {"collection": COLLECTION}
        record = self._record(tool, list(arms), q, ts, request, None, written)
        self._commit(store, db, record, ts, written)

    def _turn(self, store: Store, db: Connection, ts: float, written: Written) -> None:
        """One `llm_complete` turn of the open session (a new one when none is open)."""
        if self.session is None:
            self.serial += 1
            self.session = Session(f"bench-session-{self.serial}", int(self.rng.integers(1, 7)))
        session = self.session
        q = int(self.rng.integers(QUERIES))
        session.history.append({"role": "user", "content": self.texts[q]})
        chosen = MODELS[int(self.rng.random() < 0.6)]  # the small model, mostly
        endpoints = [chosen.endpoint] + [m.endpoint for m in MODELS if m is not chosen]
        step = self._step(session, chosen.name)
        request = {
            "messages": len(session.history),
            "last_user": self.texts[q],
            "max_tokens": MAX_TOKENS,
            "temperature": 0.0,
            "session_id": session.session_id,
            "budget_usd": BUDGET_USD,
        }
        record = self._record("llm_complete", endpoints, q, ts, request, step, written)
        self._commit(store, db, record, ts, written)
        if session.last_call and self.rng.random() < IMPLICIT:
            reward = float(self.rng.choice([0.2, 0.9]))
            self._signal(store, db, session.last_call, reward, "implicit", ts, written)
        session.last_call = record.call_id if record.served_by else None
        session.spent_usd += record.cost_usd
        session.history.append({"role": "assistant", "content": "Paris is the capital of France."})
        session.turn += 1
        if session.turn >= session.turns:
            self.session = None

    def _step(self, session: Session, model: str) -> StepRecord:
        prompt = 40 + 12 * session.turn
        explore = bool(self.rng.random() < 0.1)
        return StepRecord(
            session_id=session.session_id,
            turn=session.turn,
            chosen_model=model,
            propensity=0.1 if explore else 0.9,
            policy="explore" if explore else "greedy",
            stage="prior",
            checkpoint_id=None,
            lam=1.0,
            q_values={m.name: round(m.prior - 0.05 * session.turn, 4) for m in MODELS},
            excluded={},
            history=list(session.history[-6:]),
            task=None,
            obs_rules=[],
            budget_usd=BUDGET_USD,
            spent_before_usd=session.spent_usd,
            est_cost_usd=1e-4,
            max_tokens=MAX_TOKENS,
            served_model=model,
            prompt_tokens=prompt,
            completion_tokens=8,
        )

    def _record(
        self,
        tool: str,
        order: list[str],
        q: int,
        ts: float,
        request: dict[str, Any],
        step: StepRecord | None,
        written: Written,
    ) -> CallRecord:
        """The call's attempts down `order` (the first may fail and fall back), its decision and its
        sampled failures' zero rewards, as the dispatcher records them."""
        if tool != "llm_complete":
            self.rng.shuffle(order)
        call_id = f"call_{self.rng.bytes(8).hex()}"
        x = self.features[q]
        sampled = bool(self.rng.random() < SAMPLED)
        attempts: list[AttemptRecord] = []
        failures: list[QualityObs] = []
        clock = ts
        fail = FAIL_FIRST[tool]
        for arm in order:
            if self.rng.random() < fail:
                status, error, retry_after = ERRORS[int(self.rng.integers(len(ERRORS)))]
                latency = 8.0 if status == "timeout" else float(self.rng.uniform(0.05, 0.3))
                clock += latency
                attempts.append(AttemptRecord(arm, status, latency, error, clock, retry_after))
                if sampled:
                    failures.append(QualityObs(tool, arm, call_id, clock, x, 0.0, "failure"))
                fail = FAIL_AGAIN
                continue
            latency = float(LATENCY_S[tool] * self.rng.lognormal(0.0, 0.4))
            clock += latency
            attempts.append(AttemptRecord(arm, "ok", latency, None, clock))
            break
        served = attempts[-1].provider if attempts[-1].status == "ok" else None
        cost = 0.0
        if step is not None and served is not None:
            model = next(m for m in MODELS if m.endpoint == served)
            step = replace(step, served_model=model.name)
            cost = model.input_cost * (step.prompt_tokens or 0) + model.output_cost * 8
        record = CallRecord(
            call_id=call_id,
            tool=tool,
            router="lqm",
            ts=clock,
            request=request,
            attempts=attempts,
            decision=self._decision(order, sampled),
            x=x,
            feat_version=self.feat_version,
            sampled=sampled,
            failure_obs=failures,
            session_id=request.get("session_id"),
            cost_usd=cost,
            step=step,
        )
        written.calls += 1
        written.failed_calls += served is None
        written.attempts += len(attempts)
        written.steps += step is not None
        return record

    def _decision(self, order: list[str], sampled: bool) -> dict[str, Any]:
        """What `_decision_record` stores: the ranking and each arm's score decomposition."""
        scores = {}
        for arm in order:
            u, width = float(self.rng.uniform(0.4, 0.9)), float(self.rng.uniform(0.02, 0.3))
            tau = float(self.rng.uniform(0.1, 1.0))
            scores[arm] = {
                "u_hat": u,
                "width": width,
                "beta": 0.5 * width,
                "tau_s": tau,
                "tau_tilde": min(tau / 1.5, 1.0),
                "n": int(self.rng.integers(10, 500)),
                "m": 1.0,
                "V": min(1.0, u + 0.5 * width) / (1.0 + min(tau / 1.5, 1.0)),
            }
        return {"policy": "lqm", "order": order, "scores": scores, "excluded": {}, "sample_quality": sampled}

    def _commit(self, store: Store, db: Connection, record: CallRecord, ts: float, written: Written) -> None:
        """Write the call, then its judge signal and explicit feedback, if it draws them."""
        written.events += len(store.write_call(db, record, ORIGIN))
        if record.served_by is None:
            return
        if record.sampled and self.rng.random() < JUDGED:
            self._signal(store, db, record.call_id, float(self.rng.beta(4, 2)), "judge", ts + 2.0, written)
        if self.rng.random() < FEEDBACK:
            score = float(self.rng.choice([0.0, 0.5, 1.0]))
            _, _, events = store.write_feedback(
                db, record.call_id, score, "explicit", ts + 30.0, None, ORIGIN
            )
            written.feedbacks += 1
            written.events += len(events)

    def _signal(
        self,
        store: Store,
        db: Connection,
        call_id: str,
        reward: float,
        source: str,
        ts: float,
        written: Written,
    ) -> None:
        cost = 2e-5 if source == "judge" else 0.0
        obs, events = store.write_signal(db, call_id, reward, source, ts, cost, ORIGIN)
        written.signals += obs is not None
        written.events += len(events)
