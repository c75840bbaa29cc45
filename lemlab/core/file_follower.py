"""Tail a file that another process is still writing: complete lines only, and a restart from
the top when the file is truncated, replaced (rotation) or rewritten in place."""

from __future__ import annotations

import os
from pathlib import Path

_CHUNK = 1 << 20
_HEAD_BYTES = 64  # a changed head means the file was rewritten, even if it regrew past us


class LineFollower:
    """Poll-based follower. `poll()` returns (new complete lines, reset) where reset=True means
    the file was truncated or replaced and the lines start again from its beginning: callers
    should drop what they built from earlier lines. A missing file is not an error (yet to be
    created, or mid-rotation): poll returns ([], False) until it appears."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._identity: tuple[int, int] | None = None
        self._offset = 0
        self._partial = b""
        self._head = b""

    @property
    def offset(self) -> int:
        """Bytes consumed so far, including a held-back partial last line."""
        return self._offset

    def poll(self) -> tuple[list[str], bool]:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return [], False
        reset = self._needs_reset(st)
        if reset:
            self._offset, self._partial, self._head = 0, b"", b""
        self._identity = (st.st_dev, st.st_ino)
        if st.st_size <= self._offset:
            return [], reset
        data = self._read_from(self._offset)
        self._offset += len(data)
        return self._split(data), reset

    def _needs_reset(self, st: os.stat_result) -> bool:
        if self._identity is None:
            return False
        if (st.st_dev, st.st_ino) != self._identity or st.st_size < self._offset:
            return True
        if self._head and self._read_head() != self._head:
            return True
        return False

    def _read_head(self) -> bytes:
        try:
            with open(self.path, "rb") as fh:
                return fh.read(len(self._head))
        except OSError:
            return b""

    def _read_from(self, offset: int) -> bytes:
        parts: list[bytes] = []
        with open(self.path, "rb") as fh:
            if len(self._head) < _HEAD_BYTES:
                self._head = fh.read(_HEAD_BYTES)
            fh.seek(offset)
            while chunk := fh.read(_CHUNK):
                parts.append(chunk)
        return b"".join(parts)

    def _split(self, data: bytes) -> list[str]:
        buf = self._partial + data
        cut = buf.rfind(b"\n")
        if cut < 0:
            self._partial = buf
            return []
        self._partial = buf[cut + 1 :]
        return buf[:cut].decode("utf-8", errors="replace").split("\n")
