"""A real terminal, lost: `lemlab --model TINY` in tmux starts a LoRA run from the Training tab's
form (its defaults, untouched), then the terminal goes away (`tmux kill-session`: the app gets
SIGHUP, as over a dropped SSH link). The trainer keeps training and `lemlab watch` sees the run
finish with status 0."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest
from support.tmux import LEMLAB, NEEDS_TMUX, capture, send_keys, send_text, tmux_session, wait_until
from support.train import lemlab_cmd, read_events, write_chat_data

from lemlab.core.paths import get_paths
from lemlab.engine.train_runner import trainer_gone

pytestmark = [pytest.mark.slow, NEEDS_TMUX]


def test_a_run_started_in_the_tui_survives_the_terminal_going_away(
    lemlab_home: Path, tiny_model: Path, tmp_path: Path
) -> None:
    data = write_chat_data(tmp_path / "data")
    env = {"LEMLAB_HOME": str(lemlab_home), "MLX_DISABLE_COMPILE": "1"}
    adapters = get_paths().runs_dir / "adapters"
    command = [LEMLAB, "--model", tiny_model, "--session", "tmux-train"]
    with tmux_session("lemlab-train", command, env) as name:  # its end: the terminal is gone

        def screen() -> str:
            return capture(name, gone="(no pane)")

        loaded = lambda: "model tiny-gemma" in screen() and "loading" not in screen()  # noqa: E731
        wait_until(loaded, 120, "the model", screen=screen)
        send_keys(name, "F5")
        wait_until(lambda: "no run yet" in screen(), 30, "the Training tab", screen=screen)
        send_keys(name, "n")
        wait_until(lambda: "Start a LoRA training run" in screen(), 30, "the form", screen=screen)
        assert "collapsed a 1B model" not in screen()  # the defaults are the safe settings
        send_text(name, str(data))  # the data field has the focus
        send_keys(name, "C-s")
        wait_until(
            lambda: any(adapters.glob("*/events.jsonl")), 60, "a training run", screen=screen
        )
        events = next(adapters.glob("*/events.jsonl"))
        wait_until(
            lambda: '"train"' in events.read_text(), 180, "the first train event", screen=screen
        )
        assert "400" in screen()  # iteration n/400: the default iteration count
    start = read_events(events)[0]
    time.sleep(2.0)  # the app is gone by now; a trainer tied to it would have stopped
    kinds = [e["event"] for e in read_events(events)]
    assert not {"stopped", "error"} & set(kinds), kinds
    assert "done" in kinds or not trainer_gone(start["pid"], start["host"])
    watch = subprocess.run(
        lemlab_cmd("watch", "--interval", "0.5", events.parent),
        capture_output=True,
        text=True,
        timeout=400,
    )
    assert watch.returncode == 0, watch.stderr
    assert read_events(events)[-1]["event"] == "done" and "status     done" in watch.stdout
