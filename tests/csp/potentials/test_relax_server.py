"""The relaxation server (csp.potentials.relax_server): many clients, one process that owns the potential.

Fast tests serve a toy potential (tests/csp/potentials/toy_potentials.py) to client threads; the slow test
serves CHGNet on the CPU to three client processes at once and compares with the direct batched path.
"""

from __future__ import annotations

import os
import signal
import threading
import time

import numpy as np
import pytest

from csp.potentials.batched import relax_batched
from csp.potentials.relax_server import (
    ENV_VAR,
    RelaxServer,
    RelaxServerError,
    RemotePotential,
    configured,
    connect,
    remote_potential,
)
from csp.potentials.relaxer import RelaxJob, relax
from csp.structures.crystal import Crystal
from tests.csp.potentials.toy_potentials import VolumeSpring

SPRING = "tests.csp.potentials.toy_potentials:spring"
SLOW_SPRING = "tests.csp.potentials.toy_potentials:slow_spring"
FIX_SYMPREC = 0.01
#: CHGNet relaxed through the server and directly (same batched code, other batch-mates): energies agree
#: to this (eV/atom); the float32 model sees other batch compositions, nothing else differs.
CHGNET_TOLERANCE = 1e-4


def cubic(a: float) -> Crystal:
    return Crystal(np.eye(3) * a, [12, 8], [[0, 0, 0], [0.5, 0.5, 0.5]])


@pytest.fixture(scope="module")
def toy_server():
    with RelaxServer(SPRING, "cpu", heartbeat_s=0.5) as address:
        yield address


def _by_payload(items):
    return {r.job.payload: r for r in items}


def test_clients_at_once_get_the_direct_answers(toy_server):
    """Three clients (threads, one connection each) share the server's pool; each gets what the direct batched
    path gives its own jobs, a NaN structure ends ``failed`` for its client only, and jobs returned by
    ``on_result`` join the same request."""
    lists = {
        "a": [RelaxJob(cubic(a), 200, f"a{a}") for a in (2.6, 2.8, 1.5)],
        "b": [RelaxJob(cubic(a), 200, f"b{a}") for a in (3.1, 3.3)] + [RelaxJob(cubic(2.9), 0, "b-single")],
        "c": [RelaxJob(cubic(a), 150, f"c{a}") for a in (2.7, 3.0, 3.2, 3.4)],
    }
    got, errors = {}, []

    def again(item):
        return [RelaxJob(item.crystal, 10, "c-again")] if item.job.payload == "c3.0" else None

    def client(name):
        try:
            pot = RemotePotential(toy_server, SPRING, timeout_s=20)
            kw = {"on_result": again} if name == "c" else {}
            got[name] = _by_payload(relax(pot, lists[name], fmax=1e-3, symprec=FIX_SYMPREC, **kw))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=client, args=(n,)) for n in lists]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    for name, jobs in lists.items():
        direct = _by_payload(relax_batched(VolumeSpring(), jobs, fmax=1e-3, symprec=FIX_SYMPREC))
        served = got[name]
        assert set(served) - {"c-again"} == set(direct)
        for key, r in direct.items():
            s = served[key]
            assert (s.state, s.steps) == (r.state, r.steps), key
            assert s.job is next(j for j in jobs if j.payload == key)  # the caller's own job back
            if r.state != "failed":
                assert s.energy == pytest.approx(r.energy, abs=1e-12)
                np.testing.assert_allclose(s.crystal.lattice, r.crystal.lattice, atol=1e-9)
    assert got["a"]["a1.5"].state == "failed"
    assert got["b"]["b-single"].state == "unrelaxed"
    assert got["c"]["c-again"].state == "relaxed"


def test_a_bad_structure_fails_its_own_request_only(toy_server):
    from multiprocessing.connection import Client

    settings = {"potential": SPRING, "fmax": 1e-3, "symprec": FIX_SYMPREC, "collapse_ratio": None,
                "explode_ratio": None, "frame_every": 0}  # fmt: skip
    good = cubic(2.8)
    bad = (np.full((3, 3), np.nan), np.array([12, 8]), good.frac_coords, 50)
    conn = Client((toy_server.host, toy_server.port), authkey=toy_server.authkey)
    try:
        conn.send(("relax", settings, [(good.lattice, good.numbers, good.frac_coords, 50), bad], None))
        reply = conn.recv()
        while reply[0] == "alive":
            reply = conn.recv()
        assert reply[0] == "error" and "structure 1 is not a valid crystal" in reply[1]
        assert "NaN" in reply[1]
    finally:
        conn.close()
    # the server goes on serving everyone else
    pot = RemotePotential(toy_server, SPRING, timeout_s=20)
    (item,) = relax(pot, [RelaxJob(good, 200, "ok")], fmax=1e-3, symprec=FIX_SYMPREC)
    assert item.state == "relaxed"


def test_deadline_and_unknown_settings(toy_server):
    pot = RemotePotential(toy_server, SPRING, timeout_s=20)
    jobs = [RelaxJob(cubic(2.6), 200, "late")]
    # a deadline already passed: nothing joins, as on the direct path
    assert relax(pot, jobs, fmax=1e-3, deadline=time.monotonic() - 1) == []
    assert relax_batched(VolumeSpring(), jobs, fmax=1e-3, deadline=time.monotonic() - 1) == []
    with pytest.raises(RelaxServerError, match="Unknown potential"):
        relax(RemotePotential(toy_server, "nosuch", timeout_s=20), jobs, fmax=1e-3)
    from csp.errors import InputError

    with pytest.raises(InputError, match="batched engine only"):
        relax(pot, jobs, engine="ase")


def test_connecting_routes_get_potential_and_skips_the_device_check(toy_server):
    from csp.potentials.refine import get_potential
    from csp.search.parameters import check_torch_device

    assert configured() is None and remote_potential("chgnet") is None
    connect(toy_server)
    try:
        pot = get_potential(SPRING, "cuda")  # never loaded here: the server owns it
        assert isinstance(pot, RemotePotential) and pot.name == "volume-spring"
        assert os.environ[ENV_VAR] == f"127.0.0.1:{toy_server.port}"
        check_torch_device("cuda")  # the server's device, not this process's business
        assert "authkey" not in repr(toy_server) and str(toy_server.authkey) not in repr(toy_server)
    finally:
        connect(None)
    assert ENV_VAR not in os.environ and configured() is None


def test_a_server_that_cannot_start_says_why():
    with pytest.raises(RelaxServerError, match=r"did not start.*Unknown potential"):
        RelaxServer("nosuch", "cpu", start_timeout_s=60).start()


@pytest.mark.slow
def test_a_dead_or_hung_server_gives_a_clear_error_not_a_hang():
    server = RelaxServer(SLOW_SPRING, "cpu", heartbeat_s=0.5)
    address = server.start()
    pid = server.process.pid
    long_job = [RelaxJob(cubic(2.6), 100000, "long")]
    try:
        # hung (stopped): the client hears nothing, not even a heartbeat, and gives up after its timeout
        pot = RemotePotential(address, SLOW_SPRING, timeout_s=2)
        timer = threading.Timer(1.0, os.kill, (pid, signal.SIGSTOP))
        timer.start()
        t0 = time.monotonic()
        with pytest.raises(RelaxServerError, match="sent nothing for 2 s"):
            relax(pot, long_job, fmax=1e-9)
        assert time.monotonic() - t0 < 15
        os.kill(pid, signal.SIGCONT)
        # killed mid-request: the connection drops
        threading.Timer(1.0, os.kill, (pid, signal.SIGKILL)).start()
        t0 = time.monotonic()
        with pytest.raises(RelaxServerError, match=r"closed the connection|went away"):
            relax(RemotePotential(address, SLOW_SPRING, timeout_s=30), long_job, fmax=1e-9)
        assert time.monotonic() - t0 < 15
        # and a later call finds nobody
        with pytest.raises(RelaxServerError, match="No relaxation server answers"):
            relax(RemotePotential(address, SLOW_SPRING, timeout_s=5), long_job, fmax=1e-9)
    finally:
        os.kill(pid, signal.SIGCONT) if server.process.is_alive() else None
        server.stop()
    assert server.process is None


# ---------------------------------------------------------------------------- CHGNet, three processes
def _client_run(names):
    """In a client process: relax the named structures of the relax set through the configured server."""
    from csp.potentials.refine import get_potential
    from tests.csp.potentials.relax_set import structures

    crystals = structures()
    pot = get_potential("chgnet", "cuda")  # a RemotePotential: the device is the server's
    assert type(pot).__name__ == "RemotePotential"
    done = relax(pot, [RelaxJob(crystals[n], 40, n) for n in names], **_CHGNET_SETTINGS)
    return {r.job.payload: (r.state, r.energy, r.steps, r.crystal.lattice, r.crystal.numbers,
                            r.crystal.frac_coords) for r in done}  # fmt: skip


_CHGNET_SETTINGS = {"fmax": 0.05, "symprec": FIX_SYMPREC, "collapse_ratio": 0.6, "explode_ratio": 2.0}
_GROUPS = [
    ["MgO-rocksalt-primitive-squeezed", "CsCl-stretched"],
    ["GaAs-zincblende-primitive"],
    ["ZnO-wurtzite", "MgO-triclinic"],
]


@pytest.mark.slow
def test_chgnet_through_the_server_matches_the_direct_batched_path():
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    import torch

    from csp.potentials.relaxer import load_potential
    from csp.structures.symmetry import spacegroup_number
    from tests.csp.potentials.relax_set import structures

    crystals = structures()
    with (
        RelaxServer("chgnet", "cpu", threads=1) as address,
        ProcessPoolExecutor(
            3, mp_context=mp.get_context("spawn"), initializer=connect, initargs=(address,)
        ) as pool,  # fmt: skip
    ):
        served = {}
        for part in pool.map(_client_run, _GROUPS):
            served.update(part)
    torch.set_num_threads(1)
    names = [n for group in _GROUPS for n in group]
    direct = _by_payload(
        relax(
            load_potential("chgnet", "cpu"), [RelaxJob(crystals[n], 40, n) for n in names], **_CHGNET_SETTINGS
        )
    )
    assert set(served) == set(names)
    for name in names:
        state, energy, _steps, lattice, numbers, frac = served[name]
        assert state == direct[name].state, name
        assert abs(energy - direct[name].energy) < CHGNET_TOLERANCE, name
        sg = spacegroup_number(Crystal(lattice, numbers, frac), FIX_SYMPREC)
        assert sg == spacegroup_number(direct[name].crystal, FIX_SYMPREC), name
