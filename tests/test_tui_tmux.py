"""A real terminal: `lemlab --demo` in tmux (120x40) opens on the embedded model (the real
SmolLM2 when installed, the random-weight one with LEMLAB_DEMO_MODEL=random), streams a reply to
a typed message, and quits with status 0. Textual draws on stderr: not redirected."""

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
# Runs the command with the terminal untouched (stderr included) and records its exit status;
# tmux's own #{pane_dead_status} came back empty on this tmux (3.3a) now and then.
RECORD_STATUS = (
    "import pathlib, subprocess, sys; rc = subprocess.call(sys.argv[2:]); "
    "pathlib.Path(sys.argv[1]).write_text(str(rc))"
)


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


def test_demo_in_a_real_terminal(lemlab_home: Path, tmp_path: Path) -> None:
    name = f"lemlab-test-{uuid.uuid4().hex[:8]}"
    status_file = tmp_path / "status"
    _tmux("new-session", "-d", "-s", name, "-x", "120", "-y", "40",
          "-e", f"LEMLAB_HOME={lemlab_home}", "-e", "MLX_DISABLE_COMPILE=1",
          "-e", "LEMLAB_DEMO_MODEL=random",
          sys.executable, "-c", RECORD_STATUS, str(status_file),
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
        _wait_for(name, lambda s: status_file.exists(), 30)
        assert status_file.read_text() == "0"
    finally:
        subprocess.run(["tmux", "kill-session", "-t", name], capture_output=True)
    session = lemlab_home / "data" / "sessions" / "tmux-demo.toml"
    assert "hello lab" in session.read_text()


@pytest.mark.real_model
def test_demo_opens_on_the_real_model_and_answers_in_english(
    lemlab_home: Path, tmp_path: Path, real_model: Path
) -> None:
    """What a new user sees after `make run`: the real model, labelled by name and as the demo,
    converted once into the cache, answering a plain question in English."""
    name = f"lemlab-test-{uuid.uuid4().hex[:8]}"
    status_file = tmp_path / "status"
    _tmux("new-session", "-d", "-s", name, "-x", "120", "-y", "40",
          "-e", f"LEMLAB_HOME={lemlab_home}", "-e", "MLX_DISABLE_COMPILE=1",
          sys.executable, "-c", RECORD_STATUS, str(status_file),
          str(LEMLAB), "--demo", "--session", "tmux-real")  # fmt: skip
    try:
        _tmux("set-option", "-w", "-t", name, "remain-on-exit", "on")
        screen = _wait_for(name, lambda s: "SmolLM2-135M-Instruct (demo)" in s, 120)
        assert "DEMO: random weights" not in screen
        _tmux("send-keys", "-t", name, "-l", "What is the capital of France?")
        _tmux("send-keys", "-t", name, "Enter")
        screen = _wait_for(name, lambda s: "Paris" in s, 240)
        _tmux("send-keys", "-t", name, "Escape")
        _tmux("send-keys", "-t", name, "C-q")
        _wait_for(name, lambda s: status_file.exists(), 60)
        assert status_file.read_text() == "0"
    finally:
        subprocess.run(["tmux", "kill-session", "-t", name], capture_output=True)
    converted = lemlab_home / "cache" / "demo-models" / "SmolLM2-135M-Instruct"
    assert (converted / "config.json").is_file()
    assert [p.name for p in converted.parent.iterdir()] == ["SmolLM2-135M-Instruct"]  # no leftovers
