"""A real terminal: `lemlab --demo` in tmux (120x40) builds and loads the demo model, streams a
reply to a typed message, and quits with status 0. Textual draws on stderr: not redirected."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

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
        screen = _tmux("capture-pane", "-p", "-t", name)
        if test(screen):
            return screen
        time.sleep(0.2)
    raise AssertionError(f"timed out; screen was:\n{screen}")


def test_demo_in_a_real_terminal(lemlab_home: Path) -> None:
    name = f"lemlab-test-{uuid.uuid4().hex[:8]}"
    _tmux("new-session", "-d", "-s", name, "-x", "120", "-y", "40",
          "-e", f"LEMLAB_HOME={lemlab_home}", "-e", "MLX_DISABLE_COMPILE=1",
          str(LEMLAB), "--demo", "--session", "tmux-demo")  # fmt: skip
    try:
        _tmux("set-option", "-w", "-t", name, "remain-on-exit", "on")
        screen = _wait_for(name, lambda s: "DEMO: random weights" in s and "Chat" in s)
        assert "Models" in screen and "Battery" in screen and "Training" in screen
        _tmux("send-keys", "-t", name, "-l", "hello lab")
        _tmux("send-keys", "-t", name, "Enter")
        screen = _wait_for(name, lambda s: "assistant" in s and "tok/s" in s)
        assert "hello lab" in screen
        _tmux("send-keys", "-t", name, "C-q")
        _wait_for(name, lambda s: _tmux("display-message", "-p", "-t", name, "#{pane_dead}").strip() == "1", 20)
        status = _tmux("display-message", "-p", "-t", name, "#{pane_dead_status}").strip()
        assert status == "0", _tmux("capture-pane", "-p", "-t", name)
    finally:
        subprocess.run(["tmux", "kill-session", "-t", name], capture_output=True)
    session = lemlab_home / "data" / "sessions" / "tmux-demo.toml"
    assert "hello lab" in session.read_text()
