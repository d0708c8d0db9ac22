"""The processes of the local service (:mod:`flows.service`): pid files that can be trusted, the port probe,
stopping, and the lake a flow run's worker was started for.

A pid file outlives its process: after a crash or a reboot the number it holds can name any other program.
Before a pid is reported as this home's server or worker, or signalled, :func:`verify` checks that the live
process is one (its command line is the Prefect server's or worker's, its ``PREFECT_HOME`` is this home's) and
that it started when the process recorded beside the pid did (``/proc/<pid>/stat`` field 22, written by
:func:`record_start` when ``csp service up`` started it). A pid that fails is a stale pid file: it is removed,
never signalled.

Only the standard library: :mod:`flows.settings` imports :func:`worker_lake_of_ancestors`.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

SERVER_ARGS = (b"uvicorn", b"prefect.server.api.server:create_app")  # `prefect server start --background`
WORKER_ARGS = (b"prefect", b"worker", b"start")  # `prefect worker start --pool ...`


#: Linux's largest possible pid (PID_MAX_LIMIT); a pid file naming a number beyond it is corrupt
PID_MAX = 4_194_304


def read_pid(path: Path) -> int | None:
    """The pid a pid file names, or None for no file, no number, or one no process can have (0, negative,
    beyond :data:`PID_MAX`: signalling it would fail or overflow)."""
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    if not text.isascii() or not text.isdigit() or len(text) > 7:
        return None
    pid = int(text)
    return pid if 0 < pid <= PID_MAX else None


def alive(pid: int | None) -> bool:
    if pid is None or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process: it exists
    # a zombie child of this process counts as gone
    with contextlib.suppress(ChildProcessError):
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    return True


def start_time(pid: int) -> str | None:
    """When ``pid`` started (clock ticks after boot, ``/proc/<pid>/stat`` field 22), or None."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rfind(")") + 2 :].split()  # the command name in (...) may hold spaces
    return fields[19] if len(fields) > 19 else None  # field 22 counted from the pid (1) and name (2)


def start_file(pid_file: Path) -> Path:
    """Where the start time of the process a pid file names is kept (``server.pid`` -> ``server.pid.start``)."""
    return pid_file.with_name(pid_file.name + ".start")


def record_start(pid_file: Path, pid: int) -> None:
    """Keep ``pid``'s start time beside ``pid_file`` (the pid file itself stays one integer, as Prefect's)."""
    found = start_time(pid)
    if found is not None:
        start_file(pid_file).write_text(f"{found}\n")


def cmdline_of(pid: int) -> list[bytes] | None:
    """The command line of the live process ``pid`` (``/proc/<pid>/cmdline``, split at NUL), or None."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return None


def _environ(pid: int) -> dict[str, str] | None:
    """The environment ``pid`` was started with (``/proc/<pid>/environ``), or None if unreadable."""
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return None
    pairs = (item.split(b"=", 1) for item in raw.split(b"\0") if b"=" in item)
    return {k.decode(errors="replace"): v.decode(errors="replace") for k, v in pairs}


def _same_path(a: str | None, b: Path) -> bool:
    return bool(a) and Path(a).expanduser().resolve() == b.expanduser().resolve()


def verify(pid_file: Path, args: tuple[bytes, ...], home: Path) -> tuple[int | None, str]:
    """What the pid file names: ``(pid, "ours")`` for a live process of this home, ``(pid, "gone")`` for a
    dead one, ``(pid, "stale")`` for another program (wrong command line, another ``PREFECT_HOME``, or a
    start time other than the recorded one), ``(None, "none")`` without a pid file or with one naming no pid
    (:func:`read_pid`); a file of such garbage (not blank: one being written may be empty for a moment) is
    removed, since it names no process to signal or report."""
    pid = read_pid(pid_file)
    if pid is None:
        with contextlib.suppress(OSError):
            if pid_file.read_bytes().strip():
                forget(pid_file)
        return None, "none"
    if not alive(pid):
        return pid, "gone"
    cmdline, environ = cmdline_of(pid), _environ(pid)
    if cmdline is None or environ is None or not all(arg in cmdline for arg in args):
        return pid, "stale"
    if not _same_path(environ.get("PREFECT_HOME"), home):
        return pid, "stale"
    with contextlib.suppress(OSError):
        recorded = start_file(pid_file).read_text().strip()
        if recorded != start_time(pid):
            return pid, "stale"
    return pid, "ours"


def stale_message(pid: int) -> str:
    return f"stale pid file (pid {pid} is another program)"


def forget(pid_file: Path) -> None:
    """Remove a pid file and its start time (never signalling the process it named)."""
    pid_file.unlink(missing_ok=True)
    start_file(pid_file).unlink(missing_ok=True)


def wait_gone(pid: int, timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if not alive(pid):
            return True
        time.sleep(0.2)
    return not alive(pid)


def stop_pid(pid: int, *, signals: int = 2, grace: float = 20.0) -> None:
    """SIGTERM (a Prefect worker needs a second one to stop), then SIGKILL if it is still there."""
    for i in range(signals):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        if wait_gone(pid, 1.5 if i < signals - 1 else grace):
            return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    wait_gone(pid, 5.0)


def check_port(port: int, default: int = 4200) -> None:
    """Raise ``RuntimeError`` unless ``port`` is a TCP port free on 127.0.0.1 (checked before starting).

    The probe binds with ``SO_REUSEADDR``, as uvicorn does: only a listening socket makes a port taken, not
    the TIME-WAIT sockets a stopped server leaves for a minute."""
    import socket

    if not 1 <= port <= 65535:
        raise RuntimeError(f"Port {port} is not a TCP port; give one from 1 to 65535 (default {default}).")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError as exc:
            raise RuntimeError(
                f"Port {port} on 127.0.0.1 is taken ({exc.strerror}); choose another --port."
            ) from exc


def _parent(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rfind(")") + 2 :].split()
    return int(fields[1]) if len(fields) > 1 and fields[1].isdigit() else None


def worker_lake_of_ancestors(pid: int | None = None, depth: int = 8) -> Path | None:
    """The lake (``CSP_HOME``) that the nearest ``prefect worker start`` process above ``pid`` (default this
    process) was started with, read from its ``/proc/<pid>/environ``; None when no worker is an ancestor or
    it had no ``CSP_HOME``.

    A flow run's own environment is the worker's plus the run's job variables, so a submitter can set any
    ``CSP_HOME`` and ``CSP_SERVICE_LAKE`` there; the environment the worker itself started with they cannot.
    """
    current = os.getpid() if pid is None else pid
    for _ in range(depth):
        current = _parent(current)
        if current is None or current <= 1:
            return None
        cmdline = cmdline_of(current) or []
        if all(arg in cmdline for arg in WORKER_ARGS):
            home = (_environ(current) or {}).get("CSP_HOME")
            return Path(home).expanduser().resolve() if home else None
    return None
