"""The command line as a user runs it: ``python -m flows.cli`` in a subprocess against a given lake, or
in this process (:func:`invoke_csp`) for requests that are refused before any work; and a free loopback
port for the services the tests start."""

from __future__ import annotations

import functools
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def csp(home: Path, *args: str, env: dict[str, str] | None = None, **kwargs) -> subprocess.Popen:
    """Start ``csp ARGS`` with ``CSP_HOME=home`` (one thread, wide output, warnings off)."""
    full = dict(os.environ, CSP_HOME=str(home), PYTHONWARNINGS="ignore", COLUMNS="200", CSP_THREADS="1")
    full.update(env or {})
    return subprocess.Popen(
        [sys.executable, "-m", "flows.cli", *args],
        cwd=REPO,
        env=full,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        # Ctrl-C as at a terminal, whatever the caller's shell did: a job started with `&` in a
        # non-interactive shell ignores SIGINT, and an ignored signal stays ignored in every child
        preexec_fn=_default_sigint,
        **kwargs,
    )


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def run_csp(home: Path, *args: str, timeout: float = 300, **kwargs) -> subprocess.CompletedProcess:
    """Run ``csp ARGS`` to the end; its exit status, stdout and stderr."""
    proc = csp(home, *args, **kwargs)
    out, err = proc.communicate(timeout=timeout)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def one_line_error(result: subprocess.CompletedProcess) -> str:
    """The error of a refused command, checked to be one ``error:`` line without a traceback."""
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr, result.stderr
    text = " ".join(result.stderr.split())
    assert text.startswith("error:"), result.stderr
    return text


def invoke_csp(home: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """``csp ARGS`` run in this process (typer's runner over the real app), as a finished process.

    For commands that are refused before any work: a subprocess pays ~2 s of imports per call. An
    exception that escapes the app shows up in ``stderr`` as a ``Traceback`` line, as it would in a shell.
    """
    from unittest import mock

    import typer.testing
    from typer.testing import CliRunner

    from flows.cli import app

    full = dict(CSP_HOME=str(home), COLUMNS="200", CSP_THREADS="1") | (env or {})
    command = _click_command()  # what CliRunner.invoke would build from the app, built once
    with (
        mock.patch.dict(os.environ, full),
        mock.patch.object(typer.testing, "_get_command", lambda given: command if given is app else None),
    ):
        result = CliRunner().invoke(app, list(args))
    stderr = result.stderr
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        stderr += f"\nTraceback (escaped the app): {result.exception!r}"
    return subprocess.CompletedProcess(["csp", *args], result.exit_code, result.stdout, stderr)


@functools.lru_cache(maxsize=1)
def _click_command():
    """The click command typer makes of the app, once per session: typer's runner rebuilds it on every invoke,
    evaluating every option's annotations (~0.05-0.1 s a call on 2 cores, most of an in-process refusal)."""
    import typer.main

    from flows.cli import app

    return typer.main.get_command(app)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (free when asked; the caller binds it soon)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
