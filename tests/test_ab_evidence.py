"""What `lemlab ab` keeps beside the research keys so a report can explain itself: failure
modes with their evidence, and the kernel-cache build time inside the first kernel reply's
time_s (tiny model, real MLX engine)."""

from __future__ import annotations

import json
from pathlib import Path

from lemlab.cli import main
from lemlab.core.ab.abfile import read_ab

BATTERY = [
    {"id": "A1", "category": "c", "prompt": "Say hello."},
    {"id": "A2", "category": "c", "prompt": "Say goodbye."},
    {"id": "A3", "category": "c", "prompt": "Name a colour."},
]
RESEARCH_KEYS = ["response", "lek_score", "heuristic", "chars", "time_s"]


def test_evidence_and_cache_build_time_are_stored_after_the_research_keys(
    tiny_model: Path, tmp_path: Path
) -> None:
    (tmp_path / "b.json").write_text(json.dumps(BATTERY))
    (tmp_path / "k.txt").write_text("Weigh every claim with care; respect the reader.\n" * 10)
    out = tmp_path / "run.jsonl"
    args = [
        "ab",
        "--model",
        str(tiny_model),
        "--kernel",
        f"k={tmp_path / 'k.txt'}",
        "--prompts",
        str(tmp_path / "b.json"),
        "--output",
        str(out),
        "--max-tokens",
        "12",
    ]
    assert main(args) == 0
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    probes = lines[:-1]
    for p in probes:
        for cond in p["conditions"].values():
            assert list(cond)[:5] == RESEARCH_KEYS
            for mode in cond["failure_modes"]:  # a random tiny model's noise often loops
                assert list(mode) == ["label", "evidence", "detail"] and mode["evidence"]
    builds = [p["conditions"]["k"].get("cache_build_s") for p in probes]
    # The kernel prefix is prefilled once, during the first kernel reply, then reused.
    assert builds[0] is not None and builds[0] >= 0
    assert builds[1:] == [None, None]
    assert all("cache_build_s" not in p["conditions"]["baseline"] for p in probes)
    run = read_ab(out)
    assert run.probes[0].conditions["k"].extra["cache_build_s"] == builds[0]
