"""Atomic file writes: temp file in the same folder, fsync, rename. A crash leaves old or new, never half.

Modes. A replaced file keeps its mode (a 0644 training file stays readable by the others who
train on it). A new file follows the umask like any file the user creates (`new_mode` before
the umask, 0666 by default; sessions pass 0600 to stay private). The temp file is created with
os.open rather than tempfile.mkstemp, whose 0600 would otherwise end up on every file written.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from pathlib import Path

DEFAULT_NEW_MODE = 0o666  # before the umask, as open() and touch do


def write_text_atomic(
    path: str | os.PathLike[str], text: str, new_mode: int = DEFAULT_NEW_MODE
) -> None:
    write_bytes_atomic(path, text.encode("utf-8"), new_mode)


def write_bytes_atomic(
    path: str | os.PathLike[str], data: bytes, new_mode: int = DEFAULT_NEW_MODE
) -> None:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        keep: int | None = stat.S_IMODE(os.stat(target).st_mode)
    except FileNotFoundError:
        keep = None
    fd, tmp = _create_temp(target, 0o600 if keep is not None else new_mode)
    try:
        with os.fdopen(fd, "wb") as fh:
            if keep is not None:
                os.fchmod(fh.fileno(), keep)  # fchmod ignores the umask: the exact old mode
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_dir(target.parent)


def _create_temp(target: Path, mode: int) -> tuple[int, Path]:
    """A new hidden temp file beside target; the kernel applies the umask to `mode`."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    while True:
        tmp = target.parent / f".{target.name}.{secrets.token_hex(6)}.tmp"
        try:
            return os.open(tmp, flags, mode), tmp
        except FileExistsError:
            continue


def _fsync_dir(folder: Path) -> None:
    # The rename is only durable once the directory entry is on disk.
    try:
        dfd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dfd)
    except OSError:
        pass
    finally:
        os.close(dfd)
