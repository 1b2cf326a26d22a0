"""This benchmark's progress lines (see `mcp_router.bench.progress`)."""

from mcp_router.bench.progress import Progress

progress = Progress("collections")
restart = progress.restart
