"""events.jsonl rotated or replaced while a run writes it: the follower reads what the writer
writes (it holds the file open), `lemlab train` reports a finished run as finished, and
`lemlab watch` follows the run to its end and exits."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest
from support.train import lemlab_cmd, write_chat_data

from lemlab.core.training.file_follower import LineFollower


def rotate(path: Path) -> Path:
    """logrotate's way: move the file aside, put an empty one under the name."""
    old = path.with_name(path.name + ".1")
    os.rename(path, old)
    path.write_bytes(b"")
    return old


def test_following_the_name_reads_the_old_file_to_its_end_before_switching(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    f = LineFollower(path)
    with open(path, "ab", buffering=0) as writer:  # a writer that keeps its file open
        writer.write(b"one\n")
        assert f.poll() == (["one"], False)
        rotate(path)
        writer.write(b"two\n")  # still goes to the rotated file
        assert f.poll() == (["two"], False)  # read before the switch, not lost
    assert f.poll() == ([], True)  # now the file under the name, from its top
    with open(path, "ab") as fh:
        fh.write(b"fresh\n")
    assert f.poll() == (["fresh"], False)


def test_a_name_with_no_file_behind_it_keeps_the_old_file_followed(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    f = LineFollower(path)
    with open(path, "ab", buffering=0) as writer:
        writer.write(b"one\n")
        assert f.poll() == (["one"], False)
        os.rename(path, tmp_path / "moved.jsonl")  # nothing under the name any more
        writer.write(b"two\n")
        assert f.poll() == (["two"], False)
        assert f.poll() == ([], False)


def test_following_the_file_stays_with_the_run_through_a_rotation(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    f = LineFollower(path, follow_name=False)
    assert f.poll() == ([], False)  # not there yet: waits for it
    with open(path, "ab", buffering=0) as writer:
        writer.write(b"start\n")
        assert f.poll() == (["start"], False)
        rotate(path)
        path.write_bytes(b"someone else's file\n")
        writer.write(b"done\n")
        assert f.poll() == (["done"], False)
        writer.seek(0)
        os.truncate(writer.fileno(), 0)  # truncated in place: still a restart
        writer.write(b"again\n")
        assert f.poll() == (["again"], True)


@pytest.mark.slow
def test_train_and_watch_survive_a_rotation_mid_run(tiny_model: Path, tmp_path: Path) -> None:
    data = write_chat_data(tmp_path / "data")
    adapter = tmp_path / "adapter"
    env = {**os.environ, "MLX_DISABLE_COMPILE": "1"}
    train = subprocess.Popen(
        lemlab_cmd(
            "train",
            "--model",
            tiny_model,
            "--data",
            data,
            "--adapter-path",
            adapter,
            "--iters",
            "200",
            "--batch-size",
            "1",
            "--num-layers",
            "1",
            "--steps-per-report",
            "5",
            "--steps-per-eval",
            "1000",
            "--save-every",
            "1000",
            "--yes",
        ),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    events = adapter / "events.jsonl"
    watch = None
    try:
        deadline = time.monotonic() + 120
        while not (events.exists() and '"train"' in events.read_text()):
            assert train.poll() is None, train.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.05)
        watch = subprocess.Popen(
            lemlab_cmd("watch", adapter, "--interval", "0.2"),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        assert watch.stdout is not None and watch.stdout.readline()  # it has read the run's start
        rotated = rotate(events)
        _, err = train.communicate(timeout=300)
        assert train.returncode == 0, err
        assert "done: 0 checkpoints" in err and "no final event" not in err
        assert events.read_bytes() == b""  # no made-up error event in the new file
        assert json.loads(rotated.read_text().splitlines()[-1])["event"] == "done"
        out, werr = watch.communicate(timeout=60)
        assert watch.returncode == 0, werr
        assert "done" in out and "run failed" not in werr
    finally:
        for p in (train, watch):
            if p is not None and p.poll() is None:
                p.kill()
                p.wait(timeout=30)
