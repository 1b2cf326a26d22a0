"""What the figures depend on: cores, Python, package versions, and how busy the machine was.

Other work shares the cores, so the load average is read at the start and at the end of a run and
printed with the table; one figure read on a busy machine is not one read on an idle one.
"""

from __future__ import annotations

import os
import sys
from importlib import metadata
from typing import Any


def machine() -> dict[str, Any]:
    """What the figures depend on, including how busy the machine was (other work shares the cores)."""
    return {
        "cores": os.cpu_count(),
        "python": sys.version.split()[0],
        "mcp": package_version("mcp"),
        "platform": sys.platform,
        "load_average_at_start": load_average(),
    }


def load_average() -> list[float]:
    """The 1, 5 and 15 minute load averages, rounded."""
    return [round(x, 2) for x in os.getloadavg()]


def package_version(package: str) -> str | None:
    """The installed version of `package`, or None if it is not installed."""
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None
