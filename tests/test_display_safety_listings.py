"""Issue 16: listings and reports that quote files (probes, rescore, watch, models) show control
characters visibly, whatever stdout is."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lemlab.cli import main
from lemlab.core.ab.abfile import condition_entry, probe_line, summarize

ESC = "\x1b[2J\x1b]0;pwned\x07"
SHOWN = "␛[2J␛]0;pwned␇"


def _out(capsys: pytest.CaptureFixture[str]) -> str:
    got = capsys.readouterr()
    text = got.out + got.err
    assert "\x1b" not in text and "\x07" not in text, text
    return text


def test_probes_listing_shows_file_names_and_errors_visibly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / f"ok{ESC}.json").write_text(json.dumps([{"id": "a", "prompt": "p"}]))
    (tmp_path / "bad.json").write_text(json.dumps([{"id": f"x{ESC}", "prompt": "p"}]))
    assert main(["probes", "--dir", str(tmp_path)]) in (0, 1)
    text = _out(capsys)
    assert f"ok{SHOWN}" in text
    assert "bad" in text and "unreadable" in text and "\\x1b[2J" in text


def test_rescore_shows_ids_visibly(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    conds = {
        n: condition_entry(f"an answer {n} that is long enough", {"lek_score": 0.0}, 1.0)
        for n in ("baseline", "k")
    }
    probes = [probe_line(f"p{ESC}", "cat", "prompt", conds, ts="T")]
    run = tmp_path / "run.jsonl"
    run.write_text(
        "".join(
            json.dumps(x) + "\n"
            for x in [*probes, summarize(probes, "m", 1, 8, ["baseline", "k"], ts="T")]
        )
    )
    main(["rescore", str(run), "--scorer", "v0", "--out", str(tmp_path / "new.jsonl")])
    assert f"p{SHOWN}" in _out(capsys)
    first = (tmp_path / "new.jsonl").read_text().split("\n")[0]
    assert json.loads(first)["id"] == f"p{ESC}"  # the file keeps the exact id


def test_watch_once_shows_event_text_visibly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    events = [
        {
            "event": "start",
            "ts": "2026-11-24T06:11:52+00:00",
            "total_iters": 10,
            "model": f"/m/{ESC}",
            "data": "/d",
            "adapter_path": str(tmp_path),
            "pid": 1,
        },
        {"event": "error", "ts": "2026-11-24T06:11:53+00:00", "message": f"boom {ESC}"},
    ]
    (tmp_path / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    main(["watch", "--once", str(tmp_path / "events.jsonl")])
    assert f"boom {SHOWN}" in _out(capsys)


def test_models_listing_shows_folder_names_visibly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from support.tui import fake_model_dir

    fake_model_dir(tmp_path, f"m{ESC}[b]x")
    assert main(["models", "--path", str(tmp_path), "--no-hf-cache"]) == 0
    assert f"m{SHOWN}[b]x" in _out(capsys).replace("\n", "")
