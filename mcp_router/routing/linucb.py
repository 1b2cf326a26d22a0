"""A sliding-window ridge regression with a LinUCB confidence width: one per arm, the quality head.

Observations leave the window by count and by age; A and b are maintained incrementally (add when an
observation enters, subtract when it leaves) and rebuilt from the window every `rebuild_every`
updates to bound floating-point drift.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import numpy as np


class SlidingLinUCB:
    def __init__(
        self,
        dim: int,
        ridge: float = 1.0,
        window: int = 500,
        window_age_s: float = 86_400.0,
        rebuild_every: int = 1000,
    ) -> None:
        self.dim, self.ridge = dim, ridge
        self.window, self.window_age_s, self.rebuild_every = window, window_age_s, rebuild_every
        self.obs: deque[tuple[float, np.ndarray, float]] = deque()
        self.A = ridge * np.eye(dim)
        self.b = np.zeros(dim)
        self.updates = 0
        self.version = 0  # bumped on every change of the window: callers cache what they derive from it
        self._solved: tuple[np.ndarray, np.ndarray] | None = None  # (theta, A^-1), invalidated on change
        self._aged: tuple[int, int, tuple[np.ndarray, np.ndarray]] | None = None  # without expired obs

    @property
    def n(self) -> int:
        return len(self.obs)

    def add(self, x: np.ndarray, reward: float, now: float) -> None:
        x = np.asarray(x, dtype=np.float64)
        self.obs.append((now, x, float(reward)))
        self.A += np.outer(x, x)
        self.b += reward * x
        self.updates += 1
        self.evict(now)
        if self.updates % self.rebuild_every == 0:
            self._rebuild()
        self._changed()

    def remove(self, ts: float, x: np.ndarray, reward: float) -> bool:
        """Take back one observation still in the window (explicit feedback replaced it)."""
        x = np.asarray(x, dtype=np.float64)
        for i, (t, xi, r) in enumerate(self.obs):
            if t == ts and r == reward and np.array_equal(xi, x):
                del self.obs[i]
                self.A -= np.outer(x, x)
                self.b -= reward * x
                self._changed()
                return True
        return False

    def get_state(self) -> dict[str, Any]:
        return {"obs": self.obs, "A": self.A, "b": self.b, "updates": self.updates}

    def set_state(self, state: dict[str, Any]) -> None:
        self.obs = deque(state["obs"])
        self.A, self.b, self.updates = state["A"].copy(), state["b"].copy(), int(state["updates"])
        self._changed()

    def evict(self, now: float) -> None:
        changed = False
        while self.obs and (len(self.obs) > self.window or self.obs[0][0] < now - self.window_age_s):
            _, x, r = self.obs.popleft()
            self.A -= np.outer(x, x)
            self.b -= r * x
            changed = True
        if changed:
            self._changed()

    def _changed(self) -> None:
        self._solved = None
        self.version += 1

    def _rebuild(self) -> None:
        self.A = self.ridge * np.eye(self.dim)
        self.b = np.zeros(self.dim)
        for _, x, r in self.obs:
            self.A += np.outer(x, x)
            self.b += r * x

    def solved(self, now: float) -> tuple[np.ndarray, np.ndarray]:
        """(θ, A⁻¹) of the window at `now`, computed once per change. Reading changes nothing:
        observations leave the window only when a new one arrives, so the state is a function of
        the observations alone (processes folding the same ones agree); those older than the age
        window at `now` are left out of this answer."""
        expired = self._expired(now)
        if expired == 0:
            return self._solve()
        if self._aged is None or self._aged[:2] != (self.version, expired):
            a = self.ridge * np.eye(self.dim)
            b = np.zeros(self.dim)
            for i, (_, x, r) in enumerate(self.obs):
                if i >= expired:
                    a += np.outer(x, x)
                    b += r * x
            self._aged = (self.version, expired, _solve(a, b))
        return self._aged[2]

    def count(self, now: float) -> int:
        """Observations inside the window at `now`."""
        return len(self.obs) - self._expired(now)

    def _expired(self, now: float) -> int:
        cutoff = now - self.window_age_s
        expired = 0
        for t, _, _ in self.obs:
            if t >= cutoff:
                break
            expired += 1
        return expired

    def _solve(self) -> tuple[np.ndarray, np.ndarray]:
        if self._solved is None:
            self._solved = _solve(self.A, self.b)
        return self._solved


def _solve(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    chol = np.linalg.cholesky(a)
    inv_chol = np.linalg.solve(chol, np.eye(a.shape[0]))
    a_inv = inv_chol.T @ inv_chol
    return a_inv @ b, a_inv


class StackedHeads:
    """Every eligible arm's (θ, A⁻¹) stacked, so one decision scores all arms in two matrix products
    instead of a few numpy calls per arm. Restacked only when a head's window changed."""

    def __init__(self) -> None:
        self._key: list[tuple[np.ndarray, np.ndarray]] = []
        self._theta = np.zeros((0, 0))
        self._a_inv = np.zeros((0, 0, 0))

    def predict(self, heads: list[SlidingLinUCB], x: np.ndarray, now: float) -> tuple[np.ndarray, np.ndarray]:
        """Per head, (û, w): the mean estimate clipped to [0, 1] and the confidence width sqrt(xᵀA⁻¹x)."""
        if not heads:  # a tool with no provider: its empty stack has no feature dimension to multiply
            return np.zeros(0), np.zeros(0)
        solved = [head.solved(now) for head in heads]
        if len(solved) != len(self._key) or any(a is not b for a, b in zip(solved, self._key, strict=True)):
            self._theta = np.stack([theta for theta, _ in solved])
            self._a_inv = np.stack([a_inv for _, a_inv in solved])
            self._key = solved
        u = np.clip(self._theta @ x, 0.0, 1.0)
        width = np.sqrt(np.maximum((self._a_inv @ x) @ x, 0.0))
        return u, width
