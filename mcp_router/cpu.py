"""CPU sharing: the server, the benchmarks and training run on the same few cores."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from typing import Any

_BLAS_THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


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


def one_blas_thread() -> None:
    """Run numpy's BLAS on one thread for the rest of this process (the server's).

    The server's numpy work is small and concurrent: a query's MiniLM pass on the dense arm's call,
    the local judge's pass over five results in a worker thread, a small indexing job. Each matrix
    product is too small to gain from a second BLAS thread, and OpenBLAS's threads, spinning for
    work while another thread's product runs, made a dense query take ~1 s instead of ~25 ms while
    the local judge worked beside it on 2 cores (12 ms alone either way). Large indexing jobs run in
    torch, whose threads this does not touch."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1, user_api="blas")


@contextlib.contextmanager
def worker_processes(
    workers: int, initializer: Callable[..., None] | None = None, initargs: tuple[Any, ...] = ()
) -> Iterator[ProcessPoolExecutor]:
    """A pool of `workers` spawned processes, each with one BLAS thread: the workers are the
    parallelism, and two-thread BLAS in each of two workers would oversubscribe two cores. Spawn, not
    fork, because the parent may hold torch's thread pools, which do not survive a fork. The pool
    starts its workers as jobs arrive, so the one-thread environment holds for the whole block."""
    saved = {name: os.environ.get(name) for name in _BLAS_THREAD_VARIABLES}
    os.environ.update({name: "1" for name in saved})
    try:
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(
            workers, mp_context=context, initializer=initializer, initargs=initargs
        ) as pool:
            yield pool
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
