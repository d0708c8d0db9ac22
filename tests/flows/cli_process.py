"""The command line as a user runs it: ``python -m flows.cli`` in a subprocess against a given lake."""

from __future__ import annotations

import os
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
        **kwargs,
    )


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
