"""Deterministic random draws for one routing decision, keyed by (seed, decision index).

A rebuilt router must draw exactly what the original drew, so each decision gets its own stream.
numpy's `default_rng([seed, index])` gives that, but building a Generator through a SeedSequence
costs about 80 µs, more than the whole rest of a decision. SplitMix64 (Steele et al., 2014) gives a
well-mixed 64-bit stream from any start state in a few integer operations per draw.
"""

from __future__ import annotations

_MASK = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15


class Draws:
    __slots__ = ("_state",)

    def __init__(self, seed: int, index: int) -> None:
        start = (seed & _MASK) * 0xD1B54A32D192ED03 + (index & _MASK) * 0xAEF17502108EF2D9
        self._state = self._mix(start & _MASK)

    @staticmethod
    def _mix(z: int) -> int:
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
        return z ^ (z >> 31)

    def _next(self) -> int:
        self._state = (self._state + _GOLDEN) & _MASK
        return self._mix(self._state)

    def random(self, size: int | None = None) -> float | list[float]:
        """A uniform float in [0, 1), or a list of `size` of them."""
        if size is None:
            return (self._next() >> 11) * (1.0 / (1 << 53))
        return [(self._next() >> 11) * (1.0 / (1 << 53)) for _ in range(size)]

    def integers(self, high: int) -> int:
        """A uniform integer in [0, high) (the modulo bias is below 2⁻⁵⁰ for any arm count)."""
        return self._next() % high

    def permutation(self, n: int) -> list[int]:
        """A uniform permutation of range(n) (Fisher–Yates)."""
        order = list(range(n))
        for i in range(n - 1, 0, -1):
            j = self._next() % (i + 1)
            order[i], order[j] = order[j], order[i]
        return order
