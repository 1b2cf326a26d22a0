"""Part 3, editing one file: only that file may be read and embedded again.

(a) A sentence is appended to one file and `mcp-router index scifact --config CONF` runs (no server
    up): its wall time (a process start, the model load, one file's passages), and its summary line,
    whose "embedded N passages of M files" must say one file.
(b) A three-arm server runs on the index (rescanning every `rescan_every_s`); once its indexer has
    finished its first pass, another file gets a sentence, and the resource is read every
    `fast_poll_s` until its `last_refresh` shows that edit: one file changed, one file embedded.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import anyio

from mcp_router.bench.collections.corpus import append_sentence
from mcp_router.bench.collections.params import Params
from mcp_router.bench.collections.progress import progress
from mcp_router.bench.collections.server import Session, started
from mcp_router.bench.collections.setting import ARMS, COLLECTION, Workspace
from mcp_router.bench.collections.watch import Watch, read_once

INDEX_TIMEOUT_S = 600.0
EMBEDDED = re.compile(r"embedded (\d+) passages of (\d+) files")


def index_after_edit(ws: Workspace, path: Path) -> dict[str, Any]:
    """(a): edit `path`, run the index command, time it and read its summary line."""
    append_sentence(path, "before mcp-router index")
    argv = [sys.executable, "-m", "mcp_router", "index", COLLECTION, "--config", str(ws.config(ARMS))]
    started_at = time.perf_counter()
    done = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        env={**os.environ, **ws.env("index")},
        timeout=INDEX_TIMEOUT_S,
        check=False,
    )
    wall = round(time.perf_counter() - started_at, 3)
    ws.log("index").write_text(done.stderr)
    line = next((x for x in done.stdout.splitlines() if x.startswith(f"{COLLECTION}:")), None)
    found = EMBEDDED.search(line or "")
    result = {
        "edited_file": path.name,
        "returncode": done.returncode,
        "wall_s": wall,
        "line": line,
        "passages_embedded": int(found.group(1)) if found else None,
        "files_embedded": int(found.group(2)) if found else None,
    }
    if done.returncode != 0 or found is None:
        result["stderr_tail"] = done.stderr[-2000:]
    progress(f"index after one edit: {wall} s, {line!r}")
    return result


async def live_edit(ws: Workspace, path: Path, params: Params) -> dict[str, Any]:
    """(b): edit `path` under a running server and time until its refresh shows the one file."""
    watch = Watch()
    async with started(ws, ARMS, "live-edit") as session:
        with anyio.move_on_after(params.ready_limit_s) as waited:
            while not settled(await read_once(session, watch)):
                await anyio.sleep(params.fast_poll_s)
        if waited.cancel_called:
            progress(
                f"live edit: the indexer did not settle within {params.ready_limit_s:.0f} s; editing anyway"
            )
        append_sentence(path, "under a running server")
        edited_at, edited_s = time.time(), session.since()
        progress(f"live edit: {path.name} edited {edited_s:.1f} s after spawn; watching its refresh")
        refreshes, seen_s = await refreshes_after(session, watch, edited_at, params)
        entry = watch.last or {}
    refresh = refreshes[-1]["last_refresh"] if refreshes else None
    found = refresh is not None and one_file(refresh)
    built = {view: (entry.get(view) or {}).get("built_at") for view in ("lexical", "dense")}
    after = {
        v: round(at - edited_at, 3) if at is not None and at >= edited_at else None for v, at in built.items()
    }
    result = {
        "edited_file": path.name,
        "rescan_every_s": params.rescan_every_s,
        "settled_before_edit": not waited.cancel_called,
        "seen_after_s": round(seen_s - edited_s, 3) if found and seen_s is not None else None,
        "refreshed_after_s": round(refreshes[-1]["at"] - edited_at, 3) if found else None,
        "last_refresh": refresh,
        "one_file_embedded": found,
        "lexical_built_after_s": after["lexical"],  # the new BM25 view, from the edit
        "dense_built_after_s": after["dense"],
        "dense_rebuilt_after_edit": after["dense"] is not None,
        "refreshes_seen": refreshes,
        "resource_read_errors": watch.read_errors[:5],
    }
    progress(
        f"live edit: seen {result['seen_after_s']} s after the edit (refresh done "
        f"{result['refreshed_after_s']} s after it): {refresh}"
    )
    return result


def settled(entry: dict[str, Any] | None) -> bool:
    """The indexer has finished a pass and rests: an edit now is the next pass's only change."""
    indexing = (entry or {}).get("indexing") or {}
    return indexing.get("phase") == "idle" and indexing.get("last_refresh") is not None


def one_file(refresh: dict[str, Any]) -> bool:
    return refresh.get("changed") == 1 and refresh.get("files_embedded") == 1


async def refreshes_after(
    session: Session, watch: Watch, edited_at: float, params: Params
) -> tuple[list[dict[str, Any]], float | None]:
    """Every refresh the resource showed after the edit, until one took the edited file (or the
    limit); and when that one was first seen, in seconds since the spawn."""
    refreshes: list[dict[str, Any]] = []
    limit = session.since() + params.ready_limit_s
    while session.since() < limit:
        entry = await read_once(session, watch)
        indexing = (entry or {}).get("indexing") or {}
        at, refresh = indexing.get("last_refresh_at"), indexing.get("last_refresh")
        if at is not None and at >= edited_at and (not refreshes or refreshes[-1]["at"] != at):
            refreshes.append({"at": at, "seen_s": round(session.since(), 3), "last_refresh": refresh})
            if refresh is not None and one_file(refresh):
                return refreshes, session.since()
        await anyio.sleep(params.fast_poll_s)
    return refreshes, None
