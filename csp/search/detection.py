"""The detected ``spacegroup`` / ``crystal_system`` / ``wyckoff`` columns of the search's rows, off the
scoring path.

Every candidate row carries the space group spglib detects at the one tolerance
(:func:`csp.structures.symmetry.detect`). spglib needs 2-15 ms of CPU per cell here (most for cubic cells:
its symmetry search, not the Python around it), which made detection about 70% of a default campaign's
search. No optimizer reads these columns, so a :class:`RowDetector` fills them in while the search goes
on: with ``workers >= 1`` each scored batch is sent to one of ``workers`` processes (one spglib call per row, the
same call and arguments as inline, so the same values) and the rows are completed by :meth:`resolve`
before they are written. With ``workers = 0`` (or if the worker process fails) it detects inline.
"""

from __future__ import annotations

import os
from concurrent.futures import BrokenExecutor, CancelledError, Executor, Future
from typing import Any

import numpy as np

from csp.structures.symmetry import detect_many

#: environment variable overriding the number of detection processes (0: detect inline)
WORKERS_ENV = "CSP_SYMMETRY_WORKERS"
#: campaigns planning fewer candidates than this detect inline (starting a process costs ~0.3 s)
MIN_CANDIDATES_FOR_WORKER = 2000
#: most detection processes started by default
MAX_WORKERS = 4


def default_workers(planned_candidates: int) -> int:
    """Detection processes for a search of ``planned_candidates`` rows: ``CSP_SYMMETRY_WORKERS`` when set,
    else one per CPU (at most :data:`MAX_WORKERS`) on a machine with 2+ CPUs and a search of at least
    :data:`MIN_CANDIDATES_FOR_WORKER` rows, else 0. One process is not enough on 2 cores: spglib then needs
    more time than the rest of the search, so it alone sets the pace. A process told to use one thread
    (``OMP_NUM_THREADS=1``, as the parallel pools of the paper report and the Table 1 benchmarks set) gets 0."""
    env = os.environ.get(WORKERS_ENV, "").strip()
    if env:
        try:
            return max(0, int(env))
        except ValueError:
            return 0
    if os.environ.get("OMP_NUM_THREADS", "").strip() == "1":
        return 0  # one process of a parallel pool (the paper report's): the pool is the parallelism
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return min(cpus, MAX_WORKERS) if cpus >= 2 and planned_candidates >= MIN_CANDIDATES_FOR_WORKER else 0


def columns(found: tuple[int, str] | None) -> dict[str, Any]:
    """The three row columns of one :func:`csp.structures.symmetry.detect` result (all None for None)."""
    from csp.search.generate import crystal_system_of

    if found is None:
        return {"spacegroup": None, "crystal_system": None, "wyckoff": None}
    return {"spacegroup": found[0], "crystal_system": crystal_system_of(found[0]), "wyckoff": found[1]}


class RowDetector:
    """Fills the detected columns of row batches, in a worker process when ``workers >= 1``.

    Use as a context manager (the worker process is stopped on exit). :meth:`add` takes a batch of rows
    and its cells; :meth:`resolve` blocks until every added row has its columns.
    """

    def __init__(self, workers: int = 0) -> None:
        self.workers = max(0, int(workers))
        self._pool: Executor | None = None
        self._waiting: list[tuple[list[dict[str, Any]], tuple[np.ndarray, ...], Future | None]] = []

    def __enter__(self) -> RowDetector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _executor(self) -> Executor | None:
        if self._pool is None and self.workers > 0:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            from csp.pool_workers import ignore_sigint

            # spawn: the parent holds onnxruntime and torch threads, which fork would copy mid-flight;
            # the workers ignore Ctrl-C: the campaign (the parent) alone reports it, in one line
            context = multiprocessing.get_context("spawn")
            self._pool = ProcessPoolExecutor(
                max_workers=self.workers, mp_context=context, initializer=ignore_sigint
            )
        return self._pool

    def add(self, rows: list[dict[str, Any]], lattices: Any, numbers: Any, frac_coords: Any) -> None:
        """Detect the cells of ``rows`` (lattices (B, 3, 3), numbers (n,), frac_coords (B, n, 3)); the rows
        get their columns now (inline) or at :meth:`resolve`."""
        cells = (
            np.ascontiguousarray(lattices, dtype=np.float64),
            np.ascontiguousarray(numbers, dtype=np.int64),
            np.ascontiguousarray(frac_coords, dtype=np.float64),
        )
        pool = self._executor()
        future = None
        if pool is not None:
            try:
                future = pool.submit(detect_many, *cells)
            except (BrokenExecutor, RuntimeError, OSError):  # a broken pool: detect inline from now on
                self._stop()
        if future is None:
            _fill(rows, detect_many(*cells))
        else:
            self._waiting.append((rows, cells, future))

    def resolve(self) -> None:
        """Wait for every added batch and fill its rows."""
        waiting, self._waiting = self._waiting, []
        # the caller would only wait: it detects the batches no worker has started, newest first
        inline = set()
        # (not on a broken pool, whose own thread then fails the futures: cancelling them races with it)
        healthy = self._pool is not None and not getattr(self._pool, "_broken", False)
        for i in reversed(range(len(waiting)) if healthy else ()):
            rows, cells, future = waiting[i]
            if future is not None and future.cancel():
                _fill(rows, detect_many(*cells))
                inline.add(i)
        for i, (rows, cells, future) in enumerate(waiting):
            if i in inline:
                continue
            try:
                found = future.result() if future is not None else detect_many(*cells)
            except (BrokenExecutor, CancelledError, OSError):  # the worker died: the same call, inline
                self._stop()
                found = detect_many(*cells)
            _fill(rows, found)

    def _stop(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
        self._pool, self.workers = None, 0

    def close(self) -> None:
        """Stop the worker process; rows not yet resolved keep the columns they had."""
        self._waiting = []
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


def _fill(rows: list[dict[str, Any]], found: list[tuple[int, str] | None]) -> None:
    for row, item in zip(rows, found, strict=True):
        row.update(columns(item))
