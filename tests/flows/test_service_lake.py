"""One service, one lake (fast checks; the two-homes test with real servers is in
tests/flows/test_service_integration.py)."""

from __future__ import annotations

import pytest

from flows.service import Service, check_same_lake, up, work_pool_for
from flows.settings import WrongLakeError, settings
from tests.flows.test_service_status import WORKER_STAND_IN, stand_in


def test_each_lake_has_its_own_work_pool(tmp_path):
    a, b = tmp_path / "a" / "csp_home", tmp_path / "b" / "csp_home"
    assert work_pool_for(a) != work_pool_for(b)  # same folder name, other path
    assert work_pool_for(a) == work_pool_for(tmp_path / "a" / "." / "csp_home")
    assert work_pool_for(a).startswith("csp-process-csp_home-")


def test_a_run_deployed_for_another_lake_refuses_to_start(tmp_path, monkeypatch):
    monkeypatch.setenv("CSP_HOME", str(tmp_path / "b"))
    monkeypatch.setenv("CSP_SERVICE_LAKE", str(tmp_path / "a"))
    with pytest.raises(WrongLakeError) as caught:
        settings()
    assert str(caught.value).startswith(
        f"This run was deployed for the lake {tmp_path / 'a'}, but its worker"
    )
    monkeypatch.setenv("CSP_SERVICE_LAKE", str(tmp_path / "b" / ".." / "b"))  # the same lake, spelt otherwise
    assert settings().home == tmp_path / "b"


def test_a_service_keeps_the_lake_it_was_made_for(tmp_path, monkeypatch):
    monkeypatch.setenv("CSP_HOME", str(tmp_path / "a"))
    svc = Service(port=1, home=tmp_path / "ph")
    monkeypatch.setenv("CSP_HOME", str(tmp_path / "b"))
    assert svc.lake == tmp_path / "a" and svc.env()["CSP_HOME"] == str(tmp_path / "a")
    assert svc.env()["CSP_WORK_POOL"] == work_pool_for(tmp_path / "a")


def test_up_for_another_lake_beside_a_live_worker_is_refused(tmp_path, request):
    served = Service(port=1, home=tmp_path / "ph", lake=tmp_path / "a")
    served.state_dir.mkdir(parents=True)
    worker = stand_in(served.home, WORKER_STAND_IN)  # a live process stands in for the worker
    request.addfinalizer(lambda: (worker.kill(), worker.wait(), worker.stdout.close()))
    served.worker_pid_file.write_text(f"{worker.pid}\n")
    served.worker_lake_file.write_text(f"{served.lake}\n")
    check_same_lake(served)  # its own lake: fine
    other = Service(port=1, home=tmp_path / "ph", lake=tmp_path / "b")
    with pytest.raises(
        RuntimeError, match=rf"already serves the lake {tmp_path / 'a'}, not {tmp_path / 'b'}"
    ):
        up(other, log=lambda _m: None)


def test_status_names_the_pool_of_the_lake_the_worker_serves(tmp_path, request):
    """Issue 22 follow-up: `csp service status` from a shell with another CSP_HOME printed this shell's pool
    beside the other lake. The pool shown is the served lake's, and the line says the lake is not this shell's."""
    from flows.service import status
    from tests.flows.cli_process import invoke_csp

    served = Service(port=1, home=tmp_path / "ph", lake=tmp_path / "a")
    served.state_dir.mkdir(parents=True)
    worker = stand_in(served.home, WORKER_STAND_IN)  # a live process stands in for the worker
    request.addfinalizer(lambda: (worker.kill(), worker.wait(), worker.stdout.close()))
    served.worker_pid_file.write_text(f"{worker.pid}\n")
    served.worker_lake_file.write_text(f"{served.lake}\n")
    here = Service(port=1, home=tmp_path / "ph", lake=tmp_path / "b")
    seen = status(here)["worker"]
    assert seen["pool"] == work_pool_for(tmp_path / "a") != work_pool_for(tmp_path / "b")
    assert seen["lake"] == str(tmp_path / "a") and seen["other_lake"]
    assert not status(served)["worker"]["other_lake"]
    result = invoke_csp(
        tmp_path / "b", "service", "status", "--port", "1", env={"PREFECT_HOME": str(tmp_path / "ph")}
    )
    assert result.returncode == 1  # no server answers on port 1
    assert (
        f"(pool {work_pool_for(tmp_path / 'a')}, lake {tmp_path / 'a'}, not this shell's CSP_HOME {tmp_path / 'b'}, "
        in result.stdout
    ), result.stdout
