"""One relaxation server: one process owns the device and the potential, many campaign processes relax through it.

**Why.**
``csp benchmark paper --workers 15 --device cuda`` runs 15 campaigns at once, one process each. If each
relaxed its top structures itself, 15 processes would each open a CUDA context on one GPU (which faulted).
Instead the orchestrator starts one :class:`RelaxServer` (a spawned process that loads the potential on the
device once) before its worker pool and gives each worker its :class:`ServerAddress`
(:func:`connect`, from the pool's initializer). In a connected process :func:`csp.potentials.refine.get_potential`
returns a :class:`RemotePotential`, and :func:`csp.potentials.relaxer.relax` sends the jobs to the
server, which relaxes them in its batched pool (:func:`csp.potentials.batched.relax_batched`, continuous
batching) together with the other processes' jobs, and streams each result back as it finishes. The
workers never touch the device. Without a server nothing changes (the direct path).

**Protocol.**
:mod:`multiprocessing.connection` over loopback TCP (``127.0.0.1``, a free port) with a random 32-byte
authkey (HMAC challenge); every message is a pickled tuple of plain values and numpy arrays. A client
opens one connection per :func:`~csp.potentials.relaxer.relax` call.

| client to server | meaning |
| --- | --- |
| `("describe", potential)` | answered `("described", name)`, e.g. `chgnet-0.3.0` |
| `("relax", settings, structures, left_s)` | settings: `potential`, `fmax` (eV/A), `symprec` (A or None), `collapse_ratio`, `explode_ratio`, `frame_every`; structures: `(lattice (3, 3) A, numbers (n,), frac (n, 3), steps)` each; `left_s`: seconds to the request's deadline (None: none) |
| `("more", structures)` | more jobs of the same request (what `on_result` returned) |
| `("bye",)` | the client is done |

| server to client | meaning |
| --- | --- |
| `("alive", steps)` | heartbeat every `heartbeat_s` (steps: the pool's step count) |
| `("result", index, result)` | job `index` (in the order sent) finished: `(lattice, numbers, frac, energy, energy_initial, fmax, fmax_initial, steps, state)` (eV/atom, eV/A) |
| `("frame", index, lattice, numbers, frac, energy, fmax, step)` | an intermediate frame (`frame_every` > 0) |
| `("dropped", index)` | the deadline passed before the job joined the pool |
| `("error", text)` | the request failed (a bad structure or setting, or the potential raised); nothing more comes for it |

The server relaxes requests with equal settings in one pool; a request with other settings waits
until the jobs that arrived before it have joined (first come, first served). A bad structure fails
its own request only (checked before it joins); a structure the potential cannot evaluate ends
``failed``, as on the direct path.

**Failures.**
A client raises :class:`RelaxServerError` (a :class:`csp.errors.ModelError`, so a campaign fails with one
line and keeps its rows) when no server answers, when the connection drops, when nothing (not even a
heartbeat) arrives for ``timeout_s``, or when the pool makes no step for ``stall_s``. The server process
exits when its parent closes the pipe it watches (:meth:`RelaxServer.stop`, the ``with`` block's end, or
the parent's death) and is a daemon of its parent.
"""

from __future__ import annotations

import contextlib
import math
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from csp.errors import InputError, ModelError

__all__ = [
    "ENV_VAR",
    "RelaxServer",
    "RelaxServerError",
    "RemotePotential",
    "ServerAddress",
    "configured",
    "connect",
    "remote_potential",
]

#: Set to ``host:port`` in a connected process (no secret): a device check there is the server's business.
ENV_VAR = "CSP_RELAX_SERVER"
#: Seconds between heartbeats, and the silence after which a client gives up.
HEARTBEAT_S, TIMEOUT_S = 2.0, 60.0
#: Seconds without a single step of the server's pool (while a request waits) before a client gives up.
STALL_S = 1800.0
_SETTINGS = ("potential", "fmax", "symprec", "collapse_ratio", "explode_ratio", "frame_every")


class RelaxServerError(ModelError):
    """The relaxation server cannot be reached, died, went silent, or refused or failed a request."""


@dataclass(frozen=True)
class ServerAddress:
    """Where a relaxation server listens (loopback) and its authkey; picklable, handed to pool workers."""

    host: str
    port: int
    authkey: bytes
    potential: str = "chgnet"

    def __repr__(self) -> str:  # never print the key
        return f"ServerAddress({self.host}:{self.port}, potential={self.potential})"


# ------------------------------------------------------------------------------------------- client
_CLIENT: ServerAddress | None = None


def connect(address: ServerAddress | None) -> None:
    """Send this process's relaxations to the server at ``address`` (None: relax here, the direct path).
    A pool initializer calls it in each worker; it sets :data:`ENV_VAR`."""
    global _CLIENT
    _CLIENT = address
    if address is None:
        os.environ.pop(ENV_VAR, None)
    else:
        os.environ[ENV_VAR] = f"{address.host}:{address.port}"


def configured() -> ServerAddress | None:
    """The server this process relaxes through, or None."""
    return _CLIENT


_REMOTES: dict[tuple[ServerAddress, str], RemotePotential] = {}


def remote_potential(name: str) -> RemotePotential | None:
    """A :class:`RemotePotential` for potential ``name`` when a server is configured (one per server and
    name in this process), else None."""
    if _CLIENT is None:
        return None
    return _REMOTES.setdefault((_CLIENT, name), RemotePotential(_CLIENT, name))


def _arrays(crystal: Any, steps: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    return (
        np.asarray(crystal.lattice, dtype=np.float64),
        np.asarray(crystal.numbers, dtype=np.int64),
        np.asarray(crystal.frac_coords, dtype=np.float64),
        int(steps),
    )


def _open(address: ServerAddress, timeout_s: float) -> Any:
    """A connection to the server (the handshake in a thread, so a hung server cannot hang the client)."""
    from multiprocessing.connection import Client

    box: dict[str, Any] = {}

    def dial() -> None:
        try:
            box["conn"] = Client((address.host, address.port), authkey=address.authkey)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller below
            box["error"] = exc

    thread = threading.Thread(target=dial, daemon=True, name="csp-relax-dial")
    thread.start()
    thread.join(timeout_s)
    where = f"{address.host}:{address.port}"
    if thread.is_alive():
        raise RelaxServerError(f"The relaxation server at {where} did not answer within {timeout_s:g} s.")
    if "error" in box:
        exc = box["error"]
        raise RelaxServerError(
            f"No relaxation server answers at {where} ({type(exc).__name__}: {exc}): it stopped or crashed."
        ) from exc
    return box["conn"]


class RemotePotential:
    """A potential that lives in a relaxation server: ``relax`` sends its jobs there.

    Attributes:
        address: the server.
        key: the potential's short name (``chgnet``, ``sevennet``); ``name`` is its full name, asked of the
            server once.
        timeout_s: silence (no result, frame or heartbeat) after which a call fails.
        stall_s: time without a step of the server's pool after which a call fails.
    """

    device = "server"

    def __init__(self, address: ServerAddress, key: str = "chgnet", timeout_s: float = TIMEOUT_S,
                 stall_s: float = STALL_S) -> None:  # fmt: skip
        self.address, self.key, self.timeout_s, self.stall_s = address, key, timeout_s, stall_s
        self._name: str | None = None

    @property
    def name(self) -> str:
        """The potential's full name (e.g. ``chgnet-0.3.0``), as the server loaded it."""
        if self._name is None:
            conn = _open(self.address, self.timeout_s)
            try:
                conn.send(("describe", self.key))
                reply = self._receive(conn)
                while reply[0] == "alive":
                    reply = self._receive(conn)
                if reply[0] != "described":
                    raise RelaxServerError(f"The relaxation server refused potential {self.key}: {reply[-1]}")
                self._name = str(reply[1])
                conn.send(("bye",))
            finally:
                conn.close()
        return self._name

    def _receive(self, conn: Any) -> tuple:
        where = f"{self.address.host}:{self.address.port}"
        try:
            if not conn.poll(self.timeout_s):
                raise RelaxServerError(
                    f"The relaxation server at {where} sent nothing for {self.timeout_s:g} s (not even a "
                    "heartbeat): it hangs or died."
                )
            return conn.recv()
        except (EOFError, OSError) as exc:
            raise RelaxServerError(
                f"The relaxation server at {where} closed the connection ({type(exc).__name__}): it stopped or "
                "crashed."
            ) from exc

    def relax_remote(
        self,
        jobs: Iterable[Any],
        *,
        fmax: float,
        symprec: float | None,
        collapse_ratio: float | None,
        explode_ratio: float | None,
        deadline: float | None,
        on_result: Callable[[Any], Iterable[Any] | None] | None,
        on_frame: Callable[..., None] | None,
        frame_every: int,
    ) -> list[Any]:
        """Relax ``jobs`` (:class:`csp.potentials.relaxer.RelaxJob`) on the server; the arguments and results
        are those of :func:`csp.potentials.relaxer.relax` (results in the order they finished, each with the
        caller's own job, payload untouched).

        Raises:
            RelaxServerError: the server is gone, silent for ``timeout_s``, stalled for ``stall_s``, or
                refused the request (the message says why).
        """
        from csp.potentials.relaxer import Relaxed
        from csp.structures.crystal import Crystal

        sent = list(jobs)
        settings = {
            "potential": self.key, "fmax": float(fmax), "symprec": symprec, "collapse_ratio": collapse_ratio,
            "explode_ratio": explode_ratio, "frame_every": int(frame_every if on_frame is not None else 0),
        }  # fmt: skip
        left = None if deadline is None else deadline - time.monotonic()
        done: list[Any] = []
        waiting = len(sent)
        if not sent:
            return done
        conn = _open(self.address, self.timeout_s)
        try:
            conn.send(("relax", settings, [_arrays(j.crystal, j.steps) for j in sent], left))
            steps, moved = -1, time.monotonic()
            while waiting:
                msg = self._receive(conn)
                kind = msg[0]
                if kind == "alive":
                    if msg[1] != steps:
                        steps, moved = msg[1], time.monotonic()
                    elif time.monotonic() - moved > self.stall_s:
                        raise RelaxServerError(f"The relaxation server made no step for {self.stall_s:g} s.")
                elif kind == "result":
                    lattice, numbers, frac, e, e0, f, f0, taken, state = msg[2]
                    item = Relaxed(sent[msg[1]], Crystal(lattice, numbers, frac), e, e0, f, f0, taken, state)
                    done.append(item)
                    waiting -= 1
                    more = list((on_result(item) or ()) if on_result is not None else ())
                    if more:
                        conn.send(("more", [_arrays(j.crystal, j.steps) for j in more]))
                        sent += more
                        waiting += len(more)
                elif kind == "frame" and on_frame is not None:
                    _, index, lattice, numbers, frac, energy, fm, step = msg
                    on_frame(sent[index], Crystal(lattice, numbers, frac), energy, fm, step)
                elif kind == "dropped":
                    waiting -= 1
                elif kind == "error":
                    raise RelaxServerError(f"The relaxation server failed the request: {msg[1]}")
                moved = time.monotonic() if kind != "alive" else moved
            conn.send(("bye",))
        except (OSError, EOFError) as exc:  # a send to a server that went away
            raise RelaxServerError(f"The relaxation server went away ({type(exc).__name__}: {exc}).") from exc
        finally:
            conn.close()
        return done


# ------------------------------------------------------------------------------------------- server
class _Link:
    """The sending side of one client connection: messages queue and one thread per connection sends them,
    so a client that stops reading (stopped, swapping) blocks only its own thread, never the relaxation
    loop or the heartbeat of the others. Heartbeats are skipped while older messages still wait."""

    def __init__(self, conn: Any) -> None:
        import queue

        self.conn = conn
        self.outbox: queue.SimpleQueue = queue.SimpleQueue()
        self.closed = False
        threading.Thread(target=self._pump, daemon=True, name="csp-relax-send").start()

    def _pump(self) -> None:
        while True:
            message = self.outbox.get()
            if message is None:
                self.conn.close()
                return
            try:
                self.conn.send(message)
            except (OSError, EOFError, ValueError):
                self.closed = True
                return

    def send(self, message: tuple) -> None:
        if not self.closed:
            self.outbox.put(message)

    def beat(self, steps: int) -> None:
        if self.outbox.qsize() < 2:
            self.send(("alive", steps))

    def close(self) -> None:
        self.closed = True
        self.outbox.put(None)


class _Request:
    """One client's relax request: its link, settings key and deadline (server clock; -inf once the client
    is gone, so its running jobs stop)."""

    def __init__(self, link: _Link, settings: dict[str, Any], left_s: float | None) -> None:
        self.link = link
        self.key = tuple((k, settings[k]) for k in _SETTINGS)
        self.deadline = None if left_s is None else time.monotonic() + float(left_s)
        self.closed = False
        self.count = 0

    def send(self, message: tuple) -> None:
        if self.link.closed:
            self.close()
        if not self.closed:
            self.link.send(message)

    def fail(self, text: str) -> None:
        self.send(("error", text))
        self.close()

    def close(self) -> None:
        self.closed = True
        self.deadline = -math.inf


class _Job:
    """A job in the server's pool (what :func:`~csp.potentials.batched.relax_batched` relaxes)."""

    __slots__ = ("crystal", "index", "payload", "request", "steps")

    def __init__(self, crystal: Any, steps: int, request: _Request, index: int) -> None:
        self.crystal, self.steps, self.request, self.index, self.payload = (
            crystal,
            steps,
            request,
            index,
            None,
        )

    @property
    def deadline(self) -> float | None:
        return self.request.deadline


def _check_settings(settings: dict[str, Any]) -> None:
    missing = [k for k in _SETTINGS if k not in settings]
    if missing:
        raise InputError(f"the request lacks the settings {missing}")
    if not (isinstance(settings["fmax"], float) and settings["fmax"] > 0):
        raise InputError(f"fmax must be a positive number (eV/A), not {settings['fmax']!r}")


def _jobs(request: _Request, structures: list[Any]) -> list[_Job]:
    """The request's structures as pool jobs, every one checked first (a bad one fails the request alone).

    Raises:
        InputError: a structure that is not (lattice (3, 3), numbers (n,), frac (n, 3), steps >= 0) of
            finite values and known elements, or that spglib cannot read at the request's tolerance.
    """
    from csp.potentials.batched import symmetry_operations
    from csp.structures.crystal import Crystal
    from csp.structures.elements import covalent_radius

    symprec = dict(request.key)["symprec"]
    out = []
    for k, item in enumerate(structures):
        try:
            lattice, numbers, frac, steps = item
            crystal = Crystal(np.asarray(lattice, float).reshape(3, 3), np.asarray(numbers, int),
                              np.asarray(frac, float).reshape(-1, 3))  # fmt: skip
            if int(steps) < 0 or not np.all(np.isfinite(covalent_radius(crystal.numbers))):
                raise InputError("negative steps or an element without a covalent radius")
            symmetry_operations(crystal, symprec if int(steps) > 0 else None)
        except Exception as exc:
            raise InputError(f"structure {request.count + k} is not a valid crystal: {exc}") from exc
        out.append(_Job(crystal, int(steps), request, request.count + k))
    request.count += len(out)
    return out


class _Server:
    """The server's state: loaded potentials, the queue of jobs waiting to join, the live connections."""

    def __init__(self, device: str, pool: int, heartbeat_s: float) -> None:
        self.device, self.pool, self.heartbeat_s = device, pool, heartbeat_s
        self.pending: deque[_Job] = deque()
        self.ready = threading.Condition()
        self.connections: dict[int, _Link] = {}
        self.potentials: dict[str, Any] = {}
        self.loading = threading.Lock()
        self.steps = 0
        #: what was served: requests (relax calls), structures, clients (connections) and pool steps
        self.stats = {"requests": 0, "structures": 0, "clients": 0, "steps": 0}

    def potential(self, key: str) -> Any:
        from csp.potentials.relaxer import load_potential

        with self.loading:
            if key not in self.potentials:
                if ":" in key:  # "module:factory", called with the device (tests serve toy potentials)
                    import importlib

                    module, _, factory = key.partition(":")
                    self.potentials[key] = getattr(importlib.import_module(module), factory)(self.device)
                else:
                    self.potentials[key] = load_potential(key, self.device)
            return self.potentials[key]

    # ------------------------------------------------------------------ connections (one thread each)
    def handle(self, conn: Any) -> None:
        link, request = _Link(conn), None
        self.connections[id(conn)] = link
        self.stats["clients"] += 1
        try:
            while True:
                msg = conn.recv()
                try:
                    if msg[0] == "describe":
                        link.send(("described", self.potential(msg[1]).name))
                    elif msg[0] == "relax":
                        _check_settings(msg[1])
                        self.potential(msg[1]["potential"])
                        request = _Request(link, msg[1], msg[3])
                        self.stats["requests"] += 1
                        self.enqueue(_jobs(request, msg[2]))
                    elif msg[0] == "more" and request is not None:
                        self.enqueue(_jobs(request, msg[1]))
                    elif msg[0] == "bye":
                        break
                except Exception as exc:  # noqa: BLE001 - this client's request fails, the server goes on
                    text = f"{type(exc).__name__}: {exc}"
                    if request is not None:
                        request.fail(text)
                    else:
                        link.send(("error", text))
        except (EOFError, OSError):
            pass
        finally:
            if request is not None:
                request.close()
            self.connections.pop(id(conn), None)
            link.close()  # the pump sends what is queued, then closes the connection

    def enqueue(self, jobs: list[_Job]) -> None:
        self.stats["structures"] += len(jobs)
        with self.ready:
            self.pending.extend(jobs)
            self.ready.notify()

    def heartbeat(self, stop: threading.Event) -> None:
        while not stop.wait(self.heartbeat_s):
            for link in list(self.connections.values()):
                link.beat(self.steps)

    # ------------------------------------------------------------------------------ the relaxation
    def serve(self, stop: threading.Event) -> None:
        """Relax what arrives, one settings key at a time (first come, first served), until ``stop``."""
        while not stop.is_set():
            with self.ready:
                while not self.pending and not stop.is_set():
                    self.ready.wait(0.5)
                if stop.is_set():
                    return
                key = self.pending[0].request.key
            self.run(key)

    def run(self, key: tuple) -> None:
        from csp.potentials.batched import relax_batched

        settings = dict(key)
        admitted: set[_Request] = set()

        def feed(room: int) -> list[_Job]:
            self.steps += 1
            out: list[_Job] = []
            with self.ready:
                while self.pending and len(out) < room and self.pending[0].request.key == key:
                    job = self.pending.popleft()
                    request = job.request
                    if request.closed:
                        continue
                    if request.deadline is not None and time.monotonic() > request.deadline:
                        request.send(("dropped", job.index))
                        continue
                    out.append(job)
                    admitted.add(request)
            return out

        def finished(item: Any) -> None:
            c = item.crystal
            result = (c.lattice, c.numbers, c.frac_coords, item.energy, item.energy_initial, item.fmax,
                      item.fmax_initial, item.steps, item.state)  # fmt: skip
            item.job.request.send(("result", item.job.index, result))

        def frame(job: _Job, c: Any, energy: float, fm: float, step: int) -> None:
            job.request.send(("frame", job.index, c.lattice, c.numbers, c.frac_coords, energy, fm, step))

        try:
            potential = self.potential(settings["potential"])
            relax_batched(
                potential, [], fmax=settings["fmax"], pool=self.pool, symprec=settings["symprec"],
                collapse_ratio=settings["collapse_ratio"], explode_ratio=settings["explode_ratio"],
                on_result=finished, on_frame=frame, frame_every=settings["frame_every"], feed=feed,
            )  # fmt: skip
        except Exception as exc:  # noqa: BLE001 - the pool's requests fail; the server serves the next
            for request in admitted:
                request.fail(f"the relaxation failed on the server: {type(exc).__name__}: {exc}")


def _server_main(pipe: Any, authkey: bytes, potential: str, device: str, pool: int, heartbeat_s: float,
                 threads: int | None) -> None:  # fmt: skip
    """The server process: load the potential, listen on loopback, report ``("ready", port, name)`` (or
    ``("failed", text)``) on ``pipe``, serve until the pipe closes or says ``stop``."""
    from multiprocessing.connection import Listener

    try:
        if threads:
            import torch

            torch.set_num_threads(threads)
        server = _Server(device, pool, heartbeat_s)
        name = server.potential(potential).name
        listener = Listener(("127.0.0.1", 0), authkey=authkey)
    except Exception as exc:  # noqa: BLE001 - told to the parent, which raises it
        pipe.send(("failed", f"{type(exc).__name__}: {exc}"))
        return
    pipe.send(("ready", listener.address[1], name))
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn = listener.accept()
            except OSError:  # the listener closed, or a client failed the authkey challenge
                if stop.is_set():
                    return
                continue
            threading.Thread(target=server.handle, args=(conn,), daemon=True).start()

    def watch() -> None:
        with contextlib.suppress(EOFError, OSError):
            pipe.recv()  # "stop", or EOF when the parent goes
            pipe.send(("stats", {**server.stats, "steps": server.steps}))
        stop.set()
        listener.close()
        os._exit(0)  # at once, even mid-step: clients in flight see the connection drop

    for target, args in ((accept, ()), (watch, ()), (server.heartbeat, (stop,))):
        threading.Thread(target=target, args=args, daemon=True).start()
    server.serve(stop)


class RelaxServer:
    """The relaxation server's handle in the orchestrator: ``with RelaxServer("chgnet", "cuda") as address:``
    starts the server process (spawned, a daemon of this process) and stops it at the block's end, also on
    an exception or Ctrl-C.

    Args:
        potential: the potential loaded at start (others are loaded when a request names them): ``chgnet``,
            ``sevennet`` (:func:`csp.potentials.relaxer.load_potential`), or ``module:factory``, a callable
            taking the device (tests serve toy potentials so).
        device: its torch device (``cpu``, ``cuda``, ``cuda:N``).
        pool: most structures relaxed at once (over all clients).
        heartbeat_s: seconds between heartbeats to each connected client.
        start_timeout_s: how long loading the potential may take.
        threads: torch threads of the server (None: torch's default).

    Raises:
        RelaxServerError: (from :meth:`start`) the server did not start: the message carries its error.
    """

    def __init__(self, potential: str = "chgnet", device: str = "cuda", *, pool: int = 256,
                 heartbeat_s: float = HEARTBEAT_S, start_timeout_s: float = 600.0,
                 threads: int | None = None) -> None:  # fmt: skip
        self.potential, self.device, self.pool = potential, device, pool
        self.heartbeat_s, self.start_timeout_s, self.threads = heartbeat_s, start_timeout_s, threads
        self.process: Any = None
        self.pipe: Any = None
        self.address: ServerAddress | None = None
        self.name: str | None = None
        #: after :meth:`stop`: requests, structures, clients (connections) and pool steps served
        self.stats: dict[str, int] | None = None

    def start(self) -> ServerAddress:
        """Start the server and wait until its potential is loaded; returns its address."""
        import multiprocessing as mp

        ctx = mp.get_context("spawn")
        self.pipe, child = ctx.Pipe()
        authkey = os.urandom(32)
        self.process = ctx.Process(
            target=_server_main,
            args=(child, authkey, self.potential, self.device, self.pool, self.heartbeat_s, self.threads),
            daemon=True,
            name="csp-relax-server",
        )
        self.process.start()
        child.close()
        try:
            if not self.pipe.poll(self.start_timeout_s):
                raise RelaxServerError(f"The relaxation server did not start in {self.start_timeout_s:g} s.")
            reply = self.pipe.recv()
        except EOFError:
            self.process.join(5.0)
            reply = ("failed", f"the process exited with code {self.process.exitcode}")
        except RelaxServerError:
            self.stop()
            raise
        if reply[0] != "ready":
            self.stop()
            raise RelaxServerError(
                f"The relaxation server ({self.potential} on {self.device}) did not start: {reply[1]}"
            )
        self.name = reply[2]
        self.address = ServerAddress("127.0.0.1", int(reply[1]), authkey, self.potential)
        return self.address

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop the server (it finishes nothing in flight: its clients get a clear error)."""
        if self.process is None:
            return
        with contextlib.suppress(OSError, ValueError, EOFError):
            self.pipe.send("stop")
            if self.pipe.poll(timeout_s):
                reply = self.pipe.recv()
                self.stats = reply[1] if reply[0] == "stats" else None
        self.pipe.close()
        self.process.join(timeout_s)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(timeout_s)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
        self.process = None

    def __enter__(self) -> ServerAddress:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
