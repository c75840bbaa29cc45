"""The overwrite check of commands that write files a user may want to keep (`rescore --out`,
`extract --output`, `rephrase --output`): an existing output is replaced only with --force, and
an output that is one of the command's own inputs is refused even then. Paths compare as the
files they are (resolved, and by inode when both exist: a symlink or hard link to the input is
the input). Headless: no mlx."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from lemlab.core.errors import LemlabError


def same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (yet)
        return a.expanduser().resolve() == b.expanduser().resolve()


def check_outputs(
    targets: Sequence[Path], inputs: Iterable[Path | None], *, force: bool, flag: str = "--output"
) -> None:
    """Raise one line if writing `targets` would destroy an input, or replace an existing file
    without `force`. Call before anything is read into or written out of the command."""
    sources = [p for p in inputs if p is not None]
    for target in targets:
        for src in sources:
            if same_file(target, src):
                raise LemlabError(
                    f"{flag} would replace its own input {src}: write to another file"
                )
    if force:
        return
    existing = [t for t in targets if t.exists()]
    if existing:
        more = f" (and {len(existing) - 1} more)" if len(existing) > 1 else ""
        raise LemlabError(f"{existing[0]} already exists{more}: add --force to replace it")
