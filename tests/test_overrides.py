"""Overrides kept in the session: validation, latest-wins, removal, TOML round trip."""

from __future__ import annotations

from pathlib import Path

import pytest

from lemlab.core.ab.overrides import (
    Override,
    add_override,
    make_override,
    overrides_for_run,
    parse_corrected,
    remove_override,
    run_key,
)
from lemlab.core.errors import LemlabError
from lemlab.core.sessions import Session, load_session_file, save_session


@pytest.mark.parametrize(("text", "value"), [("12", 12.0), (" -3.456 ", -3.46), ("0", 0.0)])
def test_parse_corrected(text: str, value: float) -> None:
    assert parse_corrected(text) == value


@pytest.mark.parametrize("text", ["", "abc", "nan", "inf", "1,5"])
def test_parse_corrected_rejects(text: str) -> None:
    with pytest.raises(LemlabError):
        parse_corrected(text)


def test_reason_is_required_and_one_line(tmp_path: Path) -> None:
    with pytest.raises(LemlabError, match="reason"):
        make_override(tmp_path / "r.jsonl", "p", "k", 1.0, "2", "   ")
    ov = make_override(tmp_path / "r.jsonl", "p", "k", 1.234, "2", "  missed\n the  metaphor ")
    assert (ov.original, ov.corrected, ov.reason) == (1.23, 2.0, "missed the metaphor")
    assert ov.run == str((tmp_path / "r.jsonl").absolute())


def test_round_trip_through_session_toml(tmp_path: Path) -> None:
    run = tmp_path / "runs" / "r.jsonl"
    run.parent.mkdir()
    run.write_text("")
    s = Session(name="s")
    add_override(s, make_override(run, "p1", "kernel", 1.0, "5", "first try"))
    add_override(
        s,
        make_override(
            str(run.parent / ".." / "runs" / "r.jsonl"), "p1", "kernel", 1.0, "6", "better"
        ),
    )
    add_override(s, make_override(tmp_path / "other.jsonl", "p1", "kernel", 1.0, "9", "other run"))
    save_session(s, tmp_path / "sessions")
    back = load_session_file(tmp_path / "sessions" / "s.toml")
    got = overrides_for_run(back, run)
    assert list(got) == [("p1", "kernel")]
    assert (got[("p1", "kernel")].corrected, got[("p1", "kernel")].reason) == (6.0, "better")
    assert len(back.records("overrides")) == 3
    assert remove_override(back, run, "p1", "kernel") == 2
    assert overrides_for_run(back, run) == {}
    assert len(back.records("overrides")) == 1


def test_damaged_records_are_skipped() -> None:
    s = Session(name="s")
    s.add_record("overrides", {"run": run_key("/x"), "probe_id": "p"})  # no values
    s.add_record("overrides", Override(run_key("/x"), "p", "k", 1.0, 2.0, "ok").to_record())
    assert list(overrides_for_run(s, "/x")) == [("p", "k")]
