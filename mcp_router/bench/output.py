"""What every benchmark does with its report: the table on stdout, all figures as JSON if asked."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any


def quiet_clients() -> None:
    """The benchmark process's own MCP clients log one line per call; the run's progress is enough."""
    logging.getLogger("httpx2").setLevel(logging.WARNING)


def publish(
    table: str, report: dict[str, Any], json_path: str | None, progress: Callable[[str], None]
) -> None:
    print(table)
    if json_path:
        Path(json_path).write_text(json.dumps(report, indent=2) + "\n")
        progress(f"wrote {json_path}")
