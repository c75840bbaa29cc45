"""`lemlab rescore`: stored vs new scores, --out file or folder, malformed lines -> exit 1."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lemlab.cli import main
from lemlab.core.ab.abfile import read_ab

V1_SAMPLE = Path(__file__).resolve().parent / "fixtures" / "abfile-v1-sample.jsonl"


def test_rescore_prints_stored_and_new(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rescore", str(V1_SAMPLE)]) == 0
    out = capsys.readouterr().out
    assert "(stored: v1 -> v2)" in out
    assert "P01_IDENTITY_REFUSAL   baseline      -9.00     -8.50     +0.50" in out
    assert "json avg -0.48 (+3.40; improved 2, regressed 1, unchanged 2)" in out


def test_rescore_out_file_is_a_valid_v2_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "v2.jsonl"
    assert main(["rescore", str(V1_SAMPLE), "--out", str(out), "--scorer", "v2"]) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    run = read_ab(out)
    assert run.issues == [] and run.scorer == "v2"
    assert run.summary is not None and run.summary.stats("json").avg_lek == -0.48  # type: ignore[union-attr]


def test_rescore_several_files_into_a_folder_with_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    second = tmp_path / "in" / "second.jsonl"
    second.parent.mkdir()
    second.write_text(V1_SAMPLE.read_text())
    folder = tmp_path / "out"
    args = [
        "rescore",
        str(V1_SAMPLE),
        str(second),
        "--out",
        str(folder),
        "--scorer",
        "v0",
        "--json",
    ]
    assert main(args) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["scorer"] == "v0" and len(data["files"]) == 2
    first = data["files"][0]
    assert first["stored_scorer"] == "v1" and first["scorer"] == "v0"
    assert {"id", "condition", "stored", "new", "change"} == set(first["probes"][0])
    assert sorted(p.name for p in folder.iterdir()) == ["abfile-v1-sample.jsonl", "second.jsonl"]
    assert read_ab(folder / "second.jsonl").scorer == "v0"


def test_malformed_lines_reported_skipped_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = V1_SAMPLE.read_text().splitlines()
    bad = tmp_path / "bad.jsonl"
    bad.write_text(
        "\n".join([lines[0], "oops", lines[1], '{"type": "probe", "id": 3}', *lines[2:]]) + "\n"
    )
    out = tmp_path / "fixed.jsonl"
    assert main(["rescore", str(bad), "--out", str(out)]) == 1
    captured = capsys.readouterr()
    assert f"{bad}:2: invalid JSON" in captured.err
    assert f"{bad}:4: probe line has no 'id'" in captured.err
    assert len(read_ab(out).probes) == 5  # the good lines are all kept


def test_unknown_scorer_and_missing_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["rescore", str(V1_SAMPLE), "--scorer", "v7"]) == 2
    assert capsys.readouterr().err.strip() == (
        "lemlab: error: unknown scorer 'v7' (valid: v2, v2-distill, v0)"
    )
    assert main(["rescore", str(tmp_path / "missing.jsonl")]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_out_must_be_a_folder_for_several_inputs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "file.jsonl"
    target.write_text("")
    assert main(["rescore", str(V1_SAMPLE), str(V1_SAMPLE), "--out", str(target)]) == 2
    assert "must be a folder" in capsys.readouterr().err
