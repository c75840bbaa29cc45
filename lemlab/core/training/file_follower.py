"""Tail a file that another process is still writing: complete lines only, and a restart from
the top when the file is truncated or rewritten in place.

The follower holds the file open, so it reads what the writer writes even after the name has
moved on: a trainer keeps appending to the file it opened when events.jsonl is rotated
(renamed, a new file under the name). What happens then depends on `follow_name`:

- True (the default, `tail -F`): the rest of the old file is read first, then the follower
  switches to the file now under the name (reset). A name with no file behind it keeps the old
  one followed until a new file appears.
- False (`tail -f`, for a run being watched to its end: `lemlab train`, `lemlab watch`): the
  follower stays with the file it opened, wherever it is renamed, so the run's last events are
  never lost to a rotation.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import BinaryIO

_CHUNK = 1 << 20
_HEAD_BYTES = 64  # a changed head means the file was rewritten, even if it regrew past us


class LineFollower:
    """Poll-based follower. `poll()` returns (new complete lines, reset) where reset=True means
    the lines start again from the beginning of a file (truncated, rewritten, or another file
    under the name): callers should drop what they built from earlier lines. A missing file is
    not an error (yet to be created, or mid-rotation): poll returns ([], False) until it appears."""

    def __init__(self, path: str | os.PathLike[str], *, follow_name: bool = True) -> None:
        self.path = Path(path)
        self.follow_name = follow_name
        self._fh: BinaryIO | None = None
        self._identity: tuple[int, int] | None = None
        self._offset = 0
        self._partial = b""
        self._head = b""

    @property
    def offset(self) -> int:
        """Bytes consumed so far, including a held-back partial last line."""
        return self._offset

    def poll(self) -> tuple[list[str], bool]:
        reset = False
        if self._fh is not None and self.follow_name and self._name_moved():
            lines = self._read_new()  # the old file's last lines come first...
            if lines or not self.path.exists():
                return lines, False
            self.close()  # ...then the file now under the name, from its top
            self._restart()
            reset = True
        if self._fh is None and not self._open():
            return [], reset
        assert self._fh is not None
        size = os.fstat(self._fh.fileno()).st_size
        if size < self._offset or (self._head and self._read_head() != self._head):
            self._restart()  # truncated, or rewritten in place
            reset = True
        return self._read_new(), reset

    def close(self) -> None:
        fh, self._fh = self._fh, None
        if fh is not None:
            with contextlib.suppress(OSError):
                fh.close()

    def __del__(self) -> None:
        self.close()

    # -- internals -----------------------------------------------------------------------------
    def _open(self) -> bool:
        try:
            self._fh = open(self.path, "rb")  # noqa: SIM115 - held open while following
        except OSError:
            return False
        st = os.fstat(self._fh.fileno())
        self._identity = (st.st_dev, st.st_ino)
        return True

    def _restart(self) -> None:
        self._offset, self._partial, self._head = 0, b"", b""

    def _name_moved(self) -> bool:
        try:
            st = os.stat(self.path)
        except OSError:
            return True
        return (st.st_dev, st.st_ino) != self._identity

    def _read_head(self) -> bytes:
        assert self._fh is not None
        try:
            return os.pread(self._fh.fileno(), len(self._head), 0)
        except OSError:
            return b""

    def _read_new(self) -> list[str]:
        fh = self._fh
        if fh is None:
            return []
        parts: list[bytes] = []
        try:
            if len(self._head) < _HEAD_BYTES:
                self._head = os.pread(fh.fileno(), _HEAD_BYTES, 0)
            fh.seek(self._offset)
            while chunk := fh.read(_CHUNK):
                parts.append(chunk)
        except OSError:
            return []
        data = b"".join(parts)
        self._offset += len(data)
        return self._split(data)

    def _split(self, data: bytes) -> list[str]:
        if not data:
            return []
        buf = self._partial + data
        cut = buf.rfind(b"\n")
        if cut < 0:
            self._partial = buf
            return []
        self._partial = buf[cut + 1 :]
        return buf[:cut].decode("utf-8", errors="replace").split("\n")
