"""Sessions as TOML: round trip, no nulls, unknown tables kept, names validated, damaged files
reported, atomic writes survive a kill or a failed fsync, and `lemlab sessions`."""

from __future__ import annotations

import errno
import json
import os
import tomllib
from pathlib import Path

import pytest

from lemlab.cli import main
from lemlab.core import atomic
from lemlab.core.errors import DataError, LemlabError
from lemlab.core.sessions import (
    Session,
    list_sessions,
    load_session_file,
    model_identity,
    open_or_create,
    save_session,
    to_markdown,
    to_training_jsonl,
    validate_name,
)


@pytest.mark.parametrize("name", ["a", "lab-1", "run_2.b", "X" * 64])
def test_good_names(name: str) -> None:
    assert validate_name(name) == name


@pytest.mark.parametrize(
    "name",
    ["", "../x", "a/b", "a\\b", ".hidden", "a..b", "x" * 65, "sp ace", "é", "-lead", "a\x00"],
)
def test_bad_names_cannot_escape(name: str) -> None:
    with pytest.raises(LemlabError):
        validate_name(name)


def test_round_trip_no_nulls_and_unknown_tables_kept(tmp_path: Path) -> None:
    model = tmp_path / "m"
    model.mkdir()
    (model / "config.json").write_text("{}")
    (model / "model.safetensors").write_bytes(b"x" * 10)
    s = Session(name="t1")
    s.set_model(str(model), is_demo=True)
    s.set_kernel("care", "Be careful.")
    s.sampler = {"temperature": 0.0, "top_p": 1.0, "max_tokens": 64}
    s.add_message("user", "hi", score=None)
    s.add_message(
        "assistant",
        "hello",
        stats={"generation_tokens": 2, "finish_reason": None},
        score=3.5,
        labels=["short"],
    )
    s.add_record(
        "battery_runs",
        {
            "path": "runs/a.jsonl",
            "battery": "P20",
            "conditions": ["baseline", "care"],
            "scorer": "v2",
            "started": "2026-01-01T00:00:00+00:00",
            "note": None,
        },
    )
    s.extra["future_table"] = {"kept": True}
    path = save_session(s, tmp_path)
    text = path.read_text()
    assert "None" not in text.replace(str(tmp_path), "")
    raw = tomllib.loads(text)
    assert raw["schema_version"] == 1 and raw["future_table"] == {"kept": True}
    assert "score" not in raw["messages"][0] and "finish_reason" not in raw["messages"][1]["stats"]
    assert raw["kernel"]["text"] == "Be careful." and len(raw["kernel"]["sha256"]) == 64
    assert raw["model"]["identity"] == model_identity(model) and raw["model"]["is_demo"] is True
    assert "lemlab" in raw["versions"]
    back = load_session_file(path)
    assert back.messages == s.messages and back.records("battery_runs")[0]["battery"] == "P20"
    save_session(back, tmp_path)  # rewriting keeps what it did not understand
    assert tomllib.loads(path.read_text())["future_table"] == {"kept": True}


def test_identity_changes_when_weights_change(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}")
    w = tmp_path / "model.safetensors"
    w.write_bytes(b"a")
    first = model_identity(tmp_path)
    w.write_bytes(b"ab")
    assert model_identity(tmp_path) != first
    assert model_identity(tmp_path / "missing") == ""
    (tmp_path / "adapter_config.json").write_text("{}")
    (tmp_path / "0000010_adapters.safetensors").write_bytes(b"c")
    from lemlab.core.sessions import adapter_identity

    ckpt = adapter_identity(tmp_path / "0000010_adapters.safetensors")
    assert ckpt and ckpt != adapter_identity(tmp_path)


def test_big_kernel_text_is_not_stored(tmp_path: Path) -> None:
    s = Session(name="big")
    s.set_kernel("huge", "x" * (64 * 1024 + 1))
    assert "text" not in s.kernel and s.kernel["sha256"]


def test_damaged_file_reported_and_left_untouched(tmp_path: Path) -> None:
    save_session(Session(name="good"), tmp_path)
    bad = tmp_path / "bad.toml"
    bad.write_text("schema_version = 1\nname = [\n")
    future = tmp_path / "future.toml"
    future.write_text('schema_version = 99\nname = "future"\n')
    found, damaged = list_sessions(tmp_path)
    assert [s.name for s in found] == ["good"]
    assert len(damaged) == 2 and all("\n" not in d for d in damaged)
    assert bad.read_text() == "schema_version = 1\nname = [\n"
    with pytest.raises(DataError, match="schema_version"):
        open_or_create("future", tmp_path)


def test_exports(tmp_path: Path) -> None:
    s = Session(name="ex")
    s.set_kernel("care", "Be careful.")
    s.add_message("user", "q1")
    s.add_message("assistant", "a1", score=2.0, labels=["hedging"])
    s.add_message("user", "unanswered")
    md = to_markdown(s)
    assert "## System" in md and "## Assistant" in md and "score 2.00; failure modes: hedging" in md
    line = json.loads(to_training_jsonl(s))
    assert line == {
        "messages": [{"role": "user", "content": "q1"}, {"role": "assistant", "content": "a1"}]
    }
    assert to_training_jsonl(Session(name="empty")) == ""


def _saved_once(folder: Path) -> tuple[Session, Path, bytes]:
    s = Session(name="crash")
    s.add_message("user", "first " + "padding " * 200)
    save_session(s, folder)
    target = folder / "crash.toml"
    s.add_message("assistant", "second " + "padding " * 200)
    return s, target, target.read_bytes()


def test_a_save_killed_before_the_rename_leaves_the_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The moment a SIGKILL would do harm, made to happen every time: the new text is written and
    fsynced to the temp file, the rename has not run. The session file is the old one, whole."""
    s, target, before = _saved_once(tmp_path)
    seen: dict[str, bytes] = {}

    def killed(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        seen["temp"], seen["target"] = Path(src).read_bytes(), Path(dst).read_bytes()
        raise KeyboardInterrupt  # nothing after this point runs in a killed process

    monkeypatch.setattr(atomic.os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        save_session(s, tmp_path)
    monkeypatch.undo()
    assert seen["target"] == before == target.read_bytes()
    assert [m["content"].split()[0] for m in load_session_file(target).messages] == ["first"]
    temp = tmp_path / "temp.toml"
    temp.write_bytes(seen["temp"])  # the temp file held the whole new session
    assert [m["content"].split()[0] for m in load_session_file(temp).messages] == [
        "first",
        "second",
    ]
    assert list(tmp_path.glob(".crash.toml.*.tmp")) == []  # an exception (not a kill) cleans up


def test_a_save_whose_fsync_fails_leaves_the_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    s, target, before = _saved_once(tmp_path)

    def failing(fd: int) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(atomic.os, "fsync", failing)
    with pytest.raises(OSError, match="Input/output error"):
        save_session(s, tmp_path)
    monkeypatch.undo()
    assert target.read_bytes() == before and list(tmp_path.glob(".crash.toml.*.tmp")) == []
    found, damaged = list_sessions(tmp_path)
    assert damaged == [] and found[0].messages == 1


def test_cli_sessions_lists_and_reports(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    s = Session(name="alpha")
    s.model = {"path": "/models/tiny"}
    s.add_message("user", "hi")
    s.add_record("training_runs", {"path": "runs/t1", "started": "2026-01-01T00:00:00+00:00"})
    save_session(s, tmp_path)
    assert main(["sessions", "--dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "alpha" in out and "tiny" in out
    (tmp_path / "zz.toml").write_text("not = [toml")
    assert main(["sessions", "--json", "--dir", str(tmp_path)]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["sessions"][0] | {"updated": ""} == {
        "name": "alpha",
        "updated": "",
        "model": "/models/tiny",
        "messages": 1,
        "runs": 1,
        "path": str(tmp_path / "alpha.toml"),
    }
    assert len(data["damaged"]) == 1 and "zz.toml" in data["damaged"][0]


def test_cli_sessions_empty(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sessions"]) == 0
    assert "no sessions" in capsys.readouterr().out
