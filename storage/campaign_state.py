"""Who owns a campaign id, and whether the process running it is still there.

* **Ids**: a campaign id names a folder of the lake and a key of its event log; :func:`check_campaign_id`
  allows 1-96 characters of letters, digits, ``.``, ``_`` and ``-`` (first a letter or digit).
* **One id, one set of parameters and models**: the parameters an id was first run with (composition, seed,
  budgets, every search parameter; ``top_k`` only ranks and ``score_device`` only says where the same models
  run, so they may change) and the models it scored with (their ids, ``<folder>:<sha256 prefix>``: the same
  ONNX files, whatever their folders are called) are its fingerprint. :func:`check_same_parameters`
  refuses another set with a one-line error that shows the stored values.
* **Liveness**: a running campaign holds an exclusive ``flock`` on ``<home>/runs/<id>.lock`` for as long as
  its process lives (the kernel drops it on any exit, ``kill -9`` included) and rewrites
  ``<home>/runs/<id>.json`` (pid, host, start, heartbeat) every :data:`HEARTBEAT_S` seconds.
  :func:`liveness` says whether a campaign whose last event is ``running`` still has a process: on this
  host by the lock, on another host by the heartbeat's age (stale after :data:`STALE_AFTER_S`).
* **Ways out**: :func:`sigterm_raises` turns SIGTERM into :class:`Terminated` (a ``KeyboardInterrupt``), so
  ``kill``, Ctrl-C and exceptions all reach the caller's handler, which records the status that
  :func:`exit_status` names; :func:`recorded_run` puts the three together around a campaign's run.
* **A full disk**: while a campaign runs, ``<home>/runs/<id>.reserve`` holds :data:`RESERVE_BYTES` of
  disk; the reserve is deleted before the final event is written, so a campaign that filled the disk
  can still record ``failed`` with its reason. Where even that write is refused (a read-only lake), the
  error says so and the campaign shows as ``stale``.

Nothing here imports the science or Prefect; the flows call these functions around a campaign.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from storage.errors import DiskWriteError, describe_write_failure, is_disk_refusal, writing
from storage.lake import Lake, LakeError

ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,95}")
#: parameters that do not change what a campaign scores (may differ on resume): the top k only ranks; the
#: scoring device runs the same models (onnxruntime on the CPU or torch on a GPU, csp.models.torch_scoring),
#: so a campaign started on a GPU machine resumes on a CPU one
NOT_FINGERPRINTED = ("top_k", "score_device")
HEARTBEAT_S = 10.0
STALE_AFTER_S = 60.0
#: disk held back while a campaign runs, freed to record its last event (a failed event is ~6 kB)
RESERVE_BYTES = 256 * 1024
_NOT_STARTED = "or set CSP_HOME to a writable folder; the campaign did not start and nothing was recorded"


class CampaignStateError(LakeError):
    """A campaign id that cannot be used for this request (bad, taken by other parameters, or busy)."""


class Terminated(KeyboardInterrupt):
    """SIGTERM reached a campaign (``kill``, a stopping worker): handled like Ctrl-C."""


# ------------------------------------------------------------------------------------------ ids


def _shown(text: str, limit: int = 60) -> str:
    return repr(text) if len(text) <= limit else repr(text[:limit]) + f"... ({len(text)} characters)"


def _value(value: Any, limit: int = 40) -> str:
    text = json.dumps(value)
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} characters)"


def check_campaign_id(campaign_id: str) -> str:
    """Return ``campaign_id`` if it can name a campaign; raises :class:`CampaignStateError` otherwise."""
    if not isinstance(campaign_id, str) or not ID_PATTERN.fullmatch(campaign_id):
        raise CampaignStateError(
            f"Campaign id {_shown(str(campaign_id))} is not usable: give 1-96 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit."
        )
    return campaign_id


# ---------------------------------------------------------------------------------- fingerprint


def fingerprint(parameters: dict[str, Any]) -> dict[str, Any]:
    """The parameters that define what a campaign scores (JSON-normalised, ``top_k`` left out)."""
    canonical = json.loads(json.dumps(parameters, sort_keys=True, default=str))
    return {k: v for k, v in canonical.items() if k not in NOT_FINGERPRINTED}


def _first_run(lake: Lake, campaign_id: str) -> dict[str, Any] | None:
    rows = lake.query(
        "SELECT parameters_json, model_ids FROM campaign_events WHERE campaign_id = ? AND status = 'running' "
        "ORDER BY seq LIMIT 1",
        [campaign_id],
    ).to_pylist()
    return rows[0] if rows else None


def stored_fingerprint(lake: Lake, campaign_id: str) -> dict[str, Any] | None:
    """The parameters' fingerprint an id was first run with (its first ``running`` event), or None for a
    free id.

    An id whose only events are failures before the search started (bad parameters) is free.
    """
    first = _first_run(lake, campaign_id)
    return fingerprint(json.loads(first["parameters_json"])) if first else None


def _model_sha(model_id: str) -> str:
    """The sha256 prefix of a model id (``<folder>:<sha256 prefix>``): what identifies the model scored."""
    return model_id.rpartition(":")[2]


def _models_differ(campaign_id: str, stored: Sequence[str], given: Sequence[str]) -> CampaignStateError:
    return CampaignStateError(
        f"Campaign {campaign_id} was started with the models {', '.join(stored)} (this request: "
        f"{', '.join(given) or 'none'}); resume it with those model folders (CSP_MODELS_DIR, CSP_DFT_MODEL, "
        "CSP_EXP_MODEL, CSP_PU_MODEL) or start a new campaign under another --campaign-id."
    )


def check_same_parameters(
    lake: Lake,
    campaign_id: str,
    parameters: dict[str, Any],
    defaults: Mapping[str, Any] | None = None,
    *,
    model_ids: Sequence[str] | None = None,
) -> bool:
    """Refuse to run ``campaign_id`` with parameters or models other than the ones it was started with.

    Args:
        defaults: the value of a parameter that the stored set lacks (a field added after the campaign
            started ran at its default), so that such a campaign still resumes.
        model_ids: the ids of the models this request would score with (``<folder>:<sha256 prefix>``,
            :func:`csp.models.check.model_id`); two ids with the same sha256 prefix are the same model
            (a renamed folder). None (or a campaign that recorded none) skips the comparison.

    Returns:
        True if the id already exists with these parameters and models (a resume), False for a new id.

    Raises:
        CampaignStateError: if the id exists with other parameters (the message lists the stored values
            of the parameters that differ) or other models (the message lists both sets of ids).
    """
    first = _first_run(lake, campaign_id)
    if first is None:
        return False
    stored = fingerprint(json.loads(first["parameters_json"]))
    given = fingerprint(parameters)
    missing = {k: v for k, v in fingerprint(dict(defaults or {})).items() if k not in stored}
    stored = {**missing, **stored}
    keys = sorted(set(stored) | set(given))
    differ = [k for k in keys if stored.get(k) != given.get(k)]
    if not differ:
        recorded = list(first["model_ids"] or [])
        shas = [_model_sha(m) for m in recorded]
        if model_ids is not None and recorded and shas != [_model_sha(m) for m in model_ids]:
            raise _models_differ(campaign_id, recorded, list(model_ids))
        return True
    was = ", ".join(f"{k}={_value(stored.get(k))}" for k in differ)
    now = ", ".join(f"{k}={_value(given.get(k))}" for k in differ)
    raise CampaignStateError(
        f"Campaign {campaign_id} was started with {was} (this request: {now}); "
        f"resume it with `csp campaign resume {campaign_id}` or choose another --campaign-id."
    )


# ------------------------------------------------------------------------------------- liveness


def runs_dir(lake: Lake) -> Path:
    return lake.root / "runs"


def _lock_path(lake: Lake, campaign_id: str) -> Path:
    return runs_dir(lake) / f"{check_campaign_id(campaign_id)}.lock"


def _info_path(lake: Lake, campaign_id: str) -> Path:
    return runs_dir(lake) / f"{check_campaign_id(campaign_id)}.json"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(f".tmp-{uuid.uuid4().hex[:8]}-{path.name}")
    tmp.write_text(json.dumps(data))
    tmp.replace(path)


@dataclass
class RunClaim:
    """A campaign's claim on its id while its process runs (see :func:`claim_run`)."""

    campaign_id: str
    info: dict[str, Any]
    _fd: int
    _stop: threading.Event
    _thread: threading.Thread | None = None
    reserve: Path | None = None

    def release_reserve(self) -> None:
        """Give the disk held back for the last event back to the file system (idempotent)."""
        if self.reserve is not None:
            with contextlib.suppress(OSError):
                self.reserve.unlink(missing_ok=True)
            self.reserve = None


def _hold_reserve(path: Path, size: int) -> Path:
    """Write ``size`` zero bytes to ``path`` (real blocks, not a sparse hole) and return it."""
    try:
        with path.open("wb") as handle:
            handle.write(bytes(size))
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        with contextlib.suppress(OSError):
            path.unlink(missing_ok=True)
        raise
    return path


def read_run_info(lake: Lake, campaign_id: str) -> dict[str, Any] | None:
    """pid, host, run_id, started_at and heartbeat_at of the campaign's latest process, if recorded."""
    try:
        return json.loads(_info_path(lake, campaign_id).read_text())
    except (OSError, ValueError):
        return None


@contextlib.contextmanager
def claim_run(
    lake: Lake, campaign_id: str, run_id: str, *, heartbeat_s: float = HEARTBEAT_S
) -> Iterator[RunClaim]:
    """Hold the id's lock and keep a heartbeat for the duration of the ``with`` block.

    Raises:
        CampaignStateError: if another live process holds the id (the message names its pid and host).
        DiskWriteError: the lake's ``runs/`` folder cannot be written (full, read-only, no permission);
            nothing was recorded.
    """
    folder = runs_dir(lake)
    with writing(folder, advice=_NOT_STARTED):
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(_lock_path(lake, campaign_id), os.O_RDWR | os.O_CREAT, 0o644)
    deadline = time.monotonic() + 2.0  # a `campaign list` may hold the lock for a moment to test it
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if time.monotonic() > deadline:
                os.close(fd)
                other = read_run_info(lake, campaign_id) or {}
                raise CampaignStateError(
                    f"Campaign {campaign_id} is already running (pid {other.get('pid')} on "
                    f"{other.get('host')}, since {other.get('started_at')}); wait for it or stop it first."
                ) from None
            time.sleep(0.1)
    info = {
        "campaign_id": campaign_id,
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "run_id": run_id,
        "started_at": _now(),
        "heartbeat_at": _now(),
    }
    claim = RunClaim(campaign_id, info, fd, threading.Event())
    reserve = folder / f"{campaign_id}.reserve"
    try:
        with writing(folder, advice=_NOT_STARTED):
            _write_json(_info_path(lake, campaign_id), info)
            claim.reserve = _hold_reserve(reserve, RESERVE_BYTES)
    except BaseException:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
        raise

    def beat() -> None:
        while not claim._stop.wait(heartbeat_s):
            info["heartbeat_at"] = _now()
            with contextlib.suppress(OSError):
                _write_json(_info_path(lake, campaign_id), info)

    claim._thread = threading.Thread(target=beat, name=f"heartbeat-{campaign_id}", daemon=True)
    claim._thread.start()
    try:
        yield claim
    finally:
        claim._stop.set()
        claim._thread.join(timeout=5)
        claim.release_reserve()
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists on this host (one owned by another user counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def liveness(lake: Lake, campaign_id: str) -> tuple[bool | None, str]:
    """Whether a process still runs ``campaign_id``: (True/False/None for unknown, a short explanation)."""
    info = read_run_info(lake, campaign_id)
    lock = _lock_path(lake, campaign_id)
    if info is None and not lock.exists():
        return None, "no process was recorded for it"
    host = socket.gethostname()
    if info is None or info.get("host") == host:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True, f"pid {info and info.get('pid')} on {host} is running it"
        else:
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)
        pid = info.get("pid") if info else None
        return False, f"its process (pid {pid} on {host}) is gone"
    beat = datetime.fromisoformat(info["heartbeat_at"])
    age = (datetime.now(UTC) - beat).total_seconds()
    if age > STALE_AFTER_S:
        return False, f"no heartbeat from pid {info.get('pid')} on {info.get('host')} for {age:.0f} s"
    return True, f"pid {info.get('pid')} on {info.get('host')} beat {age:.0f} s ago"


def shown_status(lake: Lake, campaign_id: str, status: str) -> tuple[str, str | None]:
    """The status to show: a ``running`` campaign whose process is gone shows as ``stale``."""
    if status != "running":
        return status, None
    alive, why = liveness(lake, campaign_id)
    if alive is False:
        return "stale", f"{why}; resume with `csp campaign resume {campaign_id}`"
    return status, None


# ------------------------------------------------------------------------------------ ways out


@contextlib.contextmanager
def sigterm_raises() -> Iterator[None]:
    """Within the block, SIGTERM raises :class:`Terminated` in the main thread (if nobody else handles it).

    Only installed from the main thread and only over the default handler, so a host that handles SIGTERM
    itself (a Prefect worker's flow-run process) keeps its own behaviour.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGTERM)
    if previous not in (signal.SIG_DFL, None):
        yield
        return

    def handler(signum: int, frame: object) -> None:
        raise Terminated("stopped by SIGTERM")

    signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def exit_status(exc: BaseException, campaign_id: str) -> tuple[str, str]:
    """The status (``interrupted`` or ``failed``) and reason to record when ``exc`` ends a campaign."""
    resume = f"resume with `csp campaign resume {campaign_id}`"
    if isinstance(exc, Terminated):
        return "interrupted", f"stopped by SIGTERM; {resume}"
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted", f"stopped by the user; {resume}"
    if isinstance(exc, SystemExit):
        return "interrupted", f"the process exited ({exc.code}); {resume}"
    text = str(exc).splitlines()[0] if str(exc) else ""
    return "failed", f"{type(exc).__name__}: {text[:300]}"


@contextlib.contextmanager
def recorded_run(
    lake: Lake,
    campaign_id: str,
    run_id: str,
    event: Callable[..., Any],
    *,
    refused: tuple[type[BaseException], ...] = (),
) -> Iterator[RunClaim]:
    """A campaign's run, honest on every way out: hold the id (:func:`claim_run`), turn SIGTERM into
    :class:`Terminated` (:func:`sigterm_raises`) and record ``event(status="running")``; when the block
    raises, record ``interrupted`` or ``failed`` (:func:`exit_status`; the message alone for the
    ``refused`` exception types) with the run's seconds (``elapsed_s``, from the ``running`` event: ``csp
    campaign list`` adds up every run of a campaign) and re-raise.

    A write the disk refused (:class:`storage.errors.DiskWriteError`, or a raw ``OSError`` with such an
    errno) is recorded as ``failed`` with its one-line message, after the claim's reserve is freed for it.

    Raises:
        CampaignStateError: before anything is recorded, if another live process holds the id.
        DiskWriteError: the event log refused the ``running`` event (one line naming the folder and the
            reason, saying that the campaign did not start and nothing was recorded: its state is as it
            was); or the run hit a full or read-only disk later. The message is one line; it ends with
            "recorded as failed", or says that the state could not be recorded (the id then shows as
            ``stale`` until it is resumed on a writable lake).
    """
    with claim_run(lake, campaign_id, run_id) as claim, sigterm_raises():
        try:
            event(status="running")
        except OSError as exc:  # the first write: nothing ran and nothing was recorded
            if not is_disk_refusal(exc):
                raise
            raise _not_started(exc, campaign_id) from exc
        started = time.perf_counter()
        try:
            yield claim
        except refused as exc:
            claim.release_reserve()
            event(status="failed", reason=str(exc), elapsed_s=time.perf_counter() - started)
            raise
        except BaseException as exc:
            claim.release_reserve()
            if not is_disk_refusal(exc):
                status, reason = exit_status(exc, campaign_id)
                event(status=status, reason=reason, elapsed_s=time.perf_counter() - started)
                raise
            _record_disk_failure(exc, campaign_id, event)


def _not_started(exc: OSError, campaign_id: str) -> DiskWriteError:
    """The one line for a campaign whose first event the disk refused: the folder, the reason, and that
    nothing ran or was recorded (so it shows as it was before, never as stale)."""
    first = exc if isinstance(exc, DiskWriteError) else DiskWriteError(exc.errno, describe_write_failure(exc))
    return DiskWriteError(
        first.errno, f"{first} Campaign {campaign_id} did not start: nothing was scored or recorded."
    )


def _record_disk_failure(exc: BaseException, campaign_id: str, event: Callable[..., Any]) -> None:
    """Record ``failed`` for a run the disk stopped, and raise one :class:`DiskWriteError` that says whether
    the state was recorded."""
    first = exc if isinstance(exc, DiskWriteError) else DiskWriteError(exc.errno, describe_write_failure(exc))
    resume = f"resume with `csp campaign resume {campaign_id}` once the lake can be written"
    try:
        event(status="failed", reason=str(first))
    except OSError as second:
        if not is_disk_refusal(second):
            raise
        raise DiskWriteError(
            first.errno,
            f"{first} Campaign {campaign_id} could not be recorded as failed either (the disk refused that "
            f"write too), so it shows as stale; the rows written before stay; {resume}.",
        ) from exc
    raise DiskWriteError(
        first.errno, f"{first} Campaign {campaign_id} is recorded as failed; the rows written stay; {resume}."
    ) from exc


def shown_status_table(lake: Lake, table: Any) -> Any:
    """An Arrow table of campaigns (``campaign_id``, ``status``, ``reason``) with stale runs marked."""
    import pyarrow as pa

    rows = table.to_pylist()
    for row in rows:
        status, note = shown_status(lake, row["campaign_id"], row["status"])
        if note is not None:
            row["status"], row["reason"] = status, note
    return pa.Table.from_pylist(rows, schema=table.schema) if rows else table
