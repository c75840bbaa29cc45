"""Issue 16 in a real terminal: the TUI (tmux, fake engine) opens an A/B file whose response
holds ESC sequences that clear the screen and retitle the terminal. With the cursor on that
cell the terminal shows the sequences as visible symbols, and its title is untouched (tmux
records an OSC 0 title it receives in #{pane_title})."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from lemlab.core.ab.abfile import condition_entry, probe_line, summarize

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed"),
]
LEMLAB = Path(sys.executable).with_name("lemlab")


def _tmux(*args: str) -> str:
    return subprocess.run(["tmux", *args], capture_output=True, text=True, check=True).stdout


def _wait_for(name: str, test: Callable[[str], bool], timeout: float = 60.0) -> str:
    deadline = time.monotonic() + timeout
    screen = ""
    while time.monotonic() < deadline:
        screen = _tmux("capture-pane", "-p", "-t", name)
        if test(screen):
            return screen
        time.sleep(0.2)
    raise AssertionError(f"timed out; screen was:\n{screen}")


def test_battery_pane_in_a_real_terminal_shows_escape_sequences(
    lemlab_home: Path, tmp_path: Path
) -> None:
    conds = {
        "baseline": condition_entry("a calm answer", {"lek_score": 1.0}, 1.0),
        "kernel": condition_entry("evil\x1b[2J\x1b]0;pwned\x07 after", {"lek_score": 2.0}, 1.0),
    }
    probes = [probe_line("p1", "cat", "prompt", conds, ts="T")]
    run = tmp_path / "hostile.jsonl"
    run.write_text("".join(json.dumps(x) + "\n" for x in
                           [*probes, summarize(probes, "m", 1, 8, list(conds), ts="T")]))  # fmt: skip
    name = f"lemlab-safe-{uuid.uuid4().hex[:8]}"
    _tmux("new-session", "-d", "-s", name, "-x", "120", "-y", "40",
          "-e", f"LEMLAB_HOME={lemlab_home}", "-e", "LEMLAB_FAKE_ENGINE=1",
          str(LEMLAB), "--session", "tmux-safe")  # fmt: skip
    try:
        _tmux("select-pane", "-t", name, "-T", "lemlab-test-title")
        _wait_for(name, lambda s: "Battery" in s and "Chat" in s)
        _tmux("send-keys", "-t", name, "F4")
        _wait_for(name, lambda s: "l open a run file" in s)
        time.sleep(0.5)  # the pane takes focus after its tab shows
        _tmux("send-keys", "-t", name, "l")
        _wait_for(name, lambda s: "A/B JSONL file to open" in s)
        _tmux("send-keys", "-t", name, "-l", str(run))
        _tmux("send-keys", "-t", name, "Enter")
        _wait_for(name, lambda s: "p1" in s and "kernel" in s)
        _tmux("send-keys", "-t", name, "Right", "Right", "Right")
        screen = _wait_for(name, lambda s: "kernel: evil" in s)
        assert "kernel: evil␛[2J␛]0;pwned␇ after" in screen
        assert _tmux("display", "-p", "-t", name, "#{pane_title}").strip() == "lemlab-test-title"
        _tmux("send-keys", "-t", name, "C-q")
    finally:
        subprocess.run(["tmux", "kill-session", "-t", name], capture_output=True)
