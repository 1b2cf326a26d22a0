"""`mcp-router index [NAME ...]`: build or refresh folder collections' on-disk indexes ahead of time.

The same indexer a server runs in the background, run in the foreground with a progress bar, so the
first server start on a large folder serves every arm at once. Only files that changed since the last
run are read and embedded again. It may run while servers use the collection: the index folder's
lock makes one of them wait, and the servers load the result at their next rescan.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path

from mcp_router.bench.report import ProgressBar
from mcp_router.config import ConfigError, LoadedConfig, with_docs
from mcp_router.serving.runtime import collection_library
from providers.retrieve.collections import Collection, CollectionLibrary
from providers.retrieve.indexer import RefreshReport


def run_index(args: argparse.Namespace, loaded: LoadedConfig) -> int:
    """Index the collections named in `args.names` (a folder's path indexes that folder as `--docs`
    would name it), or every folder collection."""
    folders = [n for n in args.names if Path(n).expanduser().is_dir() and n not in loaded.config.collections]
    try:
        loaded = with_docs(loaded, folders)
    except ConfigError as exc:
        print(f"mcp-router index: {exc}", file=sys.stderr)
        return 2
    library = collection_library(loaded)
    named = [n for n in args.names if n not in folders]
    names = named + list(library.names()[: len(folders)]) if args.names else library.names()
    unknown = [n for n in names if library.get(n) is None]
    if unknown:
        known = ", ".join(library.names()) or "none (add [collections.NAME] path = ... or pass --docs FOLDER)"
        print(
            f"mcp-router index: not a folder collection: {', '.join(unknown)}; known: {known}",
            file=sys.stderr,
        )
        return 2
    for name in names:
        collection = library.get(name)
        assert collection is not None
        report = _index_with_progress(library, collection)
        print(_summary(collection, report))
    return 0


def _index_with_progress(library: CollectionLibrary, collection: Collection) -> RefreshReport:
    """Refresh in a worker thread while this one draws the embedding progress on stderr."""
    outcome: dict[str, RefreshReport | BaseException] = {}

    def work() -> None:
        try:
            outcome["report"] = library.refresh([collection.name])[collection.name]
        except BaseException as exc:  # reported by the caller's thread
            outcome["error"] = exc

    worker = threading.Thread(target=work, name=f"index-{collection.name}")
    worker.start()
    bar: ProgressBar | None = None
    shown = 0
    while worker.is_alive():
        worker.join(0.2)
        progress = collection.progress
        if progress.phase == "embedding" and progress.to_embed and bar is None:
            bar = ProgressBar(progress.to_embed, label=f"{collection.name}: embedding passages")
        if bar is not None and progress.embedded > shown:
            bar.update(progress.embedded - shown)
            shown = progress.embedded
    if bar is not None:
        bar.close()
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return outcome["report"]  # type: ignore[return-value]


def _summary(collection: Collection, report: RefreshReport) -> str:
    where = collection.index_files.folder if collection.index_files else "memory only"
    return (
        f"{collection.name}: {report.files} files, {report.passages} passages; "
        f"{report.changed} new or changed, {report.removed} removed; "
        f"embedded {report.passages_embedded} passages of {report.files_embedded} files; "
        f"BM25 {'rebuilt' if report.lexical_rebuilt else 'unchanged'}; "
        f"{report.seconds:.1f} s ({time.strftime('%H:%M:%S')}); index: {where}"
    )
