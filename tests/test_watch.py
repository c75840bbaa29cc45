"""`lemlab watch`: --once on every input kind, live following of a growing file, bad paths."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import pytest
from support.train import lemlab_cmd, run_lemlab

from lemlab.cli import main
from lemlab.commands.watch import summary_text

FIX = Path(__file__).resolve().parent / "fixtures" / "training"


@pytest.mark.parametrize(
    "name, fmt",
    [
        ("lemlab_events.jsonl", None),
        ("mlx_lm_0.31.3_old_format.log", "log-old"),
        ("mlx_lm_0.32.2_new_format.log", "log-new"),
        ("mlx_lm_0.32.2_new_format_pty.log", "log-new"),
    ],
)
def test_watch_once_on_files(
    name: str, fmt: str | None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["watch", "--once", str(FIX / name)]) == 0
    out = capsys.readouterr().out
    assert "status     done" in out and "iteration 30/30" in out
    assert (
        "train loss 5.618" in out
        and "val loss   5.620" in out
        and "best val   5.620 at iteration 30" in out
    )
    assert "· train" in out  # the chart legend
    assert (f"log format: {fmt}" in out) == (fmt is not None)


def test_watch_once_on_adapter_folders(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with_events = tmp_path / "a"
    with_events.mkdir()
    shutil.copy(FIX / "lemlab_events.jsonl", with_events / "events.jsonl")
    assert main(["watch", "--once", str(with_events)]) == 0
    assert "events.jsonl" in capsys.readouterr().out
    log_only = tmp_path / "b"
    log_only.mkdir()
    shutil.copy(FIX / "mlx_lm_0.31.3_old_format.log", log_only / "train.log")
    (log_only / "adapter_config.json").write_text('{"iters": 30}')
    assert main(["watch", "--once", str(log_only)]) == 0
    out = capsys.readouterr().out
    assert "train.log" in out and "lr 1.00e-05" in out and "peak mem 0.004 GB" in out


def test_watch_missing_path_exits_2_with_one_line(tmp_path: Path) -> None:
    res = run_lemlab("watch", "--once", tmp_path / "nothing")
    assert res.returncode == 2 and res.stderr.count("\n") == 1 and "no such file" in res.stderr
    res = run_lemlab("watch", tmp_path)  # a folder with no events or log
    assert res.returncode == 2 and "neither events.jsonl nor train.log" in res.stderr


def test_watch_follows_a_growing_events_file_until_done(tmp_path: Path) -> None:
    lines = (FIX / "lemlab_events.jsonl").read_text().splitlines(keepends=True)
    path = tmp_path / "events.jsonl"
    path.write_text(lines[0] + lines[1][:20])  # start line + a partial second line
    proc = subprocess.Popen(
        lemlab_cmd("watch", path, "--interval", "0.05"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(0.5)
    assert proc.poll() is None  # still watching: no final event yet
    with open(path, "a") as fh:
        fh.write(lines[1][20:])
        for line in lines[2:-1]:
            fh.write(line)
            fh.flush()
            time.sleep(0.02)
    time.sleep(0.3)
    assert proc.poll() is None
    with open(path, "a") as fh:
        fh.write(lines[-1])
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "     1  val   7.002" in out and "    30  save" in out and "    30  done" in out
    assert "status     done" in out  # the closing summary


def test_summary_text_is_callable_in_process() -> None:
    text = summary_text(str(FIX / "mlx_lm_0.32.2_new_format.log"), chart=False)
    assert "checkpoints 3" in text and "·" not in text
