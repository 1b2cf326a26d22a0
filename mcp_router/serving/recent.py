"""A mapping bounded to its most recently used keys.

The server keeps a little state per session in memory (its budget and spend, its previous turn), so
planning a turn costs no query; a process that runs for months must not keep it for every session
it has ever seen. What falls out is read from the database again when the session comes back.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class Recent(Generic[K, V]):
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._items: OrderedDict[K, V] = OrderedDict()

    def get(self, key: K) -> V | None:
        value = self._items.get(key)
        if value is not None:
            self._items.move_to_end(key)
        return value

    def put(self, key: K, value: V) -> V:
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self.limit:
            self._items.popitem(last=False)
        return value

    def setdefault(self, key: K, value: V) -> V:
        """The value already there (a concurrent first turn may have stored it), else `value`."""
        existing = self.get(key)
        return existing if existing is not None else self.put(key, value)

    def __len__(self) -> int:
        return len(self._items)
