"""The pools' workers leave Ctrl-C to the parent (fault F3), and a pool the parent leaves on Ctrl-C does not
run the rest of its queue first."""

from __future__ import annotations

import signal
import time

import pytest

from csp.pool_workers import quiet_executor


def test_workers_ignore_sigint_and_an_interrupted_block_cancels_the_queue():
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt), quiet_executor(1) as pool:
        assert pool.submit(signal.getsignal, signal.SIGINT).result(timeout=60) == signal.SIG_IGN
        queued = [pool.submit(time.sleep, 0.5) for _ in range(20)]
        raise KeyboardInterrupt  # Ctrl-C in the parent
    # at most the task the worker held (and the call queue's one extra) ran, not the 10 s of the queue
    assert time.monotonic() - started < 6
    assert sum(f.cancelled() for f in queued) >= 17
    assert signal.getsignal(signal.SIGINT) == signal.default_int_handler
