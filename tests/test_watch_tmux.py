"""A real terminal: `lemlab watch ADAPTER` in tmux (120x40) follows a live `lemlab train` run on
the tiny model; the iteration and the loss chart change between captures, the final screen shows
the done state and the best validation loss, and the watch exits 0 on its own."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from support.train import lemlab_cmd, read_events, write_chat_data

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        shutil.which("tmux") is None, reason="tmux is not installed (apt-get install tmux)"
    ),
]
LEMLAB = Path(sys.executable).with_name("lemlab")
ITERS = 120
TRAIN_FLAGS = ["--iters", str(ITERS), "--batch-size", "2", "--num-layers", "2", "--steps-per-report", "2",
               "--steps-per-eval", "20", "--save-every", "20", "--yes"]  # fmt: skip
# Runs the command with the terminal untouched, records its exit status, then keeps the pane
# open so the watch's last screen can be read (tmux's own dead-pane notice scrolls it by a row).
RECORD_STATUS = (
    "import pathlib, subprocess, sys, time; rc = subprocess.call(sys.argv[2:]); "
    "pathlib.Path(sys.argv[1]).write_text(str(rc)); time.sleep(300)"
)
ITERATION_RE = re.compile(r"iteration (\d+)/(\d+) \[")


def _tmux(*args: str) -> str:
    return subprocess.run(["tmux", *args], capture_output=True, text=True, check=True).stdout


def _wait_until(test: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if test():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def _chart(screen: str) -> str:
    return "\n".join(line for line in screen.splitlines() if "│" in line or "└" in line)


def _iteration(screen: str) -> int | None:
    m = ITERATION_RE.search(screen)
    return int(m[1]) if m else None


@pytest.fixture
def training(tiny_model: Path, tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    """A real `lemlab train` run in the background; stopped (SIGTERM, then SIGKILL) if still going."""
    adapter = tmp_path / "adapter"
    data = write_chat_data(tmp_path / "data")
    with open(tmp_path / "train.out", "wb") as out:
        proc = subprocess.Popen(lemlab_cmd("train", "--model", tiny_model, "--data", data,
                                           "--adapter-path", adapter, *TRAIN_FLAGS),
                                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)  # fmt: skip
    try:
        yield proc, adapter
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)  # the parent asks its child to stop, then exits
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _capture_until_exit(name: str, status_file: Path, timeout: float = 120.0) -> list[str]:
    """Every distinct screen of the pane until the watch has exited (and one after)."""
    screens: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ended = status_file.exists()
        screen = _tmux("capture-pane", "-p", "-t", name)
        if not screens or screen != screens[-1]:
            screens.append(screen)
        if ended:
            return screens
        time.sleep(0.05)
    raise AssertionError(f"watch did not exit; last screen:\n{screens[-1] if screens else ''}")


def test_watch_follows_a_live_training_run_in_tmux(
    training: tuple[subprocess.Popen[bytes], Path], lemlab_home: Path, tmp_path: Path
) -> None:
    proc, adapter = training
    # As early as a user could: the config exists, the first event may not (watch waits for it).
    _wait_until(
        lambda: (adapter / "lemlab-train.toml").exists() or proc.poll() is not None, 60, "the run"
    )
    assert proc.poll() is None, (tmp_path / "train.out").read_text()
    name = f"lemlab-watch-{uuid.uuid4().hex[:8]}"
    status_file = tmp_path / "watch-status"
    _tmux("new-session", "-d", "-s", name, "-x", "120", "-y", "40",
          "-e", f"LEMLAB_HOME={lemlab_home}", "-e", f"MLX_DISABLE_COMPILE={os.environ['MLX_DISABLE_COMPILE']}",
          sys.executable, "-c", RECORD_STATUS, str(status_file),
          str(LEMLAB), "watch", str(adapter), "--interval", "0.1")  # fmt: skip
    try:
        screens = _capture_until_exit(name, status_file)
    finally:
        subprocess.run(["tmux", "kill-session", "-t", name], capture_output=True)
    assert proc.wait(timeout=60) == 0, (tmp_path / "train.out").read_text()
    assert status_file.read_text() == "0"  # the watch ended by itself, successfully

    charted: list[tuple[int, str, str]] = []  # (iteration, chart, screen) of screens with a chart
    for screen in screens:
        it = _iteration(screen)
        if it is not None and "└" in screen:
            charted.append((it, _chart(screen), screen))
    iterations = [it for it, _, _ in charted]
    assert iterations == sorted(iterations), iterations  # the display never goes backwards
    live = [(it, chart, s) for it, chart, s in charted if 0 < it < ITERS]
    assert live, "no capture showed the run in progress:\n" + "\n=====\n".join(screens)
    first_it, first_chart, first_screen = live[0]
    last_it, last_chart, final = charted[-1]
    assert last_it == ITERS and first_it < last_it and first_chart != last_chart
    for (it_a, chart_a, _), (it_b, chart_b, _) in zip(charted, charted[1:], strict=False):
        assert it_b == it_a or chart_b != chart_a  # a new report redraws the chart
    # The live screen: everything a researcher checks over SSH.
    for text in ("watching ", "Ctrl+C", "status     running", "ETA ", "elapsed ", f"/{ITERS} [",
                 "train loss ", "(ppl ", "val loss ", "lr ", "tokens/s ", "peak mem ", "best val ",
                 "· train"):  # fmt: skip
        assert text in first_screen, f"{text!r} missing from the live screen:\n{first_screen}"

    events = read_events(adapter / "events.jsonl")
    vals = [(e["val_loss"], e["iteration"]) for e in events if e["event"] == "val"]
    best_loss, best_it = min(vals)
    ckpts = [(e["iteration"], Path(e["path"]).name) for e in events if e["event"] == "checkpoint"]
    ckpt_it, ckpt_name = min(ckpts, key=lambda c: (abs(c[0] - best_it), c[0]))
    where = f"{'' if ckpt_it == best_it else 'nearest '}checkpoint {ckpt_name}"
    last_train = [e for e in events if e["event"] == "train"][-1]
    assert "(ended: done)" in final and "status     done   took " in final
    assert f"iteration {ITERS}/{ITERS} [" in final
    assert f"best val   {best_loss:.3f} at iteration {best_it:,}, {where}" in final
    assert f"train loss {last_train['train_loss']:.3f}" in final
