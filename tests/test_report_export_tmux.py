"""A real terminal: `lemlab` in tmux (120x40, no model needed) opens a run file on the Battery
tab, runs the palette's "Battery: export report (HTML)" and shows the written file's path in a
toast; the page holds every probe of the run."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from support.battery import SMALL_RUN, copy_fixture

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed (apt-get install tmux)"),
]
LEMLAB = Path(sys.executable).with_name("lemlab")


def _tmux(*args: str) -> str:
    return subprocess.run(["tmux", *args], capture_output=True, text=True, check=True).stdout


def _wait_for(name: str, test: Callable[[str], bool], timeout: float = 60.0) -> str:
    deadline = time.monotonic() + timeout
    screen = ""
    while time.monotonic() < deadline:
        screen = _tmux("capture-pane", "-p", "-J", "-t", name)  # -J: a wrapped toast line joined
        if test(screen):
            return screen
        time.sleep(0.2)
    raise AssertionError(f"timed out; screen was:\n{screen}")


def test_battery_html_export_from_the_palette_in_a_real_terminal(lemlab_home: Path, tmp_path: Path) -> None:
    run_file = copy_fixture(SMALL_RUN, tmp_path / "runs")
    out = lemlab_home / "data" / "exports" / "tmux-export" / "run_small.report.html"
    name = f"lemlab-test-{uuid.uuid4().hex[:8]}"
    _tmux("new-session", "-d", "-s", name, "-x", "120", "-y", "40",
          "-e", f"LEMLAB_HOME={lemlab_home}", "-e", "MLX_DISABLE_COMPILE=1",
          str(LEMLAB), "--session", "tmux-export")  # fmt: skip
    try:
        _wait_for(name, lambda s: "Battery" in s and "Palette" in s)
        _tmux("send-keys", "-t", name, "F4")
        _wait_for(name, lambda s: "open a run file" in s)
        _tmux("send-keys", "-t", name, "l")
        _wait_for(name, lambda s: "A/B JSONL file to open" in s)
        _tmux("send-keys", "-t", name, "-l", str(run_file))
        _tmux("send-keys", "-t", name, "Enter")
        _wait_for(name, lambda s: "Summary of 6 of 6 probes" in s)
        _tmux("send-keys", "-t", name, "C-p")
        _wait_for(name, lambda s: "Open session…" in s)  # the palette is up: type into it
        _tmux("send-keys", "-t", name, "-l", "Battery: export report")
        _wait_for(name, lambda s: "Battery: export report (HTML)" in s)
        _tmux("send-keys", "-t", name, "Enter")
        screen = _wait_for(name, lambda s: "report written:" in s)
        # The toast, a column at the right edge; a long path is folded over its lines.
        toast = "".join(ln.rsplit("▌", 1)[1].strip() for ln in screen.splitlines() if "▌" in ln)
        assert toast.startswith("report written:") and str(out) in toast
        _tmux("send-keys", "-t", name, "C-q")
    finally:
        subprocess.run(["tmux", "kill-session", "-t", name], capture_output=True)
    page = out.read_text(encoding="utf-8")
    for pid in ("taiwan_direct", "taiwan_baltic", "xinjiang", "tiananmen", "gov_criticism", "emotional"):
        assert f"<summary>{pid} ·" in page
