"""`mcp-router db prune | vacuum`: keep the router database bounded, by hand or from cron.

`prune` applies the retention policy (the config's `[retention]`, or `--days` / `--calls`) now, as a
running server does every `prune_every_s`; it may run while servers use the database (it deletes in
short transactions). Pruning frees pages inside the file without shrinking it; `vacuum` gives them
back to the file system (SQLite) or to the table's free space map (PostgreSQL).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from mcp_router.config import LoadedConfig
from mcp_router.store import Store
from mcp_router.store.retention import checkpoint, prune, vacuum


def run_db(args: argparse.Namespace, loaded: LoadedConfig, database: Path | str) -> int:
    store = Store(database)
    try:
        if args.db_command == "prune":
            _prune(args, loaded, store)
        else:
            _vacuum(store)
    finally:
        store.close()
    return 0


def _prune(args: argparse.Namespace, loaded: LoadedConfig, store: Store) -> None:
    policy = loaded.config.retention.policy(max_age_days=args.days, max_calls=args.calls)
    before = _file_bytes(store)
    report = prune(store, policy, time.time())
    checkpoint(store)
    print(f"database: {store.display}")
    print(f"policy: {policy.describe()}")
    if policy.max_age_days is None and policy.max_calls is None:
        print("(no call limit: set [retention] max_age_days or max_calls, or pass --days or --calls)")
    for table, n in report.removed.items():
        print(f"  {table:<18}{n:>10} removed")
    print(f"in {report.seconds:.2f} s, {report.batches} write transactions")
    if before is not None:
        print(
            f"file: {_mb(before)} -> {_mb(_file_bytes(store))} (`mcp-router db vacuum` returns freed space)"
        )


def _vacuum(store: Store) -> None:
    before = _file_bytes(store)
    started = time.monotonic()
    vacuum(store)
    print(f"database: {store.display}")
    print(f"vacuumed in {time.monotonic() - started:.2f} s")
    if before is not None:
        print(f"file: {_mb(before)} -> {_mb(_file_bytes(store))}")


def _file_bytes(store: Store) -> int | None:
    """The SQLite file and its WAL, or None for a database that is not a file."""
    if store.path is None or not store.on_disk:
        return None
    files = (store.path, Path(f"{store.path}-wal"))
    return sum(f.stat().st_size for f in files if f.exists())


def _mb(size: int) -> str:
    return f"{size / 1e6:.2f} MB"
