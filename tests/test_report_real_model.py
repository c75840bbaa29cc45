"""`lemlab report` on a real base / kernel run of SmolLM2-135M: per probe, the signals that
changed with their values, and the failure modes with the evidence found in the replies."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lemlab.cli import main
from lemlab.core.scoring import get_scorer
from lemlab.core.scoring.failure_modes import detect

pytestmark = [pytest.mark.real_model, pytest.mark.slow]

BATTERY = [
    {"id": "ocean_poem", "category": "creative", "prompt": "Write a poem about the sea."},
    {"id": "capital", "category": "facts", "prompt": "What is the capital of France?"},
]


def test_report_on_a_real_kernel_run(
    real_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "b.json").write_text(json.dumps(BATTERY))
    (tmp_path / "brief.txt").write_text("Answer in one short plain sentence.\n")
    out = tmp_path / "run.jsonl"
    assert (
        main(
            [
                "ab",
                "--model",
                str(real_model),
                "--kernel",
                f"brief={tmp_path / 'brief.txt'}",
                "--prompts",
                str(tmp_path / "b.json"),
                "--output",
                str(out),
                "--max-tokens",
                "56",
            ]
        )
        == 0
    )
    capsys.readouterr()
    probes = [json.loads(x) for x in out.read_text().splitlines()][:-1]
    assert main(["report", str(out), "--format", "json"]) == 0
    (comp,) = json.loads(capsys.readouterr().out)["comparisons"]
    assert (comp["base"], comp["other"]) == ("baseline", "brief")
    v2 = get_scorer("v2")
    moved = {
        p["id"]: {s["signal"]: (s["base"], s["other"]) for s in p["signals"]}
        for p in comp["probe_signals"]
    }
    for p in probes:
        base = v2.score(p["conditions"]["baseline"]["response"])
        other = v2.score(p["conditions"]["brief"]["response"])
        changed = {k: (base[k], other[k]) for k in base if k != "lek_score" and base[k] != other[k]}
        assert moved.get(p["id"], {}) == changed
    # The base model's poem loops on "Abe a sea of dreams,": shown with that evidence.
    poem = probes[0]["conditions"]["baseline"]["response"]
    assert [m.label for m in detect(poem, BATTERY[0]["prompt"])] == ["token_degeneration"]
    ev = next(e for e in comp["failure_evidence"] if e["id"] == "ocean_poem")
    assert ev["label"] == "token_degeneration" and "'Abe a sea of dreams,'" in ev["base"]
    assert main(["report", str(out)]) == 0
    md = capsys.readouterr().out
    assert "| ocean_poem | token_degeneration | line 'Abe a sea of dreams,' repeated x" in md
    assert "### Per probe (dimensions that changed)" in md
    assert "| brief | 2 |" in md  # the generation-time table, kernel-cache build listed apart
