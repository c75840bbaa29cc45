"""Helpers for the tests that drive lemlab in a real terminal (tmux): a detached session, keys,
the pane's text, waiting for it to show something."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest

LEMLAB = Path(sys.executable).with_name("lemlab")
NEEDS_TMUX = pytest.mark.skipif(
    shutil.which("tmux") is None, reason="tmux is not installed (apt-get install tmux)"
)
# Runs the command with the terminal untouched (stderr included), writes its exit status to a
# file, then keeps the pane open for a while; tmux's own #{pane_dead_status} came back empty on
# tmux 3.3a now and then, and its dead-pane notice scrolls the last screen by a row.
RECORD_STATUS = (
    "import pathlib, subprocess, sys, time; rc = subprocess.call(sys.argv[3:]); "
    "pathlib.Path(sys.argv[1]).write_text(str(rc)); time.sleep(float(sys.argv[2]))"
)


def tmux(*args: str) -> str:
    """Runs one tmux command and returns its stdout; raises CalledProcessError if it fails."""
    return subprocess.run(["tmux", *args], capture_output=True, text=True, check=True).stdout


def recording_status(status_file: Path, *command: str | Path, hold: float = 0.0) -> list[str]:
    """`command` wrapped so that its exit status lands in `status_file`; the wrapper lives on
    `hold` seconds after (the pane, and the command's last screen, stay that long)."""
    return [sys.executable, "-c", RECORD_STATUS, str(status_file), str(hold), *map(str, command)]


@contextmanager
def tmux_session(
    prefix: str,
    command: Sequence[str | Path],
    env: Mapping[str, str],
    *,
    width: int = 120,
    height: int = 40,
    stop_keys: str | None = None,
) -> Iterator[str]:
    """A detached session (named `prefix`-random) running `command` with `env` added, yielded by
    name and killed at the end; `stop_keys` (e.g. "C-q") are sent a second before the kill."""
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    env_args = [arg for key, value in env.items() for arg in ("-e", f"{key}={value}")]
    size = ["-x", str(width), "-y", str(height)]
    tmux("new-session", "-d", "-s", name, *size, *env_args, *map(str, command))
    try:
        yield name
    finally:
        if stop_keys is not None:
            subprocess.run(["tmux", "send-keys", "-t", name, stop_keys], capture_output=True)
            time.sleep(1.0)
        subprocess.run(["tmux", "kill-session", "-t", name], capture_output=True)


def send_keys(name: str, *keys: str) -> None:
    """Presses keys by tmux name ("Enter", "F4", "C-q") in the session's pane."""
    tmux("send-keys", "-t", name, *keys)


def send_text(name: str, text: str) -> None:
    """Types `text` literally into the session's pane."""
    tmux("send-keys", "-t", name, "-l", text)


def capture(name: str, *, join: bool = False, gone: str | None = None) -> str:
    """The pane's visible text; `join` (-J) joins wrapped lines. With `gone`, a pane that no
    longer exists reads as that text instead of raising."""
    try:
        return tmux("capture-pane", "-p", *(["-J"] if join else []), "-t", name)
    except subprocess.CalledProcessError:
        if gone is None:
            raise
        return gone


def wait_until(
    test: Callable[[], bool],
    timeout: float,
    what: str,
    *,
    screen: Callable[[], str] | None = None,
    interval: float = 0.2,
) -> None:
    """Polls `test` every `interval` seconds until it holds; after `timeout` seconds fails,
    naming `what` and showing `screen()` when given."""
    deadline = time.monotonic() + timeout
    while not test():
        if time.monotonic() > deadline:
            shown = f"; screen was:\n{screen()}" if screen is not None else ""
            raise AssertionError(f"timed out waiting for {what}{shown}")
        time.sleep(interval)


def wait_for(
    name: str, test: Callable[[str], bool], timeout: float = 60.0, *, join: bool = False
) -> str:
    """Captures the pane until `test(screen)` holds and returns that screen; fails with the last
    one after `timeout` seconds."""
    screen = ""

    def shows() -> bool:
        nonlocal screen
        screen = capture(name, join=join)
        return test(screen)

    wait_until(shows, timeout, "the screen", screen=lambda: screen)
    return screen
