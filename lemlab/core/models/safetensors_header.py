"""Read a safetensors file's header without loading any tensor (and without mlx).

Layout: 8-byte little-endian header length N, then N bytes of JSON mapping tensor name ->
{dtype, shape, data_offsets}, then the raw data. Reading the header alone gives names, dtypes
and shapes, hence parameter counts, in microseconds even for multi-GB files.
"""

from __future__ import annotations

import json
import math
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lemlab.core.atomic import write_bytes_atomic

# A real header is a few MB at most; anything bigger means a corrupt length prefix.
MAX_HEADER_BYTES = 100 * 1024 * 1024


class SafetensorsHeaderError(ValueError):
    """The file is not a readable safetensors file; the message says why, in one line."""


@dataclass(frozen=True)
class TensorInfo:
    name: str
    dtype: str  # safetensors dtype code: "F32", "BF16", "U32", ...
    shape: tuple[int, ...]

    @property
    def numel(self) -> int:
        return math.prod(self.shape)


def read_header(path: str | Path) -> dict[str, TensorInfo]:
    """Tensor name -> TensorInfo. Raises SafetensorsHeaderError on a corrupt or truncated file."""
    p = Path(path)
    try:
        with p.open("rb") as fh:
            size = p.stat().st_size
            raw_len = fh.read(8)
            if len(raw_len) < 8:
                raise SafetensorsHeaderError(f"{p.name}: file too short for a safetensors header")
            (n,) = struct.unpack("<Q", raw_len)
            if n > MAX_HEADER_BYTES or n > size - 8:
                raise SafetensorsHeaderError(f"{p.name}: header length {n} exceeds the file")
            raw = fh.read(n)
    except OSError as exc:
        raise SafetensorsHeaderError(f"{p.name}: cannot read ({exc.strerror or exc})") from exc
    try:
        header = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise SafetensorsHeaderError(f"{p.name}: header is not valid JSON") from exc
    if not isinstance(header, dict):
        raise SafetensorsHeaderError(f"{p.name}: header is not a JSON object")
    return _parse_entries(p.name, header, data_bytes=size - 8 - n)


def _parse_entries(name: str, header: dict[str, Any], data_bytes: int) -> dict[str, TensorInfo]:
    out: dict[str, TensorInfo] = {}
    for key, entry in header.items():
        if key == "__metadata__":
            continue
        try:
            dtype = str(entry["dtype"])
            shape = tuple(int(d) for d in entry["shape"])
            start, end = (int(x) for x in entry["data_offsets"])
        except (KeyError, TypeError, ValueError) as exc:
            raise SafetensorsHeaderError(f"{name}: malformed entry for tensor {key!r}") from exc
        if end > data_bytes or start > end:
            # The usual sign of an interrupted download or copy.
            raise SafetensorsHeaderError(f"{name}: truncated (tensor {key!r} runs past the end)")
        out[key] = TensorInfo(key, dtype, shape)
    return out


def write_safetensors(
    path: str | Path, tensors: dict[str, tuple[str, tuple[int, ...], bytes]]
) -> None:
    """Write a minimal safetensors file: name -> (dtype code, shape, raw little-endian bytes).

    For tests and fixtures (no numpy or mlx needed); real weights come from mlx-lm.
    """
    header: dict[str, object] = {}
    offset = 0
    for key, (dtype, shape, data) in tensors.items():
        header[key] = {
            "dtype": dtype,
            "shape": list(shape),
            "data_offsets": [offset, offset + len(data)],
        }
        offset += len(data)
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)  # the format pads the header to 8-byte alignment
    body = b"".join(data for _, _, data in tensors.values())
    write_bytes_atomic(path, struct.pack("<Q", len(raw)) + raw + body)
