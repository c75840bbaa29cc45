"""Kernels: loading, sha256 of the bytes, NAME=PATH parsing, listing, and one-line errors."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from lemlab.core.battery.kernels import list_kernels, load_kernel, parse_kernel_arg
from lemlab.core.errors import LemlabError
from lemlab.core.paths import get_paths, repo_root


def _kernel(path: Path, text: str) -> Path:
    path.write_bytes(text.encode("utf-8"))
    return path


def test_load_kernel_text_and_sha256(tmp_path: Path) -> None:
    text = "Be honest — and kind.\nSecond line.\n"
    k = load_kernel(_kernel(tmp_path / "json-kernel.txt", text))
    assert k.name == "json-kernel" and k.text == text
    assert k.sha256 == hashlib.sha256(text.encode("utf-8")).hexdigest()
    assert k.size == len(text.encode("utf-8"))


def test_parse_kernel_arg_forms(tmp_path: Path) -> None:
    f = _kernel(tmp_path / "axioms.md", "principles")
    named = parse_kernel_arg(f"lek={f}")
    assert (named.name, named.path, named.text) == ("lek", f, "principles")
    assert parse_kernel_arg(str(f)).name == "axioms"
    # A path whose folder contains '=' is still a path, not NAME=PATH.
    odd_dir = tmp_path / "a=b"
    odd_dir.mkdir()
    odd = _kernel(odd_dir / "k.txt", "x")
    assert parse_kernel_arg(str(odd)).name == "k"


def test_parse_kernel_arg_bare_name_finds_shipped_and_user(tmp_path: Path) -> None:
    demo = parse_kernel_arg("ethics-demo")
    assert demo.path.name == "ethics-demo.txt"
    kdir = get_paths().kernels_dir
    kdir.mkdir(parents=True)
    _kernel(kdir / "house.txt", "house rules")
    assert parse_kernel_arg("house").text == "house rules"


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (None, "no such file"),
        (b"", "file is empty"),
        (b"  \n\t\n", "file is empty"),
        (b"caf\xe9", "not UTF-8"),
    ],
)
def test_kernel_errors_one_line(tmp_path: Path, content: bytes | None, needle: str) -> None:
    f = tmp_path / "k.txt"
    if content is not None:
        f.write_bytes(content)
    with pytest.raises(LemlabError) as info:
        parse_kernel_arg(f"name={f}")
    assert needle in str(info.value) and "\n" not in str(info.value) and str(f) in str(info.value)


def test_kernel_arg_errors() -> None:
    with pytest.raises(LemlabError, match="missing path"):
        parse_kernel_arg("name=")
    with pytest.raises(LemlabError, match="empty kernel"):
        parse_kernel_arg("  ")
    with pytest.raises(LemlabError, match="no such file"):
        parse_kernel_arg("no-such-kernel")


def test_list_kernels_default_and_explicit(tmp_path: Path) -> None:
    names = {k.name: k for k in list_kernels()}
    assert {"ethics-demo", "ethics-long"} <= set(names)
    _kernel(tmp_path / "a.txt", "alpha")
    _kernel(tmp_path / "b.md", "beta")
    _kernel(tmp_path / "c.json", "{}")  # not a kernel suffix
    (tmp_path / "empty.txt").write_bytes(b"")
    listed = {k.name: k for k in list_kernels([tmp_path])}
    assert set(listed) == {"a", "b", "empty"}
    assert listed["a"].sha256 == hashlib.sha256(b"alpha").hexdigest()
    assert listed["empty"].error and not listed["a"].error


def test_shipped_kernels_sizes() -> None:
    root = repo_root()
    assert root is not None
    demo = load_kernel(root / "probes" / "kernels" / "ethics-demo.txt")
    assert 300 <= len(demo.text.split()) <= 600
    long = load_kernel(root / "probes" / "kernels" / "ethics-long.md")
    # >= 1,500 tokens: at ~4 characters a token for English prose, >= 6,000 characters; the
    # word count is the tighter check (~1.3 tokens a word).
    assert len(long.text) >= 7000 and len(long.text.split()) >= 1200
