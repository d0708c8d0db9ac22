"""Ctrl-C and the process pools: only the parent process handles it.

At a terminal Ctrl-C sends SIGINT to the whole foreground process group, the pool's worker processes
included. A worker waiting for its next task then dies with its own ``KeyboardInterrupt`` traceback on
stderr (``concurrent/futures/process.py ... call_queue.get``), printed before the parent's one-line
message. Every pool a long command starts (a campaign's symmetry detection, ``csp ingest``'s parsers, the
training graphs, the benchmarks' pools) passes :func:`ignore_sigint` as its ``initializer``: the worker
ignores SIGINT, the parent gets the ``KeyboardInterrupt`` and shuts the pool down (``Pool.__exit__``
terminates its workers; a ``ProcessPoolExecutor`` is shut down with ``cancel_futures=True``, so each worker
finishes the one task it holds and stops: :func:`quiet_executor` does that for a ``pool.map``).

Not among them: the pools whose workers each run whole campaigns (``csp paper``, the active loop's labelling,
``benchmarks/bench_table1_full.py``). There Ctrl-C still reaches every worker, so each campaign records its
own ``interrupted`` state instead of the parent waiting for it to finish.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from typing import Any


def ignore_sigint() -> None:
    """Pool initializer: this worker ignores SIGINT (Ctrl-C at the terminal); its parent handles it."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@contextmanager
def quiet_executor(max_workers: int | None = None, **kwargs: Any) -> Iterator[ProcessPoolExecutor]:
    """A ``ProcessPoolExecutor`` whose workers ignore Ctrl-C (:func:`ignore_sigint`). If the block raises
    (Ctrl-C in the parent), the tasks not yet started are cancelled: the exit waits only for the ones running,
    not for the rest of a ``pool.map``."""
    with ProcessPoolExecutor(max_workers, initializer=ignore_sigint, **kwargs) as pool:
        try:
            yield pool
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)  # waits for the tasks the workers hold, no more
            raise
