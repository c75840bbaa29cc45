"""Writers that never destroy data: file modes of atomic writes, a copied session saving to
itself, --force for outputs that exist, extract refusing to overwrite its own input, duplicate
samples read once, and a write that fails on a full disk saying truthfully what is left."""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from lemlab.cli import main
from lemlab.core.atomic import write_text_atomic
from lemlab.core.sessions import list_sessions, open_or_create, save_session

FIXTURES = Path(__file__).parent / "fixtures"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def umask_027() -> Iterator[None]:
    old = os.umask(0o027)
    try:
        yield
    finally:
        os.umask(old)


# --- file modes ----------------------------------------------------------------------------------


def test_new_files_follow_the_umask_and_replaced_files_keep_their_mode(
    tmp_path: Path, umask_027: None
) -> None:
    new = tmp_path / "new.jsonl"
    write_text_atomic(new, "a\n")
    assert mode(new) == 0o640  # 0666 & ~027, as `touch` would make it (not mkstemp's 0600)

    shared = tmp_path / "shared.jsonl"
    shared.write_text("old\n")
    shared.chmod(0o644)  # wider than the umask allows for new files: kept anyway
    write_text_atomic(shared, "new\n")
    assert shared.read_text() == "new\n" and mode(shared) == 0o644

    private = tmp_path / "private.jsonl"
    private.write_text("old\n")
    private.chmod(0o600)
    write_text_atomic(private, "new\n")
    assert mode(private) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "new.jsonl",
        "private.jsonl",
        "shared.jsonl",
    ]


def test_extract_output_is_readable_by_others_under_umask_022(tmp_path: Path) -> None:
    src = write_distill(tmp_path / "d.jsonl", [("P1", 0), ("P2", 0), ("P3", 0)])
    old = os.umask(0o022)
    try:
        assert (
            main(["extract", "--input", str(src), "--output", str(tmp_path / "o"), "--split"]) == 0
        )
    finally:
        os.umask(old)
    assert mode(tmp_path / "o" / "train.jsonl") == 0o644
    assert mode(tmp_path / "o" / "valid.jsonl") == 0o644


def test_sessions_are_created_private_and_keep_a_mode_the_user_chose(
    tmp_path: Path, umask_027: None
) -> None:
    s, _ = open_or_create("work", tmp_path)
    path = save_session(s, tmp_path)
    assert mode(path) == 0o600  # conversations stay private by default
    path.chmod(0o640)
    s.add_message("user", "hello")
    save_session(s, tmp_path)
    assert mode(path) == 0o640


# --- sessions: the file name is the identity -------------------------------------------------------


def test_a_copied_session_saves_to_the_copy_not_the_original(tmp_path: Path) -> None:
    s, _ = open_or_create("work", tmp_path)
    s.add_message("user", "the original question")
    save_session(s, tmp_path)
    shutil.copy(tmp_path / "work.toml", tmp_path / "work-copy.toml")
    original = (tmp_path / "work.toml").read_bytes()

    copy, created = open_or_create("work-copy", tmp_path)
    assert not created and copy.name == "work-copy"  # not the name stored inside the file
    copy.add_message("user", "a turn made in the copy")
    assert save_session(copy, tmp_path) == tmp_path / "work-copy.toml"

    assert (tmp_path / "work.toml").read_bytes() == original
    text = (tmp_path / "work-copy.toml").read_text()
    assert "a turn made in the copy" in text and 'name = "work-copy"' in text
    names = sorted(x.name for x in list_sessions(tmp_path)[0])
    assert names == ["work", "work-copy"]


# --- --force ----------------------------------------------------------------------------------------


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


def test_rescore_out_refuses_an_existing_file_unless_force(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "finished-run.jsonl"
    out.write_bytes(b"a finished A/B run\n")
    assert main(["rescore", str(FIXTURES / "abfile-v1-sample.jsonl"), "--out", str(out)]) == 2
    line = one_line(capsys.readouterr().err)
    assert f"{out} already exists" in line and "--force" in line
    assert out.read_bytes() == b"a finished A/B run\n"
    assert (
        main(["rescore", str(FIXTURES / "abfile-v1-sample.jsonl"), "--out", str(out), "--force"])
        == 0
    )
    assert json.loads(out.read_text().splitlines()[0])["type"] == "probe"


def test_rescore_into_its_own_input_is_refused_even_with_force(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "run.jsonl"
    shutil.copy(FIXTURES / "abfile-v1-sample.jsonl", src)
    before = src.read_bytes()
    assert main(["rescore", str(src), "--out", str(tmp_path), "--force"]) == 2  # tmp/run.jsonl
    assert "would replace its own input" in one_line(capsys.readouterr().err)
    assert src.read_bytes() == before


def test_rephrase_refuses_an_existing_output_and_its_own_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    battery = tmp_path / "b.json"
    battery.write_text(json.dumps([{"id": "P1", "category": "c", "prompt": "Is it fair?"}]))
    before = battery.read_bytes()
    assert main(["rephrase", "-i", str(battery), "-o", str(battery), "--force"]) == 2
    assert "would replace its own input" in one_line(capsys.readouterr().err)
    assert battery.read_bytes() == before

    out = tmp_path / "out.json"
    out.write_bytes(b"keep me")
    assert main(["rephrase", "-i", str(battery), "-o", str(out)]) == 2
    assert "already exists: add --force" in one_line(capsys.readouterr().err)
    assert out.read_bytes() == b"keep me"
    assert main(["rephrase", "-i", str(battery), "-o", str(out), "--force"]) == 0
    assert [p["id"] for p in json.loads(out.read_text())][:2] == ["P1", "P1_R_PERS"]


def training_line(pid: str, idx: int, reply: str = "") -> str:
    msgs = [
        {"role": "user", "content": f"prompt {pid}"},
        {"role": "assistant", "content": reply or f"reply {pid} #{idx}"},
    ]
    meta = {"probe_id": pid, "sample_idx": idx, "lek_score": 30.0, "category": "c"}
    return json.dumps({"type": "training", "training": {"messages": msgs}, "meta": meta}) + "\n"


def write_distill(path: Path, keys: list[tuple[str, int]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(training_line(p, i) for p, i in keys))
    return path


def test_extract_split_into_the_folder_holding_its_input_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = write_distill(tmp_path / "o" / "train.jsonl", [("P1", 0), ("P2", 0), ("P3", 0)])
    before = src.read_bytes()
    for extra in ([], ["--force"]):
        args = ["extract", "--input", str(src), "--output", str(tmp_path / "o"), "--split", *extra]
        assert main(args) == 2
        line = one_line(capsys.readouterr().err)
        assert "would replace its own input" in line and "train.jsonl" in line
        assert src.read_bytes() == before
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["train.jsonl"]


def test_extract_refuses_existing_outputs_unless_force(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = write_distill(tmp_path / "d.jsonl", [("P1", 0), ("P2", 0)])
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "valid.jsonl").write_bytes(b"hand-made validation\n")
    assert main(["extract", "--input", str(src), "--output", str(folder), "--split"]) == 2
    assert "valid.jsonl already exists: add --force" in one_line(capsys.readouterr().err)
    assert (folder / "valid.jsonl").read_bytes() == b"hand-made validation\n"
    assert not (folder / "train.jsonl").exists()  # nothing half-done either
    assert (
        main(["extract", "--input", str(src), "--output", str(folder), "--split", "--force"]) == 0
    )
    assert (folder / "valid.jsonl").read_bytes() != b"hand-made validation\n"


def test_extract_reads_a_repeated_sample_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Two writers on one distill file wrote P1 #0 twice: split must not put it in both parts.
    keys = [("P1", 0), ("P2", 0), ("P3", 0), ("P1", 1)]
    src = tmp_path / "d.jsonl"
    src.write_text("".join(training_line(p, i) for p, i in keys) + training_line("P1", 0, "again"))
    out = tmp_path / "o"
    assert (
        main(["extract", "--input", str(src), "--output", str(out), "--split", "--dedup", "all"])
        == 1
    )
    assert "d.jsonl:5: probe 'P1' sample 0 repeats line 1" in capsys.readouterr().err
    texts = [
        json.loads(x)["messages"][1]["content"]
        for f in ("train.jsonl", "valid.jsonl")
        for x in (out / f).read_text().splitlines()
    ]
    assert sorted(texts) == ["reply P1 #0", "reply P1 #1", "reply P2 #0", "reply P3 #0"]


# --- a failed append --------------------------------------------------------------------------------

APPEND = """
import sys
from pathlib import Path
from lemlab.core.errors import LemlabError
from lemlab.core.files.run_files import append_line
try:
    append_line(Path(sys.argv[1]), "x" * 200 + "\\n")
except LemlabError as exc:
    print(exc)
"""


def _limit_file_size() -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (300, 300))


def test_a_line_that_does_not_fit_is_cut_back_and_the_message_says_so(tmp_path: Path) -> None:
    out = tmp_path / "run.jsonl"
    out.write_text('{"type": "probe", "id": "P1"}\n' * 7)  # 210 bytes: 200 more do not fit in 300
    before = out.read_bytes()
    proc = subprocess.run(
        [sys.executable, "-c", APPEND, str(out)],
        capture_output=True,
        text=True,
        preexec_fn=_limit_file_size,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert f"cannot write {out}" in proc.stdout
    assert "every line before this one is intact" in proc.stdout and "--resume" in proc.stdout
    assert out.read_bytes() == before  # the torn line was removed: the message is true


# --- failed starts leave nothing that blocks the rerun -----------------------------------------------


@pytest.fixture
def broken_model(tiny_model: Path, tmp_path: Path) -> Path:
    """A model folder that passes the checks before loading but whose weights cannot be read."""
    folder = tmp_path / "broken"
    shutil.copytree(tiny_model, folder)
    for weights in folder.glob("*.safetensors"):
        weights.write_bytes(b"not safetensors")
    return folder


def test_a_run_whose_model_fails_to_load_leaves_no_file(
    broken_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "d.jsonl"
    args = [
        "distill",
        "--model",
        str(broken_model),
        "--prompts",
        "ccp6",
        "--output",
        str(out),
        "--samples",
        "1",
        "--max-tokens",
        "8",
    ]
    assert main(args) == 2
    assert "cannot read weights" in one_line(capsys.readouterr().err)
    ab_out = tmp_path / "a.jsonl"
    assert (
        main(
            [
                "ab",
                "--model",
                str(broken_model),
                "--prompts",
                "ccp6",
                "--output",
                str(ab_out),
                "--max-tokens",
                "8",
            ]
        )
        == 2
    )
    assert "cannot read weights" in one_line(capsys.readouterr().err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken"]  # no output, sidecar or lock


def test_leftovers_of_a_start_killed_before_its_first_sample_do_not_block_the_rerun(
    tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from lemlab.core.distill import output as d

    # SIGKILL while the model loaded: an empty output and a progress file with its header only.
    out = tmp_path / "d.jsonl"
    settings = d.DistillSettings(model=str(tiny_model), samples=1, max_tokens=8, truncated="keep")
    d.open_distill_output(out, settings, [], resume=False).lock.release()  # type: ignore[union-attr]
    assert out.read_bytes() == b"" and d.progress_path(out).read_bytes().count(b"\n") == 1
    args = [
        "distill",
        "--model",
        str(tiny_model),
        "--prompts",
        "ccp6",
        "--output",
        str(out),
        "--samples",
        "1",
        "--max-tokens",
        "8",
        "--truncated",
        "keep",
        "--limit",
        "1",
        "--threshold",
        "-1000",
    ]
    assert main(args) == 0  # no --resume needed: there was nothing to resume
    assert "is empty (an earlier run stopped before its first result)" in capsys.readouterr().err
    assert json.loads(out.read_text().splitlines()[-1])["total_generated"] == 1


async def test_a_tui_chat_in_a_copied_session_leaves_the_original_as_it_was(tmp_path: Path) -> None:
    from support.tui import fake_model_dir, wait_idle

    from lemlab.engine.fake import FakeEngine
    from lemlab.tui.app import LemlabApp
    from lemlab.tui.chat.composer import Composer
    from lemlab.tui.services import Settings

    sessions = tmp_path / "sessions"
    work, _ = open_or_create("work", sessions)
    work.add_message("user", "the original question")
    save_session(work, sessions)
    shutil.copy(sessions / "work.toml", sessions / "work-copy.toml")
    original = (sessions / "work.toml").read_bytes()

    copy, _ = open_or_create("work-copy", sessions, lock=True)  # as `lemlab --session work-copy`
    settings = Settings(sessions_dir=sessions, scan_hf_cache=False, model_dirs=[])
    app = LemlabApp(
        FakeEngine(),
        settings=settings,
        session=copy,
        model=str(fake_model_dir(tmp_path / "models")),
    )
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_idle(pilot, app)
        app.query_one("#chat-input", Composer).value = "asked in the copy"
        await pilot.press("enter")
        await wait_idle(pilot, app)
        assert app.lab.session.name == "work-copy"
    assert (sessions / "work.toml").read_bytes() == original
    assert "asked in the copy" in (sessions / "work-copy.toml").read_text()
