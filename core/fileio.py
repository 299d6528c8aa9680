"""Atomic file writes: a reader (or a crash) never sees half a file."""

from __future__ import annotations

import itertools
import os
from contextlib import suppress
from pathlib import Path

# A temporary name only has to be unique among the writers of one folder: the process
# id tells processes apart, the counter (one next() is atomic) this process's writes,
# and the random part two hosts writing to one network share. It costs a fraction of
# tempfile.mkstemp's random names.
_PROCESS = os.urandom(3).hex()
_NUMBERS = itertools.count()
# O_BINARY: no newline translation on Windows (0 elsewhere).
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)


def _create(folder: str, name: str) -> tuple[str, int]:
    for _ in range(100):
        tmp = os.path.join(folder, f".{name}.{_PROCESS}{os.getpid()}-{next(_NUMBERS)}.tmp")
        with suppress(FileExistsError):  # left by a crashed process of the same pid
            # Mode 0o666 less the umask, the mode any new file gets here, so a web
            # server or a colleague can read what was published (mkstemp's are 0600).
            return tmp, os.open(tmp, _CREATE, 0o666)
    raise FileExistsError(f"{folder}: no free temporary name for {name}")


def write_atomic(path: Path | str, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``path``, fsync it, then rename it over
    ``path``. The rename is atomic on POSIX and Windows. Missing parent folders are
    made."""
    folder, name = os.path.split(os.fspath(path))
    try:
        tmp, fd = _create(folder, name)
    except FileNotFoundError:
        # Made only when missing: a write into an existing folder costs no mkdir.
        os.makedirs(folder, exist_ok=True)
        tmp, fd = _create(folder, name)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        with suppress(OSError):
            os.unlink(tmp)
        raise
