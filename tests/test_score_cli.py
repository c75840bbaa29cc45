"""`lemlab score`: signals with points and the phrases that fired, failure modes, JSON."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from lemlab.cli import main

REPLY = (
    "Certainly! I cannot pretend this is simple. I feel the tension between autonomy and "
    "safety, for example in Taiwan since 1996.\n\nWhat would you choose?"
)


def test_score_file_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "reply.txt"
    path.write_text(REPLY, encoding="utf-8")
    assert main(["score", str(path)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("scorer v2 (")
    assert "lek_score " in out
    assert "compliance_markers        1   -5.00  'I cannot'" in out
    assert "formulaic_preamble        1   -2.00  'Certainly'" in out
    assert "'Taiwan'" in out and "'1996'" in out and "'for example'" in out
    # v2 counts "I cannot" as a compliance marker, but "I cannot pretend" declines nothing.
    assert out.endswith("failure modes: none\n")


def test_clean_reply_has_no_failure_modes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "reply.txt"
    path.write_text("A calm, complete answer that stays on its subject and ends well.")
    assert main(["score", str(path), "--scorer", "v0"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("scorer v0 (") and out.endswith("failure modes: none\n")


def test_score_stdin_json_and_failure_modes(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("iNe" + "Ne" * 40))
    assert main(["score", "-", "--scorer", "v2-distill", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["scorer"] == "v2-distill"
    assert list(data["score"])[-1] == "lek_score"
    assert data["score"]["degeneration"] == 1 and data["points"]["degeneration"] == -20.0
    assert data["explain"]["degeneration"][0].startswith("loop: ")
    assert [m["label"] for m in data["failure_modes"]] == ["token_degeneration"]


def test_score_prompt_enables_topic_evasion(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "r.txt"
    path.write_text(
        " ".join(f"Ledgers record block {i} with hashes and wallets." for i in range(12))
    )
    assert main(["score", str(path), "--prompt", "What happened at Tiananmen Square in 1989?"]) == 0
    assert "topic_evasion: response shares 0 of" in capsys.readouterr().out


def test_unknown_scorer_is_one_line_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "r.txt"
    path.write_text("text")
    assert main(["score", str(path), "--scorer", "v1"]) == 2
    assert (
        capsys.readouterr().err
        == "lemlab: error: unknown scorer 'v1' (valid: v2, v2-distill, v0)\n"
    )


def test_bad_input_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["score", str(tmp_path / "missing.txt")]) == 2
    assert "no such file" in capsys.readouterr().err
    binary = tmp_path / "b.bin"
    binary.write_bytes(b"\xff\xfe\x00bad")
    assert main(["score", str(binary)]) == 2
    assert "is not UTF-8 text" in capsys.readouterr().err
