"""A sliding-window ridge regression with a LinUCB confidence width: one per arm, the quality head.

Observations leave the window by count and by age; A and b are maintained incrementally (add when an
observation enters, subtract when it leaves) and rebuilt from the window every `rebuild_every`
updates to bound floating-point drift.
"""

from __future__ import annotations

from collections import deque

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
        """(θ, A⁻¹) of the window at `now`, computed once per change."""
        self.evict(now)
        return self._solve()

    def _solve(self) -> tuple[np.ndarray, np.ndarray]:
        if self._solved is None:
            chol = np.linalg.cholesky(self.A)
            inv_chol = np.linalg.solve(chol, np.eye(self.dim))
            a_inv = inv_chol.T @ inv_chol
            self._solved = (a_inv @ self.b, a_inv)
        return self._solved


class StackedHeads:
    """Every eligible arm's (θ, A⁻¹) stacked, so one decision scores all arms in two matrix products
    instead of a few numpy calls per arm. Restacked only when a head's window changed."""

    def __init__(self) -> None:
        self._key: tuple[tuple[int, int], ...] = ()
        self._theta = np.zeros((0, 0))
        self._a_inv = np.zeros((0, 0, 0))

    def predict(self, heads: list[SlidingLinUCB], x: np.ndarray, now: float) -> tuple[np.ndarray, np.ndarray]:
        """Per head, (û, w): the mean estimate clipped to [0, 1] and the confidence width sqrt(xᵀA⁻¹x)."""
        solved = [head.solved(now) for head in heads]
        key = tuple((id(head), head.version) for head in heads)
        if key != self._key:
            self._theta = np.stack([theta for theta, _ in solved])
            self._a_inv = np.stack([a_inv for _, a_inv in solved])
            self._key = key
        u = np.clip(self._theta @ x, 0.0, 1.0)
        width = np.sqrt(np.maximum((self._a_inv @ x) @ x, 0.0))
        return u, width
