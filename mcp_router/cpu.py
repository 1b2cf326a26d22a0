"""CPU sharing for torch work: the server, the benchmarks and training run on the same few cores."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run torch on `n` intra-op threads inside the block and restore the caller's setting after, so
    a fit or a timed measurement never leaves the process with a changed thread count."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)
