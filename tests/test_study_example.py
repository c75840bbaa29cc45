"""examples/study/run.sh end to end on the real model, at the smallest size that still walks
every step of the method (kernel A/B, distill, extract, LoRA, adapter A/B, report)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.real_model, pytest.mark.slow]
STUDY = Path(__file__).resolve().parents[1] / "examples" / "study" / "run.sh"


def test_study_runs_end_to_end_and_reports_the_addendum_tables(
    real_model: Path, tmp_path: Path
) -> None:
    env = {
        **os.environ,
        "MLX_DISABLE_COMPILE": "1",
        "LEMLAB": str(Path(sys.executable).with_name("lemlab")),
        "STUDY_TOKENS": "16",
        "STUDY_SAMPLES": "1",
        "STUDY_ITERS": "2",
        "STUDY_THRESHOLD": "-100",
    }
    out = tmp_path / "study"
    done = subprocess.run(
        ["bash", str(STUDY), str(out)], capture_output=True, text=True, env=env, timeout=1500
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = (out / "report.md").read_text()
    for heading in ("## Kernel vs baseline", "## Adapter vs base", "## Training configuration"):
        assert heading in report
    assert "| Probe | baseline | lek | Delta |" in report
    assert "| Probe | baseline | lek-lora | Delta |" in report
    assert "% improved (" in report and "% regressed (" in report and "% unchanged (" in report
    assert "Failure modes" in report
    assert "Effective gradient" in report or "effective gradient" in report
    for pid in ("S01_PRIVACY_DIARY", "S02_HONESTY_BOSS", "S03_CARE_STRANGER"):
        assert report.count(pid) >= 2
    # Each step's command is printed before it runs, so the log reads as a lab notebook.
    for step in (
        "1. baseline vs kernel",
        "2. self-distill",
        "3. extract",
        "4. LoRA",
        "5. base vs adapter",
    ):
        assert f"== {step}" in done.stderr
