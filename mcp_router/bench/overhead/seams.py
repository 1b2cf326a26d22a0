"""The bench's only ways into the serving code: the server, its store and MTRouter's model log.

Every measurement goes through what `mcp-router serve` builds (`create_server`, `model_planner`, the
`Store`), never a re-assembly of it, so the figures are the server's. Keeping these few calls in one
module shows at a glance what of the serving code the bench depends on.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mcp_router.config import load_config
from mcp_router.serving import runtime
from mcp_router.serving.server import create_server
from mcp_router.store import Store
from mcp_router.store.model_log import ModelLog


def router_server(config: Path, db: Path) -> Any:
    """`create_server(load_config(config), db)`: exactly what `mcp-router serve` runs."""
    return create_server(load_config(config), db)


@contextlib.contextmanager
def open_store(db: Path) -> Iterator[Store]:
    """The server's `Store` over `db`, closed after."""
    store = Store(db)
    try:
        yield store
    finally:
        store.close()


def promote_checkpoint(db: Path, row: dict[str, Any]) -> None:
    """Register `row` as the promoted checkpoint of `db`, as `mcp-router train --from-db` does."""
    with open_store(db) as store:
        log = ModelLog(store)
        log.register_checkpoint({**row, "status": "candidate"})
        log.promote(row["checkpoint_id"])


@contextlib.contextmanager
def server_model_router(config: Path, db: Path) -> Iterator[Any]:
    """The `ModelRouter` the server builds (`runtime.model_router`): its pool, parameters, MiniLM
    loader, and its database as checkpoint registry and embedding cache."""
    with open_store(db) as store:
        router = runtime.model_router(load_config(config), store)
        if router is None:
            raise RuntimeError("the bench config has no MTRouter pool")
        yield router
