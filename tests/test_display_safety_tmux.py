"""Issue 16 in a real terminal: the TUI (tmux, fake engine) opens an A/B file whose response
holds ESC sequences that clear the screen and retitle the terminal. With the cursor on that
cell the terminal shows the sequences as visible symbols, and its title is untouched (tmux
records an OSC 0 title it receives in #{pane_title})."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from support.tmux import LEMLAB, NEEDS_TMUX, send_keys, send_text, tmux, tmux_session, wait_for

from lemlab.core.ab.abfile import condition_entry, probe_line, summarize

pytestmark = [pytest.mark.slow, NEEDS_TMUX]


def test_battery_pane_in_a_real_terminal_shows_escape_sequences(
    lemlab_home: Path, tmp_path: Path
) -> None:
    conds = {
        "baseline": condition_entry("a calm answer", {"lek_score": 1.0}, 1.0),
        "kernel": condition_entry("evil\x1b[2J\x1b]0;pwned\x07 after", {"lek_score": 2.0}, 1.0),
    }
    probes = [probe_line("p1", "cat", "prompt", conds, ts="T")]
    run = tmp_path / "hostile.jsonl"
    run.write_text(
        "".join(
            json.dumps(x) + "\n"
            for x in [*probes, summarize(probes, "m", 1, 8, list(conds), ts="T")]
        )
    )
    env = {"LEMLAB_HOME": str(lemlab_home), "LEMLAB_FAKE_ENGINE": "1"}
    with tmux_session("lemlab-safe", [LEMLAB, "--session", "tmux-safe"], env) as name:
        tmux("select-pane", "-t", name, "-T", "lemlab-test-title")
        wait_for(name, lambda s: "Battery" in s and "Chat" in s)
        send_keys(name, "F4")
        wait_for(name, lambda s: "l open a run file" in s)
        time.sleep(0.5)  # the pane takes focus after its tab shows
        send_keys(name, "l")
        wait_for(name, lambda s: "A/B JSONL file to open" in s)
        send_text(name, str(run))
        send_keys(name, "Enter")
        wait_for(name, lambda s: "p1" in s and "kernel" in s)
        send_keys(name, "Right", "Right", "Right")
        screen = wait_for(name, lambda s: "kernel: evil" in s)
        assert "kernel: evil␛[2J␛]0;pwned␇ after" in screen
        assert tmux("display", "-p", "-t", name, "#{pane_title}").strip() == "lemlab-test-title"
        send_keys(name, "C-q")
