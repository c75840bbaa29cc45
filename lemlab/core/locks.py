"""Exclusive locks that say who holds them: one writer per output file or session, for the life
of a run, refused fast (one line naming the holder's pid, host and command) instead of two
writers interleaving lines.

A lock is `fcntl.flock` on a sidecar `<file>.lock`. The kernel releases it when the holder's last
descriptor closes, so a killed process never leaves a stale lock behind (a pid file would); the
lock file's text is only the holder's description for the refusal message. Opened O_CLOEXEC, so
servers or trainers started by the holder do not inherit (and outlive) it.

Own code rather than the `filelock` package (installed with huggingface_hub): filelock waits or
times out but cannot tell the refused process who holds the lock, which is the message we need,
and does not re-check that the file it locked is still the one at the path after a holder
removed it on release (see `acquire`). Headless: no mlx.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import re
import shlex
import socket
import sys
from pathlib import Path
from typing import Any

from lemlab.core.errors import LemlabError

LOCK_SUFFIX = ".lock"
_ATTEMPTS = 20
_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_USERINFO = re.compile(r"(//)[^/@\s]+@")  # scheme://user:secret@host -> scheme://***@host


class LockHeld(LemlabError):
    """Another process holds the lock (the message names it)."""


def lock_path(target: str | os.PathLike[str]) -> Path:
    p = Path(target)
    return p.with_name(p.name + LOCK_SUFFIX)


def _command_line() -> str:
    argv = list(sys.argv) or ["?"]
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    module = getattr(spec, "name", "") or ""
    if module in ("lemlab", "lemlab.__main__") or argv[0].endswith("lemlab"):
        argv[0:1] = ["lemlab"]
    elif module:
        argv[0:1] = [
            "python",
            "-m",
            module,
        ]  # e.g. the trainer: python -m lemlab.engine.train_child
    else:
        argv[0] = Path(argv[0]).name
    text = _USERINFO.sub(r"\1***@", shlex.join(argv))
    return text if len(text) <= 200 else text[:199] + "…"


def _holder_text(raw: bytes) -> str:
    """The holder as the lock file describes it, shown safely (it is text read from a file)."""
    try:
        info: Any = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        info = None
    if not isinstance(info, dict):
        return "another process (it has not described itself yet)"
    pid, host, cmd = info.get("pid"), info.get("host"), info.get("command")
    if pid == os.getpid() and host == socket.gethostname():
        return f"this lemlab (pid {pid})"
    parts = [f"pid {pid}" if isinstance(pid, int) else "pid ?"]
    if isinstance(host, str) and host:
        parts.append(f"on {host}")
    text = " ".join(parts)
    if isinstance(cmd, str) and cmd:
        text += f" ({cmd[:200]})"
    return _CONTROLS.sub("?", text)


class FileLock:
    """A held lock; `release()` (or the process ending) frees it. Also a context manager."""

    def __init__(self, fd: int, path: Path, target: Path) -> None:
        self._fd: int | None = fd
        self.path = path
        self.target = target

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        # Remove the file while still holding it: a process that opened it meanwhile finds it
        # gone once it gets the lock, and retries on a fresh file (see acquire).
        with contextlib.suppress(OSError):
            if os.stat(self.path).st_ino == os.fstat(fd).st_ino:
                os.unlink(self.path)
        os.close(fd)  # closing the descriptor releases the flock

    def __enter__(self) -> FileLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def __del__(self) -> None:
        # An owner dropped without release (a TUI job object): the descriptor still closes.
        with contextlib.suppress(Exception):
            self.release()


def acquire(target: str | os.PathLike[str], what: str = "") -> FileLock:
    """Lock `target` (its `<target>.lock` sidecar) for this process, or raise LockHeld naming
    the holder. `what` describes the target in the message ("session work", default its path)."""
    goal = Path(target)
    path = lock_path(goal)
    label = what or str(goal)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise LemlabError(f"cannot lock {label}: {exc.strerror or exc}") from None
    for _ in range(_ATTEMPTS):
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise LemlabError(f"cannot lock {label}: {exc.strerror or exc}: {path}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            raw = b""
            with contextlib.suppress(OSError):
                raw = os.pread(fd, 4096, 0)
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise LockHeld(
                    f"{label} is in use by {_holder_text(raw)}: wait for it to finish or stop it"
                ) from None
            raise LemlabError(f"cannot lock {label}: {exc.strerror or exc}") from None
        # The holder before us may have removed the file on release after we opened it: then
        # our lock is on a file nobody else will find; try again on the one at the path.
        try:
            current = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            current = False
        if not current:
            os.close(fd)
            continue
        _describe(fd)
        return FileLock(fd, path, goal)
    raise LemlabError(f"cannot lock {label}: its lock file {path} keeps changing")


def _describe(fd: int) -> None:
    info = {"pid": os.getpid(), "host": socket.gethostname(), "command": _command_line()}
    data = (json.dumps(info, ensure_ascii=False) + "\n").encode("utf-8")
    with contextlib.suppress(OSError):  # the description is a courtesy; the lock is the flock
        os.ftruncate(fd, 0)
        os.pwrite(fd, data, 0)


def ensure_free(target: str | os.PathLike[str], what: str = "") -> None:
    """Raise LockHeld (naming the holder) when another process holds `target`'s lock; else
    return at once, holding nothing (for a check before work another process will lock)."""
    if Path(target).parent.is_dir():  # no folder yet: nobody can hold it (and none is made)
        acquire(target, what).release()
