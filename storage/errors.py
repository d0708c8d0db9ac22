"""Every error the data layer raises, under one base class (``storage`` never imports ``csp``).

Each subclass also derives from the built-in exception its callers caught before (``RuntimeError`` for the
lake, ``ValueError`` for unreadable input, ``OSError`` for a write the disk refused), so older ``except``
clauses keep working. The faces catch :class:`StorageError` and :class:`csp.errors.CSPError`.
"""

from __future__ import annotations

import contextlib
import errno
import re
from collections.abc import Iterator
from pathlib import Path

__all__ = [
    "WRITE_ERRNOS",
    "DiskWriteError",
    "StorageError",
    "describe_message_failure",
    "describe_write_failure",
    "errno_in_message",
    "is_disk_refusal",
    "writing",
]

#: errno values that mean "the disk refused the write", not "the program is wrong"
WRITE_ERRNOS: dict[int, tuple[str, str]] = {
    errno.ENOSPC: ("no space is left on the device", "free space there"),
    errno.EDQUOT: ("the disk quota is used up", "free space or raise the quota"),
    errno.EFBIG: ("the file is larger than the file system allows", "free space or split the data"),
    errno.EROFS: ("the file system is read-only", "remount it read-write"),
    errno.EACCES: ("permission is denied", "give this user write access"),
    errno.EPERM: ("the operation is not permitted", "give this user write access"),
    errno.EIO: ("the device reported an I/O error", "check the disk"),
}
LAKE_ADVICE = "or set CSP_HOME to a writable folder"


class StorageError(Exception):
    """Base of every error raised by :mod:`storage`: the message says what was wrong and what to do."""


class DiskWriteError(StorageError, OSError):
    """The disk refused a write (full, read-only, no permission): ``errno`` is the operating system's code.

    ``str()`` is one line naming the path, the reason, its errno symbol and what to do.
    """

    def __init__(self, code: int, message: str) -> None:
        super().__init__(code, message)

    def __str__(self) -> str:
        return str(self.args[1])


def describe_write_failure(exc: OSError, path: Path | str | None = None, advice: str = LAKE_ADVICE) -> str:
    """One line for a write the disk refused.

    Args:
        exc: the ``OSError`` (its ``errno`` picks the reason; pyarrow's and Python's alike).
        path: the file or folder being written (default: ``exc.filename``).
        advice: what else the user can do, after the errno's own remedy.

    Returns:
        e.g. ``Cannot write /data/lake/candidates: no space is left on the device (ENOSPC); free space
        there, or set CSP_HOME to a writable folder.``
    """
    where = path if path is not None else exc.filename
    if where is None:  # pyarrow names the file only in its message: "Failed to open local file '...'"
        quoted = re.search(r"'([^']+)'", str(exc))
        where = quoted.group(1) if quoted else None
    reason, remedy = WRITE_ERRNOS.get(exc.errno or 0, (exc.strerror or str(exc).splitlines()[0], "check it"))
    symbol = errno.errorcode.get(exc.errno or 0, "")
    return (
        f"Cannot write {where or 'the file'}: {reason}"
        + (f" ({symbol})" if symbol else "")
        + f"; {remedy}, {advice}."
    )


def errno_in_message(text: str) -> int | None:
    """The errno of :data:`WRITE_ERRNOS` whose operating-system wording (``os.strerror``) ``text`` quotes, or
    None: DuckDB reports a refused write as its own ``IOException`` whose message ends with that wording
    ("Read-only file system", "No space left on device"), with no ``errno`` attribute."""
    import os

    lowered = text.lower()
    for code in WRITE_ERRNOS:
        if os.strerror(code).lower() in lowered:
            return code
    return None


def describe_message_failure(text: str, path: Path | str, advice: str = LAKE_ADVICE) -> str:
    """One line for a refused write known only by its message (DuckDB's): the reason of the errno it quotes
    (:func:`errno_in_message`), or its first line with advice that names no particular cause."""
    code = errno_in_message(text)
    if code is not None:
        import os

        return describe_write_failure(OSError(code, os.strerror(code)), path, advice)
    first = text.splitlines()[0] if text else "the write failed"
    return f"Cannot write {path}: {first}; check that the folder is writable and has free space, {advice}."


def is_disk_refusal(exc: BaseException) -> bool:
    """Whether ``exc`` is an ``OSError`` whose errno says the disk refused a write (:data:`WRITE_ERRNOS`)."""
    return isinstance(exc, OSError) and exc.errno in WRITE_ERRNOS


@contextlib.contextmanager
def writing(path: Path | str, advice: str = LAKE_ADVICE) -> Iterator[None]:
    """Within the block, an ``OSError`` the disk raised for a write becomes a one-line :class:`DiskWriteError`.

    Other ``OSError`` values (a missing file, a bug) pass unchanged.

    Raises:
        DiskWriteError: the block raised ``OSError`` with an errno of :data:`WRITE_ERRNOS`.
    """
    try:
        yield
    except DiskWriteError:
        raise
    except OSError as exc:
        if not is_disk_refusal(exc):
            raise
        raise DiskWriteError(exc.errno, describe_write_failure(exc, path, advice)) from exc
