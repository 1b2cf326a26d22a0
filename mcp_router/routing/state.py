"""Router state as bytes and back, exactly: what a snapshot stores so a restart need not replay.

Values are JSON with three tagged shapes (arrays as their float64 bytes, deques with their bound,
tuples), compressed. Python's float repr round-trips, so every number comes back bit for bit.
JSON rather than pickle: snapshots live in a database other machines may write to.
"""

from __future__ import annotations

import base64
import json
import zlib
from collections import deque
from typing import Any

import numpy as np


def pack(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        data = np.ascontiguousarray(value, dtype="<f8")
        return {"__nd__": base64.b64encode(data.tobytes()).decode(), "shape": list(value.shape)}
    if isinstance(value, deque):
        return {"__deque__": [pack(v) for v in value], "maxlen": value.maxlen}
    if isinstance(value, tuple):
        return {"__tuple__": [pack(v) for v in value]}
    if isinstance(value, list):
        return [pack(v) for v in value]
    if isinstance(value, dict):
        return {str(k): pack(v) for k, v in value.items()}
    if isinstance(value, np.floating | np.integer):
        return value.item()
    return value


def unpack(value: Any) -> Any:
    if isinstance(value, list):
        return [unpack(v) for v in value]
    if not isinstance(value, dict):
        return value
    if "__nd__" in value:
        data = np.frombuffer(base64.b64decode(value["__nd__"]), dtype="<f8")
        return data.reshape(value["shape"]).astype(np.float64)
    if "__deque__" in value:
        return deque((unpack(v) for v in value["__deque__"]), maxlen=value["maxlen"])
    if "__tuple__" in value:
        return tuple(unpack(v) for v in value["__tuple__"])
    return {k: unpack(v) for k, v in value.items()}


def encode(packed: Any) -> bytes:
    """`pack`ed state as bytes: the slow half, which may run in a thread (it reads only its copy)."""
    return zlib.compress(json.dumps(packed, separators=(",", ":")).encode(), 1)


def dumps(state: dict[str, Any]) -> bytes:
    return encode(pack(state))


def loads(blob: bytes) -> dict[str, Any]:
    return unpack(json.loads(zlib.decompress(blob)))
