"""Environment failures reach the user as one line, and never corrupt what was on disk."""

from __future__ import annotations

import resource
import shutil
import signal
import subprocess
import sys
from pathlib import Path

FIXTURES = Path(__file__).parent / "fixtures"


def _limit_file_size() -> None:
    # A file-size limit makes writes fail the way a full disk does (EFBIG instead of ENOSPC);
    # ignoring SIGXFSZ turns the default kill into an OSError the program must handle.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (300, 300))


def test_full_disk_is_one_line_and_keeps_the_old_file(tmp_path: Path) -> None:
    src = tmp_path / "old-run.jsonl"
    shutil.copy(FIXTURES / "abfile-v1-sample.jsonl", src)
    out = tmp_path / "rescored.jsonl"
    out.write_text("the user's previous rescored file\n")

    proc = subprocess.run(
        [sys.executable, "-m", "lemlab", "rescore", str(src), "--out", str(out), "--force"],
        capture_output=True,
        text=True,
        preexec_fn=_limit_file_size,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("lemlab: error: "), proc.stderr
    assert "too large" in lines[0].lower() and "nothing was half-written" in lines[0]
    assert "Traceback" not in proc.stderr
    assert out.read_text() == "the user's previous rescored file\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old-run.jsonl", "rescored.jsonl"]


def test_same_rescore_without_the_limit_succeeds(tmp_path: Path) -> None:
    # The control: the failure above comes from the limit, not from the input.
    src = tmp_path / "old-run.jsonl"
    shutil.copy(FIXTURES / "abfile-v1-sample.jsonl", src)
    out = tmp_path / "rescored.jsonl"
    proc = subprocess.run(
        [sys.executable, "-m", "lemlab", "rescore", str(src), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert out.stat().st_size > 300
