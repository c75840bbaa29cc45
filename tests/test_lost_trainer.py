"""A trainer that dies without a final event (SIGKILL, a crash): `lemlab train` records it in the
events file, and `lemlab watch` tells it from the pid and host in the start event instead of
waiting forever. Real processes throughout; the last test kills a real training child."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from support.train import lemlab_cmd, read_events, write_chat_data

from lemlab.core.training.events import RunSource, RunWatcher
from lemlab.engine.train_runner import TRAINER_MODULE, trainer_check, trainer_gone

HOST = socket.gethostname()


def _sleeper(*marker: str) -> subprocess.Popen[bytes]:
    """A process whose command line looks like a trainer's (with the marker) or not."""
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", *marker])


def _dead_pid() -> int:
    proc = _sleeper(TRAINER_MODULE)
    proc.kill()
    proc.wait()  # reaped: the pid is free
    return proc.pid


def test_trainer_gone_tells_live_dead_zombie_and_foreign_processes() -> None:
    alive = _sleeper(TRAINER_MODULE)
    stranger = _sleeper()  # a pid that is alive but not a lemlab process (a reused pid)
    zombie = _sleeper(TRAINER_MODULE)
    try:
        assert not trainer_gone(alive.pid, HOST)
        assert not trainer_gone(alive.pid, HOST + "-elsewhere")  # another machine: can't tell
        assert trainer_gone(_dead_pid(), HOST)
        assert not trainer_gone(_dead_pid(), HOST + "-elsewhere")
        zombie.kill()
        deadline = time.monotonic() + 30
        while not Path(f"/proc/{zombie.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
            assert time.monotonic() < deadline
            time.sleep(0.02)
        assert trainer_gone(zombie.pid, HOST)  # killed, not yet reaped by its parent
        assert trainer_gone(stranger.pid, HOST)
    finally:
        for p in (alive, stranger, zombie):
            p.kill()
            p.wait()


def _events(folder: Path, pid: int, *extra: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    lines = [{"event": "start", "ts": 1.0, "total_iters": 100, "pid": pid, "host": HOST}]
    lines.append({"event": "train", "ts": 2.0, "iteration": 5, "train_loss": 2.5})
    path = folder / "events.jsonl"
    path.write_text("".join(json.dumps(obj) + "\n" for obj in [*lines, *extra]))
    return path


def test_watcher_marks_a_run_interrupted_only_after_the_grace(tmp_path: Path) -> None:
    path = _events(tmp_path / "run", _dead_pid())
    watcher = RunWatcher(RunSource(path, path.parent), liveness=trainer_check(0.3))
    watcher.poll()
    assert watcher.state.trainer == (watcher.state.trainer[0], HOST)  # type: ignore[index]
    assert watcher.check_trainer() is False and watcher.state.status == "running"  # grace starts
    deadline = time.monotonic() + 30
    while not watcher.check_trainer():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert watcher.state.status == "interrupted" and watcher.state.finished
    assert "ended without a final event" in (watcher.state.message or "")

    live = _sleeper(TRAINER_MODULE)
    try:
        path = _events(tmp_path / "live", live.pid)
        watcher = RunWatcher(RunSource(path, path.parent), liveness=trainer_check(0.0))
        watcher.poll()
        assert watcher.check_trainer() is False and watcher.state.status == "running"
    finally:
        live.kill()
        live.wait()
    # no liveness asked for, or a finished run: never checked
    path = _events(tmp_path / "off", _dead_pid())
    watcher = RunWatcher(RunSource(path, path.parent))
    watcher.poll()
    assert watcher.check_trainer() is False and watcher.state.status == "running"
    path = _events(tmp_path / "done", _dead_pid(), {"event": "done", "ts": 3.0})
    watcher = RunWatcher(RunSource(path, path.parent), liveness=trainer_check(0.0))
    watcher.poll()
    assert watcher.check_trainer() is False and watcher.state.status == "done"


def test_watch_exits_1_with_one_line_for_an_interrupted_run(tmp_path: Path) -> None:
    path = _events(tmp_path / "run", _dead_pid())
    once = subprocess.run(
        lemlab_cmd("watch", "--once", path), capture_output=True, text=True, timeout=60
    )
    assert once.returncode == 1
    assert "interrupted" in once.stdout  # the summary's status line
    assert once.stderr.count("\n") == 1 and once.stderr.startswith(
        "run interrupted: the trainer (pid"
    )
    follow = subprocess.run(
        lemlab_cmd("watch", "--interval", "0.2", path), capture_output=True, text=True, timeout=60
    )
    assert follow.returncode == 1, follow.stderr
    assert "interrupted: the trainer" in follow.stdout and "Traceback" not in follow.stderr


def test_a_killed_training_child_is_recorded_and_watch_ends(
    tiny_model: Path, tmp_path: Path
) -> None:
    data = write_chat_data(tmp_path / "data")
    adapter = tmp_path / "adapter"
    cmd = lemlab_cmd(
        "train",
        "--model",
        tiny_model,
        "--data",
        data,
        "--adapter-path",
        adapter,
        "--iters",
        "100000",
        "--batch-size",
        "1",
        "--num-layers",
        "1",
        "--save-every",
        "1000",
        "--steps-per-report",
        "5",
        "--steps-per-eval",
        "1000",
        "--yes",
    )
    train = subprocess.Popen(
        cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    events_path = adapter / "events.jsonl"
    watch = None
    try:
        deadline = time.monotonic() + 90
        while not (events_path.exists() and '"train"' in events_path.read_text()):
            assert train.poll() is None and time.monotonic() < deadline, train.communicate()
            time.sleep(0.05)
        start = read_events(events_path)[0]
        assert start["event"] == "start" and start["host"] == HOST
        watch = subprocess.Popen(
            lemlab_cmd("watch", "--interval", "0.2", adapter),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        os.kill(start["pid"], signal.SIGKILL)  # the child: no chance to write a final event
        _, err = train.communicate(timeout=60)
        assert train.returncode != 0 and "killed by signal 9" in err
        last = read_events(events_path)[-1]
        assert last["event"] == "error" and last["lost_trainer"] and "signal 9" in last["message"]
        out, _ = watch.communicate(timeout=60)
        assert (
            watch.returncode == 1 and "signal 9" in out
        )  # it ended on the recorded error event: a failure
    finally:
        for p in (train, watch):
            if p is not None and p.poll() is None:
                p.kill()
                p.wait()
