"""Read and check a GGUF file's header without MLX: metadata, tensor table, and whether every
tensor's data lies inside the file.

mlx.core.load reads GGUF itself, but on a truncated or corrupt file it can fail deep in C++ (or
read past the end); checking the header here first turns every such file into one clear line.
It also lets `lemlab models` describe a GGUF without importing MLX.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from lemlab.core.errors import LemlabError

MAGIC = b"GGUF"
DEFAULT_ALIGNMENT = 32

# ggml tensor types: id -> (name, elements per block, bytes per block).
GGML_TYPES: dict[int, tuple[str, int, int]] = {
    0: ("F32", 1, 4),
    1: ("F16", 1, 2),
    2: ("Q4_0", 32, 18),
    3: ("Q4_1", 32, 20),
    6: ("Q5_0", 32, 22),
    7: ("Q5_1", 32, 24),
    8: ("Q8_0", 32, 34),
    9: ("Q8_1", 32, 36),
    10: ("Q2_K", 256, 84),
    11: ("Q3_K", 256, 110),
    12: ("Q4_K", 256, 144),
    13: ("Q5_K", 256, 176),
    14: ("Q6_K", 256, 210),
    15: ("Q8_K", 256, 292),
    24: ("I8", 1, 1),
    25: ("I16", 1, 2),
    26: ("I32", 1, 4),
    27: ("I64", 1, 8),
    28: ("F64", 1, 8),
    30: ("BF16", 1, 2),
}

# Types whose blocks mlx.core.load turns into MLX arrays lemlab can import: float tensors as
# they are, and the three block formats MLX maps onto its own affine quantization.
IMPORTABLE = {"F32", "F16", "BF16", "Q4_0", "Q4_1", "Q8_0"}
# (bits, group size) of the affine MLX layout each quantized type becomes.
QUANT_LAYOUT = {"Q4_0": (4, 32), "Q4_1": (4, 32), "Q8_0": (8, 32)}

# Metadata value types.
_SCALARS = {
    0: "<B",
    1: "<b",
    2: "<H",
    3: "<h",
    4: "<I",
    5: "<i",
    6: "<f",
    7: "<?",
    10: "<Q",
    11: "<q",
    12: "<d",
}
_STRING, _ARRAY = 8, 9
_MAX_COUNT = 1 << 24  # tensors, keys or array items: far above any real model, far below a bomb
_MAX_DIMS = 8


@dataclass(frozen=True)
class TensorInfo:
    name: str
    shape: tuple[int, ...]  # row-major (numpy/MLX order): GGUF's dims reversed
    type_name: str
    offset: int  # from the start of the data section
    nbytes: int


@dataclass
class GgufHeader:
    path: Path
    version: int
    metadata: dict[str, Any] = field(default_factory=dict)
    tensors: list[TensorInfo] = field(default_factory=list)
    data_offset: int = 0

    @property
    def architecture(self) -> str:
        return str(self.metadata.get("general.architecture", "unknown"))

    def tensor(self, name: str) -> TensorInfo | None:
        return next((t for t in self.tensors if t.name == name), None)


class _Reader:
    def __init__(self, f: BinaryIO, size: int, where: str) -> None:
        self.f, self.size, self.where = f, size, where

    def bad(self, what: str) -> LemlabError:
        return LemlabError(f"{self.where}: not a valid GGUF file ({what})")

    def take(self, n: int) -> bytes:
        if n < 0 or self.f.tell() + n > self.size:
            raise self.bad("it ends early: truncated?")
        return self.f.read(n)

    def unpack(self, fmt: str) -> Any:
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))[0]

    def count(self) -> int:
        n = self.unpack("<Q")
        if n > _MAX_COUNT:
            raise self.bad(f"a count of {n} is implausible")
        return int(n)

    def string(self) -> str:
        raw = self.take(self.unpack("<Q"))
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise self.bad("a string is not UTF-8") from None

    def value(self, vtype: int) -> Any:
        if vtype in _SCALARS:
            return self.unpack(_SCALARS[vtype])
        if vtype == _STRING:
            return self.string()
        if vtype == _ARRAY:
            item_type, n = self.unpack("<I"), self.count()
            if item_type in _SCALARS:
                fmt = _SCALARS[item_type]
                width = struct.calcsize(fmt)
                return list(struct.unpack(f"<{n}{fmt[1]}", self.take(n * width)))
            if item_type == _STRING:
                return [self.string() for _ in range(n)]
            raise self.bad(f"array of value type {item_type} is not supported")
        raise self.bad(f"unknown metadata value type {vtype}")


def read_gguf_header(path: str | Path) -> GgufHeader:
    """Parse the header and check the tensor table against the file size. Raises LemlabError
    with one line for anything that is not a complete, well-formed GGUF file."""
    path = Path(path)
    where = path.name
    try:
        size = path.stat().st_size
        f = path.open("rb")
    except OSError as exc:
        raise LemlabError(f"cannot read {path}: {exc.strerror or exc}") from None
    with f:
        r = _Reader(f, size, where)
        if size < 24 or f.read(4) != MAGIC:
            raise LemlabError(f"{where}: not a GGUF file (no GGUF magic at the start)")
        version = r.unpack("<I")
        if version not in (2, 3):
            raise r.bad(f"version {version}; lemlab reads versions 2 and 3")
        n_tensors, n_kv = r.count(), r.count()
        header = GgufHeader(path, version)
        for _ in range(n_kv):
            key = r.string()
            header.metadata[key] = r.value(r.unpack("<I"))
        infos = []
        for _ in range(n_tensors):
            name = r.string()
            n_dims = r.unpack("<I")
            if not 1 <= n_dims <= _MAX_DIMS:
                raise r.bad(f"tensor {name} has {n_dims} dimensions")
            dims = [r.unpack("<Q") for _ in range(n_dims)]
            type_id, offset = r.unpack("<I"), r.unpack("<Q")
            infos.append((name, dims, type_id, offset))
        alignment = int(header.metadata.get("general.alignment", DEFAULT_ALIGNMENT) or 0)
        if alignment <= 0 or alignment & (alignment - 1):
            raise r.bad(f"alignment {alignment} is not a power of two")
        pos = f.tell()
        header.data_offset = pos + (-pos % alignment)
        for name, dims, type_id, offset in infos:
            header.tensors.append(_tensor_info(r, name, dims, type_id, offset))
            end = header.data_offset + offset + header.tensors[-1].nbytes
            if end > size:
                raise r.bad(f"tensor {name} runs past the end of the file: truncated?")
    return header


def _tensor_info(r: _Reader, name: str, dims: list[int], type_id: int, offset: int) -> TensorInfo:
    if type_id not in GGML_TYPES:
        raise r.bad(f"tensor {name} has unknown type id {type_id}")
    type_name, block, block_bytes = GGML_TYPES[type_id]
    elements = 1
    for d in dims:
        if d <= 0 or d > 1 << 40:
            raise r.bad(f"tensor {name} has dimension {d}")
        elements *= d
    if dims[0] % block:
        raise r.bad(f"tensor {name}: rows of {dims[0]} do not fill {type_name} blocks")
    return TensorInfo(
        name, tuple(reversed(dims)), type_name, offset, elements // block * block_bytes
    )
