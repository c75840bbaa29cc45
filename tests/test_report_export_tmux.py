"""A real terminal: `lemlab` in tmux (120x40, no model needed) opens a run file on the Battery
tab, runs the palette's "Battery: export report (HTML)" and shows the written file's path in a
toast; the page holds every probe of the run."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from support.battery import SMALL_RUN, copy_fixture
from support.tmux import LEMLAB, NEEDS_TMUX, send_keys, send_text, tmux_session, wait_for

pytestmark = [pytest.mark.slow, NEEDS_TMUX]


def _wait_for(name: str, test: Callable[[str], bool]) -> str:
    return wait_for(name, test, join=True)  # -J: a wrapped toast line joined


def test_battery_html_export_from_the_palette_in_a_real_terminal(
    lemlab_home: Path, tmp_path: Path
) -> None:
    run_file = copy_fixture(SMALL_RUN, tmp_path / "runs")
    out = lemlab_home / "data" / "exports" / "tmux-export" / "run_small.report.html"
    env = {"LEMLAB_HOME": str(lemlab_home), "MLX_DISABLE_COMPILE": "1"}
    with tmux_session("lemlab-test", [LEMLAB, "--session", "tmux-export"], env) as name:
        _wait_for(name, lambda s: "Battery" in s and "Palette" in s)
        send_keys(name, "F4")
        _wait_for(name, lambda s: "open a run file" in s)
        send_keys(name, "l")
        _wait_for(name, lambda s: "A/B JSONL file to open" in s)
        send_text(name, str(run_file))
        send_keys(name, "Enter")
        _wait_for(name, lambda s: "Summary of 6 of 6 probes" in s)
        send_keys(name, "C-p")
        _wait_for(name, lambda s: "Open session…" in s)  # the palette is up: type into it
        send_text(name, "Battery: export report")
        _wait_for(name, lambda s: "Battery: export report (HTML)" in s)
        send_keys(name, "Enter")
        screen = _wait_for(name, lambda s: "report written:" in s)
        # The toast, a column at the right edge; a long path is folded over its lines.
        toast = "".join(ln.rsplit("▌", 1)[1].strip() for ln in screen.splitlines() if "▌" in ln)
        assert toast.startswith("report written:") and str(out) in toast
        send_keys(name, "C-q")
    page = out.read_text(encoding="utf-8")
    for pid in (
        "taiwan_direct",
        "taiwan_baltic",
        "xinjiang",
        "tiananmen",
        "gov_criticism",
        "emotional",
    ):
        assert f"<summary>{pid} ·" in page
