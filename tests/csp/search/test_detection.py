"""The rows' detected space groups are the same whether a worker process or the search detects them."""

import numpy as np
import pytest

from csp.search.detection import RowDetector, default_workers
from csp.search.generate import build_template, enumerate_families, sample_valid, space_groups
from csp.search.two_stage import InMemorySink, detected_columns, run_search
from csp.structures.composition import parse_composition
from tests.csp.search.test_two_stage import LennardJonesStandInScorer, config


def _batches():
    comp = parse_composition("GaAs")
    families = enumerate_families(comp, [1, 2, 4], space_groups("fixed", "cubic"), np.random.default_rng(0))
    rng = np.random.default_rng(1)
    for fam in families[:: max(1, len(families) // 6)]:
        tpl = build_template(fam)
        u = sample_valid(tpl, 12, rng)[0]
        yield tpl.build(u)


@pytest.mark.slow
def test_worker_detection_equals_inline_detection():
    batches = list(_batches())
    want = [
        [
            detected_columns(batch.lattices[b], batch.numbers, batch.frac_coords[b])
            for b in range(len(batch.lattices))
        ]
        for batch in batches
    ]
    for workers in (0, 1, 2):
        got = [[{"spacegroup": -1} for _ in range(len(batch.lattices))] for batch in batches]
        with RowDetector(workers) as detector:
            for rows, batch in zip(got, batches, strict=True):
                detector.add(rows, batch.lattices, batch.numbers, batch.frac_coords)
            detector.resolve()  # the caller detects the batches no worker has started yet
        assert got == want


def test_a_dead_worker_falls_back_to_inline_detection():
    batches = list(_batches())
    got = [[{} for _ in range(len(batch.lattices))] for batch in batches]
    with RowDetector(1) as detector:
        detector.add(got[0], batches[0].lattices, batches[0].numbers, batches[0].frac_coords)
        for process in list(detector._pool._processes.values()):
            process.kill()
            process.join()
        for rows, batch in zip(got[1:], batches[1:], strict=True):
            detector.add(rows, batch.lattices, batch.numbers, batch.frac_coords)
        detector.resolve()
    assert all(set(row) == {"spacegroup", "crystal_system", "wyckoff"} for rows in got for row in rows)


@pytest.mark.slow
def test_search_rows_are_the_same_with_a_detection_worker():
    a, b = InMemorySink(), InMemorySink()
    run_search("MgO", config(), LennardJonesStandInScorer(), a, campaign_id="x", symmetry_workers=0)
    run_search("MgO", config(), LennardJonesStandInScorer(), b, campaign_id="x", symmetry_workers=1)
    strip = [{k: v for k, v in r.items() if k != "seconds"} for r in a.rows]
    assert strip == [{k: v for k, v in r.items() if k != "seconds"} for r in b.rows]
    assert all(r["spacegroup"] is None or 1 <= r["spacegroup"] <= 230 for r in b.rows)


def test_default_workers(monkeypatch):
    monkeypatch.setenv("CSP_SYMMETRY_WORKERS", "0")
    assert default_workers(10**6) == 0
    monkeypatch.setenv("CSP_SYMMETRY_WORKERS", "2")
    assert default_workers(10) == 2
    monkeypatch.delenv("CSP_SYMMETRY_WORKERS")
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert default_workers(10) == 0  # a small search detects inline
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {0, 1})
    assert default_workers(10**5) == 2
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # a process of a parallel pool
    assert default_workers(10**5) == 0


def test_detection_workers_leave_ctrl_c_to_the_parent():
    """Fault F3: Ctrl-C at a terminal reaches the whole process group; an idle detection worker that took it
    printed its own KeyboardInterrupt traceback. The workers ignore SIGINT; the campaign handles it."""
    import signal

    with RowDetector(1) as detector:
        pool = detector._executor()
        assert pool.submit(signal.getsignal, signal.SIGINT).result(timeout=60) == signal.SIG_IGN
    assert signal.getsignal(signal.SIGINT) == signal.default_int_handler  # the parent's own is untouched
