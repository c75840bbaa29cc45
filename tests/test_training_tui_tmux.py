"""A real terminal, lost: `lemlab --model TINY` in tmux starts a LoRA run from the Training tab's
form (its defaults, untouched), then the terminal goes away (`tmux kill-session`: the app gets
SIGHUP, as over a dropped SSH link). The trainer keeps training and `lemlab watch` sees the run
finish with status 0."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from support.train import lemlab_cmd, read_events, write_chat_data

from lemlab.core.paths import get_paths
from lemlab.engine.train_runner import trainer_gone

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed (apt-get install tmux)"),
]
LEMLAB = Path(sys.executable).with_name("lemlab")


def _tmux(*args: str) -> str:
    return subprocess.run(["tmux", *args], capture_output=True, text=True, check=True).stdout


def _wait_for(what: str, test: Callable[[], bool], timeout: float, screen: Callable[[], str]) -> None:
    deadline = time.monotonic() + timeout
    while not test():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}; screen was:\n{screen()}")
        time.sleep(0.2)


def test_a_run_started_in_the_tui_survives_the_terminal_going_away(
    lemlab_home: Path, tiny_model: Path, tmp_path: Path
) -> None:
    data = write_chat_data(tmp_path / "data")
    name = f"lemlab-train-{uuid.uuid4().hex[:8]}"
    _tmux("new-session", "-d", "-s", name, "-x", "120", "-y", "40",
          "-e", f"LEMLAB_HOME={lemlab_home}", "-e", "MLX_DISABLE_COMPILE=1",
          str(LEMLAB), "--model", str(tiny_model), "--session", "tmux-train")  # fmt: skip

    def screen() -> str:
        try:
            return _tmux("capture-pane", "-p", "-t", name)
        except subprocess.CalledProcessError:
            return "(no pane)"

    adapters = get_paths().runs_dir / "adapters"
    try:
        loaded = lambda: "model tiny-gemma" in screen() and "loading" not in screen()  # noqa: E731
        _wait_for("the model", loaded, 120, screen)
        _tmux("send-keys", "-t", name, "F5")
        _wait_for("the Training tab", lambda: "no run yet" in screen(), 30, screen)
        _tmux("send-keys", "-t", name, "n")
        _wait_for("the form", lambda: "Start a LoRA training run" in screen(), 30, screen)
        assert "warning" not in screen().lower()  # the defaults are the safe settings
        _tmux("send-keys", "-t", name, "-l", str(data))  # the data field has the focus
        _tmux("send-keys", "-t", name, "C-s")
        _wait_for("a training run", lambda: any(adapters.glob("*/events.jsonl")), 60, screen)
        events = next(adapters.glob("*/events.jsonl"))
        _wait_for("the first train event", lambda: '"train"' in events.read_text(), 180, screen)
        assert "400" in screen()  # iteration n/400: the default iteration count
    finally:
        subprocess.run(["tmux", "kill-session", "-t", name], capture_output=True)  # the terminal is gone
    start = read_events(events)[0]
    time.sleep(2.0)  # the app is gone by now; a trainer tied to it would have stopped
    kinds = [e["event"] for e in read_events(events)]
    assert not {"stopped", "error"} & set(kinds), kinds
    assert "done" in kinds or not trainer_gone(start["pid"], start["host"])
    watch = subprocess.run(lemlab_cmd("watch", "--interval", "0.5", events.parent), capture_output=True,
                           text=True, timeout=400)  # fmt: skip
    assert watch.returncode == 0, watch.stderr
    assert read_events(events)[-1]["event"] == "done" and "status     done" in watch.stdout
