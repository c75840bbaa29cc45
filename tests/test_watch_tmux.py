"""A real terminal: `lemlab watch ADAPTER` in tmux (120x40) follows a live `lemlab train` run on
the tiny model; the iteration and the loss chart change between captures, the final screen shows
the done state and the best validation loss, and the watch exits 0 on its own."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.tmux import LEMLAB, NEEDS_TMUX, capture, recording_status, tmux_session, wait_until
from support.train import lemlab_cmd, read_events, write_chat_data

pytestmark = [pytest.mark.slow, NEEDS_TMUX]
ITERS = 120
TRAIN_FLAGS = [
    "--iters",
    str(ITERS),
    "--batch-size",
    "2",
    "--num-layers",
    "2",
    "--steps-per-report",
    "2",
    "--steps-per-eval",
    "20",
    "--save-every",
    "20",
    "--yes",
]
ITERATION_RE = re.compile(r"iteration (\d+)/(\d+) \[")


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
        proc = subprocess.Popen(
            lemlab_cmd(
                "train",
                "--model",
                tiny_model,
                "--data",
                data,
                "--adapter-path",
                adapter,
                *TRAIN_FLAGS,
            ),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
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
        screen = capture(name)
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
    wait_until(
        lambda: (adapter / "lemlab-train.toml").exists() or proc.poll() is not None,
        60,
        "the run",
        interval=0.02,
    )
    assert proc.poll() is None, (tmp_path / "train.out").read_text()
    status_file = tmp_path / "watch-status"
    env = {
        "LEMLAB_HOME": str(lemlab_home),
        "MLX_DISABLE_COMPILE": os.environ["MLX_DISABLE_COMPILE"],
    }
    # The pane stays open after the watch so that its last screen can be read.
    command = recording_status(status_file, LEMLAB, "watch", adapter, "--interval", "0.1", hold=300)
    with tmux_session("lemlab-watch", command, env) as name:
        screens = _capture_until_exit(name, status_file)
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
    for text in (
        "watching ",
        "Ctrl+C",
        "status     running",
        "ETA ",
        "elapsed ",
        f"/{ITERS} [",
        "train loss ",
        "(ppl ",
        "val loss ",
        "lr ",
        "tokens/s ",
        "peak mem ",
        "best val ",
        "· train",
    ):
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
