"""One writer per file, with real processes: a second `lemlab ab` / `lemlab distill` on an output
another run has open, or a second TUI on an open session, gets one line naming the holder (pid,
host, command) and exit 2, and the file is left as it was. A killed holder frees its lock (the
kernel releases flock), so resuming after a crash is never blocked."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from support.notifications import notifications
from support.tmux import LEMLAB, NEEDS_TMUX, tmux_session
from support.tui import wait_idle

from lemlab.core.locks import LockHeld, acquire, lock_path
from lemlab.core.sessions import Session, open_or_create, save_session
from lemlab.engine.fake import FakeEngine
from lemlab.tui.app import LemlabApp
from lemlab.tui.services import Settings

BATTERY = [
    {"id": f"P{i:02d}", "category": "c", "prompt": f"Question number {i}: is it fair?"}
    for i in range(1, 7)
]
ENV = {**os.environ, "MLX_DISABLE_COMPILE": "1"}
HOLD = "import sys; from lemlab.core.locks import acquire; l = acquire(sys.argv[1]); print('held', flush=True); sys.stdin.read()"


def lemlab(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lemlab", *args],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=120,
    )


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


def wait_for(test: Callable[[], bool], proc: subprocess.Popen[str], timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while not test():
        assert proc.poll() is None, "the first run ended before the test could hold it"
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


@pytest.fixture
def stopped() -> Iterator[list[subprocess.Popen[str]]]:
    """Processes the test started (and may have stopped): always continued and ended."""
    procs: list[subprocess.Popen[str]] = []
    yield procs
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGCONT)
            p.kill()
        p.wait(timeout=30)


def probe_lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


def test_second_ab_on_a_running_output_is_refused_naming_the_holder(
    tiny_model: Path, tmp_path: Path, stopped: list[subprocess.Popen[str]]
) -> None:
    battery = tmp_path / "battery.json"
    battery.write_text(json.dumps(BATTERY))
    out = tmp_path / "run.jsonl"
    args = [
        "ab",
        "--model",
        str(tiny_model),
        "--prompts",
        str(battery),
        "--output",
        str(out),
        "--max-tokens",
        "12",
    ]
    first = subprocess.Popen(
        [sys.executable, "-m", "lemlab", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
        env=ENV,
    )
    stopped.append(first)
    wait_for(lambda: out.exists() and out.read_bytes().count(b"\n") >= 1, first)
    first.send_signal(signal.SIGSTOP)  # mid-run, holding its lock
    before = out.read_bytes()

    for extra in (["--resume"], []):
        second = lemlab(*args, *extra)
        assert second.returncode == 2, second.stderr
        line = one_line(second.stderr)
        assert line.startswith(
            f"lemlab: error: {out} is in use by pid {first.pid} on "
            f"{socket.gethostname()} (lemlab ab --model"
        )
        assert out.read_bytes() == before

    first.send_signal(signal.SIGCONT)
    assert first.wait(timeout=120) == 0
    lines = probe_lines(out)
    ids = [ln["id"] for ln in lines if ln["type"] == "probe"]
    assert sorted(ids) == [p["id"] for p in BATTERY]  # each probe once
    assert [ln["type"] for ln in lines].count("summary") == 1
    assert not lock_path(out).exists()  # released (and removed) at the end of the run
    again = lemlab(*args, "--resume")
    assert again.returncode == 0 and "already complete" in again.stdout


def test_second_distill_resume_is_refused_and_a_killed_holder_frees_the_lock(
    tiny_model: Path, tmp_path: Path, stopped: list[subprocess.Popen[str]]
) -> None:
    out = tmp_path / "distill.jsonl"
    args = [
        "distill",
        "--model",
        str(tiny_model),
        "--prompts",
        "ccp6",
        "--output",
        str(out),
        "--samples",
        "2",
        "--max-tokens",
        "8",
        "--threshold",
        "-1000",
        "--truncated",
        "keep",
    ]
    first = subprocess.Popen(
        [sys.executable, "-m", "lemlab", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
        env=ENV,
    )
    stopped.append(first)
    wait_for(lambda: out.exists() and out.read_bytes().count(b"\n") >= 2, first)
    first.send_signal(signal.SIGSTOP)
    before = out.read_bytes()
    second = lemlab(*args, "--resume")
    assert second.returncode == 2, second.stderr
    assert f"is in use by pid {first.pid}" in one_line(second.stderr)
    assert out.read_bytes() == before

    first.send_signal(signal.SIGKILL)  # a crash: no clean release
    first.wait(timeout=30)
    assert lock_path(out).exists()  # its description stays behind, but not the lock
    resumed = lemlab(*args, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    keys = [
        (ln["meta"]["probe_id"], ln["meta"]["sample_idx"])
        for ln in probe_lines(out)
        if ln["type"] == "training"
    ]
    assert len(keys) == len(set(keys)) == 12  # 6 probes x 2 samples, each once
    assert not lock_path(out).exists()


def test_resume_refuses_duplicate_distill_lines_and_leaves_the_file(
    tiny_model: Path, tmp_path: Path
) -> None:
    # What two unlocked writers used to leave: one sample's training line twice.
    out = tmp_path / "d.jsonl"
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
        "--threshold",
        "-1000",
        "--truncated",
        "keep",
        "--limit",
        "2",
    ]
    done = lemlab(*args)
    assert done.returncode == 0, done.stderr
    lines = out.read_text().splitlines(keepends=True)
    out.write_text(lines[0] + lines[0] + "".join(lines[1:]))
    before = out.read_bytes()
    again = lemlab(*args, "--resume")
    assert again.returncode == 2
    line = one_line(again.stderr)
    assert f"{out}:2: probe" in line and "sample 0 is also on line 1" in line
    assert out.read_bytes() == before


def test_a_held_lock_names_its_holder_and_a_dead_one_frees_it(tmp_path: Path) -> None:
    target = tmp_path / "x.jsonl"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(target)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=ENV,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        with pytest.raises(LockHeld, match=rf"is in use by pid {holder.pid} on "):
            acquire(target)
    finally:
        holder.kill()
        holder.wait(timeout=30)
    with acquire(target) as lock:  # SIGKILLed: the kernel released it
        assert lock.held
    assert not lock_path(target).exists()


# --- sessions ------------------------------------------------------------------------------------


async def test_tui_refuses_a_session_another_process_holds_and_frees_the_one_it_leaves(
    tmp_path: Path,
) -> None:
    sessions = tmp_path / "sessions"
    busy = Session(name="busy")
    busy.add_message("user", "written by the other lemlab")
    save_session(busy, sessions)
    before = (sessions / "busy.toml").read_bytes()
    mine, _ = open_or_create("mine", sessions, lock=True)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(sessions / "busy.toml")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=ENV,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        settings = Settings(sessions_dir=sessions, scan_hf_cache=False, model_dirs=[])
        app = LemlabApp(FakeEngine(), settings=settings, session=mine)
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_idle(pilot, app)
            app.open_session("busy")
            await wait_idle(pilot, app)
            assert app.lab.session is mine  # kept the open session
            assert any(
                f"session busy is in use by pid {holder.pid}" in n.message
                for n in notifications(app)
            )
            app.open_session("other")
            await wait_idle(pilot, app)
            assert app.lab.session.name == "other"
            with acquire(sessions / "mine.toml"):  # the session it left is free for others
                pass
            with pytest.raises(LockHeld):  # the one it opened is not
                acquire(sessions / "other.toml")
    finally:
        holder.kill()
        holder.wait(timeout=30)
    assert (sessions / "busy.toml").read_bytes() == before


@pytest.mark.slow
@NEEDS_TMUX
def test_second_tui_on_an_open_session_gets_one_line_and_exit_2(
    lemlab_home: Path, tmp_path: Path
) -> None:
    env = {"LEMLAB_HOME": str(lemlab_home), "LEMLAB_FAKE_ENGINE": "1"}
    session_file = lemlab_home / "data" / "sessions" / "work.toml"
    with tmux_session("lemlab-lock", [LEMLAB, "--session", "work"], env, stop_keys="C-q"):
        deadline = time.monotonic() + 60
        while not (lock_path(session_file).exists() and lock_path(session_file).stat().st_size):
            assert time.monotonic() < deadline, "the first TUI never took its session"
            time.sleep(0.1)
        second = subprocess.run(
            [str(LEMLAB), "--session", "work"],
            capture_output=True,
            text=True,
            env={**ENV, "LEMLAB_HOME": str(lemlab_home)},
            timeout=60,
        )
        assert second.returncode == 2
        line = one_line(second.stderr)
        assert line.startswith("lemlab: error: session work is in use by pid ")
        assert "(lemlab --session work)" in line
    deadline = time.monotonic() + 30
    while True:  # the first TUI has ended: its session is free again
        try:
            with acquire(session_file):
                break
        except LockHeld:
            assert time.monotonic() < deadline
            time.sleep(0.2)


def test_an_interrupted_distill_with_a_repeated_progress_line_is_refused(tmp_path: Path) -> None:
    from lemlab.core.battery.probes import Probe
    from lemlab.core.distill import output as d
    from lemlab.core.errors import LemlabError

    probes = [Probe("P1", "c", "Is it fair?"), Probe("P2", "c", "Who decides?")]
    settings = d.DistillSettings(model="m", samples=2)
    out, prog = tmp_path / "d.jsonl", d.progress_path(tmp_path / "d.jsonl")
    out.write_text("")
    rec = {"type": "sample", "probe_id": "P1", "sample_idx": 1, "lek_score": 1.0, "kept": False}
    prog.write_text("".join(d.dumps_line(x) for x in (settings.header(), rec, rec)))
    before = (out.read_bytes(), prog.read_bytes())
    with pytest.raises(
        LemlabError, match=r"d.jsonl.progress.jsonl:3: probe 'P1' sample 1 is also on line 2"
    ):
        d.open_distill_output(out, settings, probes, resume=True)
    assert (out.read_bytes(), prog.read_bytes()) == before
    assert not lock_path(out).exists()  # a refused open lets go of the lock at once


@pytest.mark.slow
def test_second_train_on_a_live_adapter_folder_is_refused_and_its_events_kept(
    tiny_model: Path, tmp_path: Path
) -> None:
    from support.train import write_chat_data

    data = write_chat_data(tmp_path / "data")
    adapter = tmp_path / "adapter"
    args = [
        "train",
        "--model",
        str(tiny_model),
        "--data",
        str(data),
        "--adapter-path",
        str(adapter),
        "--iters",
        "100000",
        "--batch-size",
        "1",
        "--num-layers",
        "1",
        "--steps-per-report",
        "5",
        "--steps-per-eval",
        "100000",
        "--save-every",
        "100000",
        "--yes",
    ]
    first = subprocess.Popen(
        [sys.executable, "-m", "lemlab", *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
    )
    events = adapter / "events.jsonl"
    try:
        wait_for(lambda: events.exists() and '"train"' in events.read_text(), first)  # type: ignore[arg-type]
        start = json.loads(events.read_text().splitlines()[0])
        second = lemlab(*args)
        assert second.returncode == 2
        line = one_line(second.stderr)
        assert line.startswith(
            f"lemlab: error: training run {adapter} is in use by pid {start['pid']}"
        )
        assert "lemlab.engine.train_child" in line
        assert events.exists() and not list(adapter.glob("events.*.jsonl"))  # not archived
        assert json.loads(events.read_text().splitlines()[0]) == start
    finally:
        first.send_signal(signal.SIGINT)  # the first run stops cleanly (adapters saved)
        _, err = first.communicate(timeout=120)
    assert first.returncode == 130, err
    assert not lock_path(events).exists()


def test_a_pipeline_whose_output_another_run_holds_is_refused(
    tiny_model: Path, tmp_path: Path
) -> None:
    from test_pipeline import tiny_pipeline

    from lemlab.core.distill import pipeline as pl

    path = tiny_pipeline(tmp_path, tiny_model)
    state = pl.load_pipeline(path).output / pl.STATE_FILE
    state.parent.mkdir(parents=True)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(state)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=ENV,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        second = lemlab("pipeline", str(path), "--yes")
        assert second.returncode == 2
        assert f"pipeline output {state.parent} is in use by pid {holder.pid}" in one_line(
            second.stderr
        )
    finally:
        holder.kill()
        holder.wait(timeout=30)
    assert sorted(p.name for p in state.parent.iterdir()) == [state.name + ".lock"]  # no work done


def test_resume_refuses_an_ab_file_with_a_repeated_probe_and_leaves_it(
    tiny_model: Path, tmp_path: Path
) -> None:
    battery = tmp_path / "battery.json"
    battery.write_text(json.dumps(BATTERY[:2]))
    out = tmp_path / "run.jsonl"
    args = [
        "ab",
        "--model",
        str(tiny_model),
        "--prompts",
        str(battery),
        "--output",
        str(out),
        "--max-tokens",
        "8",
    ]
    assert lemlab(*args).returncode == 0
    lines = out.read_text().splitlines(keepends=True)
    out.write_text(lines[0] + lines[0])  # what two unlocked runs left: P01 twice, no summary
    before = out.read_bytes()
    again = lemlab(*args, "--resume")
    assert again.returncode == 2
    line = one_line(again.stderr)
    assert "duplicate probe id 'P01'" in line and "cannot resume" in line
    assert out.read_bytes() == before


def test_resume_refuses_a_sidecar_with_a_repeated_partial_result(tmp_path: Path) -> None:
    from lemlab.core.ab.store import RunSettings, open_output, sidecar_path
    from lemlab.core.battery.probes import Probe
    from lemlab.core.errors import LemlabError

    settings = RunSettings(
        "m", "v2", {"temperature": 0.0}, {"baseline": {"adapter": None, "kernel_sha256": None}}
    )
    out = tmp_path / "run.jsonl"
    out.write_text("")
    side = sidecar_path(out)
    rec = {"type": "partial", "variant": "base", "id": "P1", "conditions": {}}
    side.write_text("".join(json.dumps(x) + "\n" for x in (settings.header(), rec, rec)))
    before = side.read_bytes()
    with pytest.raises(
        LemlabError, match=r"run.jsonl.partial.jsonl:3: probe 'P1' of 'base' is also on line 2"
    ):
        open_output(out, settings, [Probe("P1", "c", "Is it fair?")], resume=True)
    assert side.read_bytes() == before and out.read_bytes() == b""
