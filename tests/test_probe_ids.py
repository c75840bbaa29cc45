"""Probe ids and categories are one line of printable text: a battery whose id holds a newline
or an ESC sequence is refused at load time with one line (exit 2), never echoed raw."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lemlab.cli import main
from lemlab.core.battery.probes import load_battery
from lemlab.core.errors import LemlabError


@pytest.mark.parametrize(
    ("name", "text", "shown"),
    [
        ("ids.json", json.dumps([{"id": "a\nb\x1b[31m", "prompt": "hi"}]), r"'a\nb\x1b[31m'"),
        ("ids.jsonl", json.dumps({"id": "x\u202ey", "prompt": "hi"}) + "\n", r"'x\u202ey'"),
        ("ids.toml", 'name = "t"\n[[probe]]\nid = "bell\\u0007"\nprompt = "hi"\n', r"'bell\x07'"),
        (
            "cat.json",
            json.dumps([{"id": "ok", "category": "c\x1b[2J", "prompt": "hi"}]),
            r"'c\x1b[2J'",
        ),
    ],
)
def test_control_characters_in_ids_are_refused(
    tmp_path: Path, name: str, text: str, shown: str
) -> None:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    with pytest.raises(LemlabError) as info:
        load_battery(path)
    message = str(info.value)
    assert shown in message and "control or invisible characters" in message
    assert "\x1b" not in message and "\n" not in message


def test_prompts_may_hold_newlines_and_controls(tmp_path: Path) -> None:
    path = tmp_path / "ok.json"
    path.write_text(json.dumps([{"id": "p-1", "prompt": "line one\nline\ttwo \x1b[1m"}]))
    assert load_battery(path).probes[0].prompt == "line one\nline\ttwo \x1b[1m"


def test_ab_refuses_the_battery_in_one_line_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"id": "a\nb\x1b[31m", "prompt": "hi"}]), encoding="utf-8")
    out = tmp_path / "out.jsonl"
    code = main(
        [
            "ab",
            "--model",
            "openai:http://127.0.0.1:9/v1#m",
            "--prompts",
            str(bad),
            "--output",
            str(out),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("lemlab: error: ")
    assert r"'a\nb\x1b[31m'" in err and "\x1b" not in err
    assert not out.exists()


@pytest.mark.parametrize(
    ("kind", "body"),
    [
        ("pipeline", 'model = "m"\noutput = "o"\n[[phase]]\nname = "a\\u001b[2J"\nprompts = "p"\n'),
        (
            "curriculum",
            'base_model = "m"\noutput = "o"\n[[stage]]\nname = "a\\u001b[2J"\ndata = "d"\n',
        ),
    ],
)
def test_phase_and_stage_names_with_controls_are_refused(
    tmp_path: Path, kind: str, body: str
) -> None:
    from lemlab.core.distill.pipeline import load_pipeline
    from lemlab.core.training.curriculum import load_curriculum

    path = tmp_path / f"{kind}.toml"
    path.write_text(body, encoding="utf-8")
    load = load_pipeline if kind == "pipeline" else load_curriculum
    with pytest.raises(
        LemlabError, match=r"name 'a\\x1b\[2J' holds control or invisible characters"
    ):
        load(path)
