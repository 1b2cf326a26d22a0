"""Per-client token buckets: a client may burst, then gets its share of the rate, and is told when to
come back (`Retry-After`) instead of queueing work that spends API keys.

Memory is bounded without changing behaviour: a bucket untouched for `burst / rate` seconds has
refilled completely, which is exactly what a new bucket is, so it is dropped. Buckets are kept in
least-recently-used order, so those idle ones are always at the front and eviction is O(1) per
request. A hard cap (`max_clients`) bounds a flood from many addresses; it forgets the least recent
client's partial bucket, which can only make the limiter more lenient to that one client.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

DEFAULT_MAX_CLIENTS = 10_000


@dataclass(frozen=True)
class RateLimit:
    """`per_s` requests per second sustained, `burst` at once."""

    per_s: float
    burst: int

    def describe(self) -> str:
        return f"{self.per_s:g}/s per client, burst {self.burst}"


@dataclass
class _Bucket:
    tokens: float
    stamp: float  # the last time the bucket was refilled (and used)


class RateLimiter:
    """`wait(key)` takes a token from `key`'s bucket; not thread-safe (one event loop, no awaits)."""

    def __init__(
        self,
        limit: RateLimit,
        max_clients: int = DEFAULT_MAX_CLIENTS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if limit.per_s <= 0 or limit.burst < 1 or max_clients < 1:
            raise ValueError("a rate limit needs a positive rate, a burst ≥ 1 and room for one client")
        self.limit = limit
        self.max_clients = max_clients
        self._clock = clock
        self._full_after_s = limit.burst / limit.per_s
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def __len__(self) -> int:
        return len(self._buckets)

    def wait(self, key: str) -> float:
        """0.0 when the request may go now (a token is taken), else the seconds until one is free."""
        now = self._clock()
        self._evict_idle(now)
        bucket = self._buckets.pop(key, None)
        if bucket is None:
            bucket = _Bucket(float(self.limit.burst), now)
        else:
            elapsed = max(now - bucket.stamp, 0.0)
            bucket.tokens = min(float(self.limit.burst), bucket.tokens + elapsed * self.limit.per_s)
            bucket.stamp = now
        self._buckets[key] = bucket  # most recent last
        if len(self._buckets) > self.max_clients:
            self._buckets.popitem(last=False)
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / self.limit.per_s

    def _evict_idle(self, now: float) -> None:
        while self._buckets:
            oldest = next(iter(self._buckets.values()))
            if now - oldest.stamp < self._full_after_s:
                return
            self._buckets.popitem(last=False)


def retry_after_s(wait_s: float) -> int:
    """`Retry-After` is whole seconds; never 0, which clients read as "retry at once"."""
    return max(1, math.ceil(wait_s))
