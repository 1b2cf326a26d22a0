"""The work folder and the router configs every server of `bench collections` runs.

One work folder holds the abstracts (`docs/`), the collection's index (`indexes/`, the servers'
`$MCP_ROUTER_INDEX_DIR`), one database per server (`db/`, as `$MCP_ROUTER_DB`: a start-up is not
also a replay of an earlier server's calls), the configs and the servers' logs. Every server of a
run shares the index folder: that is the point, the second start finds the first one's index.

A config names one folder collection and some of the three local arms, LQM routing, the judge off
(it would only add background work) and `[indexing] rescan_every_s`, so a live edit is seen soon.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from mcp_router.bench.overhead.setting import child_env
from mcp_router.bench.toml_config import JUDGE_OFF, render, tool

COLLECTION = "scifact"
ARMS = ("bm25", "dense", "hybrid")  # each arm is named after its type
OWNED = ("docs", "indexes", "db", "logs", "configs")  # what a run may delete in a given --workdir


def config_text(folder: Path, arms: Sequence[str], rescan_every_s: float, timeout_s: float) -> str:
    """The server's config: the folder collection and `arms`, nothing that needs a key or a network."""
    return render(
        {"auto_providers": False},
        [
            (f"[collections.{COLLECTION}]", {"path": str(folder)}),
            *tool(
                "retrieve",
                {"router": "lqm", "max_attempts": len(arms), "timeout_s": timeout_s},
                [{"name": arm, "type": arm} for arm in arms],
            ),
            ("[indexing]", {"rescan_every_s": rescan_every_s}),
            JUDGE_OFF,
        ],
    )


@dataclass(frozen=True)
class Workspace:
    root: Path
    rescan_every_s: float
    timeout_s: float

    @property
    def docs(self) -> Path:
        return self.root / "docs"

    @property
    def indexes(self) -> Path:
        return self.root / "indexes"

    def log(self, name: str) -> Path:
        return self.root / "logs" / f"{name}.log"

    def config(self, arms: Sequence[str]) -> Path:
        """The config file for a server with `arms` (written once per arm set)."""
        path = self.root / "configs" / f"{'-'.join(arms)}.toml"
        if not path.exists():
            path.write_text(config_text(self.docs, arms, self.rescan_every_s, self.timeout_s))
        return path

    def env(self, server: str) -> dict[str, str]:
        """A child's environment: offline models, this run's index folder and a database of its own.
        The SDK's stdio client adds only HOME, PATH and a few more to what is passed here."""
        return {
            **child_env(),
            "PATH": os.environ.get("PATH", ""),
            "MCP_ROUTER_INDEX_DIR": str(self.indexes),
            "MCP_ROUTER_DB": str(self.root / "db" / f"{server}.db"),
        }


@contextlib.contextmanager
def workspace(workdir: str | None, rescan_every_s: float, timeout_s: float) -> Iterator[Workspace]:
    """A fresh work folder: a temp dir removed after, or `workdir`, kept, where only what an earlier
    run of this benchmark made (`OWNED`) is removed first, so the first start meets an empty index."""
    with contextlib.ExitStack() as stack:
        if workdir is None:
            root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="mcp-router-collections-")))
        else:
            root = Path(workdir).expanduser().resolve()
            root.mkdir(parents=True, exist_ok=True)
            for name in OWNED:
                shutil.rmtree(root / name, ignore_errors=True)
        for name in ("indexes", "db", "logs", "configs"):
            (root / name).mkdir()
        yield Workspace(root, rescan_every_s, timeout_s)
