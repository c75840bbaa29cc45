"""Progress without a terminal (issue 19): one whole line per event on stderr, never wrapped at
80 columns, and lines during every pass of a run with an adapter (not only at the end)."""

from __future__ import annotations

import json
from pathlib import Path

from support.train import run_lemlab

LONG_IDS = [
    "P01_A_PROBE_ID_LONG_ENOUGH_THAT_ITS_PROGRESS_LINE_RUNS_WELL_PAST_EIGHTY_COLUMNS",
    "P02_ANOTHER_PROBE_ID_LONG_ENOUGH_THAT_ITS_PROGRESS_LINE_RUNS_PAST_EIGHTY_TOO",
]


def _battery(tmp_path: Path) -> Path:
    path = tmp_path / "probes.json"
    probes = [
        {"id": pid, "domain": "x", "prompt": q}
        for pid, q in zip(LONG_IDS, ["Describe the sea.", "What is honesty?"], strict=True)
    ]
    path.write_text(json.dumps(probes))
    return path


def test_distill_prints_one_unwrapped_line_per_sample(tiny_model: Path, tmp_path: Path) -> None:
    res = run_lemlab(
        "distill",
        "--model",
        tiny_model,
        "--prompts",
        _battery(tmp_path),
        "--output",
        tmp_path / "d.jsonl",
        "--samples",
        "2",
        "--max-tokens",
        "6",
        "--threshold",
        "-100",
    )
    assert res.returncode == 0, res.stderr
    lines = [ln for ln in res.stderr.splitlines() if ln.startswith("probe ")]
    assert len(lines) == 4
    for n, line in enumerate(lines):
        pid = LONG_IDS[n // 2]
        assert line.startswith(f"probe {n // 2 + 1}/2 {pid} sample {n % 2 + 1}: score ")
        assert line.endswith(f"kept {n + 1}/{n + 1} (100.0%)") and len(line) > 100


def test_ab_with_an_adapter_reports_the_base_pass_as_it_goes(
    tiny_model: Path, tiny_adapter: Path, tmp_path: Path
) -> None:
    res = run_lemlab(
        "ab",
        "--model",
        tiny_model,
        "--adapter",
        f"tuned={tiny_adapter}",
        "--prompts",
        _battery(tmp_path),
        "--output",
        tmp_path / "ab.jsonl",
        "--max-tokens",
        "6",
    )
    assert res.returncode == 0, res.stderr
    lines = res.stderr.splitlines()
    base = [i for i, ln in enumerate(lines) if ln.startswith("base pass: probe ")]
    final = [i for i, ln in enumerate(lines) if ln.startswith("probe ")]
    assert len(base) == 2 and len(final) == 2 and max(base) < min(final)
    assert lines[base[0]].startswith(f"base pass: probe 1/2 {LONG_IDS[0]}: baseline ")
    assert lines[final[1]].startswith(f"probe 2/2 {LONG_IDS[1]}: baseline ")
    assert ", tuned " in lines[final[1]] and "tuned" not in lines[base[1]]
