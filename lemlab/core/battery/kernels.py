"""Kernels: text files whose content becomes the system message of a condition.

A kernel is identified by its name and the sha256 of its UTF-8 bytes, so a run records exactly
which text it used. Headless: no textual or mlx imports.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from lemlab.core import limits
from lemlab.core.battery.probes import shipped_probe_dirs
from lemlab.core.errors import LemlabError
from lemlab.core.files.user_files import decode_utf8, read_file_bytes
from lemlab.core.paths import get_paths

KERNEL_SUFFIXES = (".txt", ".md")


@dataclass(frozen=True)
class Kernel:
    name: str
    path: Path
    text: str
    sha256: str  # hex digest of text.encode("utf-8"), i.e. of the file's bytes

    @property
    def size(self) -> int:
        return len(self.text.encode("utf-8"))


@dataclass(frozen=True)
class KernelInfo:
    name: str
    path: Path
    size: int
    sha256: str
    error: str = ""  # set when the file is unusable; listings still show it


def load_kernel(path: str | Path, name: str | None = None) -> Kernel:
    """Read a kernel file. Missing, empty (or whitespace-only) and non-UTF-8 files are errors."""
    p = Path(path).expanduser()
    try:
        size = p.stat().st_size
    except OSError:
        size = 0  # read_file_bytes words the error
    if size > limits.cap(limits.PROMPT_CHARS * 4):  # a system prompt: the prompt cap, in bytes
        raise LemlabError(
            f"kernel {p}: " + limits.over("the file", size, limits.PROMPT_CHARS * 4, "bytes")
        )
    data = read_file_bytes(p, f"kernel {p}", "text file")
    text = decode_utf8(data, f"kernel {p}")
    if not text.strip():
        raise LemlabError(f"kernel {p}: file is empty")
    return Kernel(name or p.stem, p, text, hashlib.sha256(data).hexdigest())


def parse_kernel_arg(arg: str, dirs: Iterable[str | Path] | None = None) -> Kernel:
    """`name=path`, `path` (name = file stem), or the bare name of a known kernel
    (e.g. `ethics-demo`, looked up with find_kernel)."""
    arg = arg.strip()
    if not arg:
        raise LemlabError("empty kernel argument (use NAME=PATH or PATH)")
    name, sep, rest = arg.partition("=")
    # A path may itself contain '='; only treat the prefix as a name when it is not path-like.
    literal_file = Path(arg).expanduser().is_file() and not Path(rest).expanduser().exists()
    if sep and name and "/" not in name and "\\" not in name and not literal_file:
        if not rest:
            raise LemlabError(f"kernel {arg!r}: missing path after '='")
        return load_kernel(rest, name=name.strip())
    path = Path(arg).expanduser()
    if not path.exists() and "/" not in arg and not path.suffix:
        found = find_kernel(arg, dirs)
        if found is not None:
            return load_kernel(found)
    return load_kernel(path)


def default_kernel_dirs() -> list[Path]:
    """Shipped probes/kernels folders, then the user's kernels folder."""
    return [d / "kernels" for d in shipped_probe_dirs()] + [get_paths().kernels_dir]


def _kernel_files(dirs: Iterable[str | Path] | None) -> list[Path]:
    seen: set[Path] = set()
    files: list[Path] = []
    for d in default_kernel_dirs() if dirs is None else [Path(x) for x in dirs]:
        if not d.is_dir() or d.resolve() in seen:
            continue
        seen.add(d.resolve())
        files += [
            f
            for f in sorted(d.iterdir())
            if f.is_file() and f.suffix.lower() in KERNEL_SUFFIXES and not f.name.startswith(".")
        ]
    return files


def find_kernel(name: str, dirs: Iterable[str | Path] | None = None) -> Path | None:
    for f in _kernel_files(dirs):
        if f.stem == name:
            return f
    return None


def list_kernels(dirs: Iterable[str | Path] | None = None) -> list[KernelInfo]:
    """Kernels in `dirs` (default: default_kernel_dirs()); the first of each name wins."""
    out: list[KernelInfo] = []
    seen: set[str] = set()
    for f in _kernel_files(dirs):
        if f.stem in seen:
            continue
        seen.add(f.stem)
        try:
            k = load_kernel(f)
            out.append(KernelInfo(k.name, f, k.size, k.sha256))
        except LemlabError as exc:
            out.append(KernelInfo(f.stem, f, f.stat().st_size, "", str(exc)))
    return out
