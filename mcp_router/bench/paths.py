"""Where the benchmark data and caches live. Data is read in place, never copied into the repo."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from pathlib import Path

import mcp_router

REPO_ROOT = Path(mcp_router.__file__).resolve().parent.parent


def data_dir() -> Path:
    """`$MCP_ROUTER_DATA`, else `../shared/data` from the working directory, else the repo root's
    sibling `shared/data` (found through the package location)."""
    env = os.environ.get("MCP_ROUTER_DATA")
    if env:
        path = Path(env).expanduser().resolve()
        if not path.is_dir():
            raise FileNotFoundError(f"MCP_ROUTER_DATA={env!r} is not a directory")
        return path
    for candidate in (Path.cwd() / ".." / "shared" / "data", REPO_ROOT.parent / "shared" / "data"):
        if candidate.is_dir():
            return candidate.resolve()
    raise FileNotFoundError(
        "benchmark data not found: set MCP_ROUTER_DATA, or put it at ../shared/data next to the repo"
    )


def cache_dir() -> Path:
    """`$MCP_ROUTER_BENCH_CACHE`, else `~/.cache/mcp-router/bench/`."""
    env = os.environ.get("MCP_ROUTER_BENCH_CACHE")
    path = Path(env).expanduser() if env else Path.home() / ".cache" / "mcp-router" / "bench"
    path.mkdir(parents=True, exist_ok=True)
    return path


def content_hash(files: Iterable[Path], *extra: str) -> str:
    """sha256 over the files' bytes (in the given order) and extra strings; 16 hex digits."""
    digest = hashlib.sha256()
    for file in files:
        digest.update(file.name.encode())
        with open(file, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    for text in extra:
        digest.update(text.encode())
    return digest.hexdigest()[:16]
