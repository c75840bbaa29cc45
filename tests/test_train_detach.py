"""Issue 15, headless side: safe defaults (and the README's example) pass lemlab's own warning,
suggested flags differ from the ones passed, a non-TTY `lemlab train` never waits, phase
events, runs that outlive their parent, `lemlab train --stop`, `--continue`, and `lemlab watch`
exit statuses in its three modes (live through a pty, plain, --once) and before the folder
exists. Real processes and real LoRA steps on the tiny model."""

from __future__ import annotations

import argparse
import json
import os
import pty
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support.train import lemlab_cmd, read_events, run_lemlab, write_chat_data

from lemlab.commands import train as train_cmd
from lemlab.core.training.config import (
    ModelFacts,
    TrainingConfig,
    default_num_layers,
    gradient_figures,
    recommended_flags,
    resolve_config,
    small_model_warning,
)
from lemlab.engine.train_runner import start_training

README = Path(__file__).resolve().parents[1] / "README.md"
ONE_B = ModelFacts(num_layers=26, params=1_000_000_000)


def _wait(test, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not test():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _kinds(path: Path) -> list[str]:
    return [e["event"] for e in read_events(path)] if path.exists() else []


# ---------------------------------------------------------------- defaults and suggestions


def test_defaults_and_the_readme_example_pass_the_small_model_warning() -> None:
    cfg = TrainingConfig(num_layers=default_num_layers(26))
    fig = gradient_figures(cfg, ONE_B)
    assert (cfg.iters, cfg.batch_size, cfg.learning_rate, cfg.num_layers) == (400, 1, 5e-6, 8)
    assert fig.effective_gradient == 400 and small_model_warning(fig) == []
    line = next(
        ln for ln in README.read_text().splitlines() if ln.startswith("lemlab train --model")
    )
    parser = argparse.ArgumentParser()
    train_cmd.add_arguments(parser)
    args = parser.parse_args(shlex.split(line.split("#")[0])[2:])
    flags = {name: getattr(args, name) for name in train_cmd._VALUE_FLAGS}
    readme_cfg = resolve_config({"model": "M", "data": "D"}, flags)
    assert small_model_warning(gradient_figures(readme_cfg, ONE_B)) == [], line


def _apply(cfg: TrainingConfig, flags: list[str]) -> TrainingConfig:
    values = {}
    for flag in flags:
        name, value = flag.split()[:2]
        key = name.removeprefix("--").replace("-", "_")
        values[key] = (
            type(getattr(cfg, key))(float(value)) if key != "learning_rate" else float(value)
        )
    return resolve_config({**cfg.__dict__, **values})


@pytest.mark.parametrize(
    "settings",
    [
        dict(iters=500, batch_size=4, num_layers=16, learning_rate=1e-5),  # the collapsed 1B run
        dict(iters=2000, batch_size=1, num_layers=8, learning_rate=5e-6),  # only too many steps
        dict(iters=400, batch_size=1, num_layers=20, learning_rate=5e-6),  # only too many layers
        dict(iters=100, batch_size=8, num_layers=8, learning_rate=5e-6),  # only a big batch
        dict(iters=300, batch_size=2, num_layers=8, learning_rate=2e-5),  # only the learning rate
    ],
)
def test_suggested_flags_differ_from_the_passed_ones_and_clear_the_warning(settings: dict) -> None:
    cfg = TrainingConfig(model="M", data="D", **settings)
    fig = gradient_figures(cfg, ONE_B)
    assert small_model_warning(fig)
    flags = recommended_flags(fig)
    assert flags
    for flag in flags:
        name, value = flag.split()[:2]
        key = name.removeprefix("--").replace("-", "_")
        assert float(value) != float(getattr(cfg, key)), (flag, settings)
    assert small_model_warning(gradient_figures(_apply(cfg, flags), ONE_B)) == [], flags


def test_a_non_tty_train_that_would_warn_exits_2_with_one_line(
    tiny_model: Path, tmp_path: Path
) -> None:
    data = write_chat_data(tmp_path / "data")
    # stdin an open pipe nobody writes to: a question asked there would wait forever
    proc = subprocess.Popen(
        lemlab_cmd(
            "train",
            "--model",
            tiny_model,
            "--data",
            data,
            "--adapter-path",
            tmp_path / "a",
            "--learning-rate",
            "1e-5",
            "--num-layers",
            "2",
        ),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert err.count("\n") == 1 and "--yes" in err and err.startswith("lemlab: error:"), err
    assert "warning: small model" in out and "suggested: --learning-rate 5e-06" in out
    assert "--num-layers 1" in out  # 1 of 2 layers: different from the 2 passed
    assert not (tmp_path / "a").exists()


# ---------------------------------------------------------------- real runs


def _cfg(model: Path, data: Path, adapter: Path, **over) -> TrainingConfig:  # type: ignore[no-untyped-def]
    values = dict(
        model=str(model),
        data=str(data),
        adapter_path=str(adapter),
        iters=40,
        batch_size=1,
        num_layers=1,
        steps_per_report=5,
        steps_per_eval=10,
        save_every=10,
    )
    return resolve_config({**values, **over})


def test_phase_events_and_a_default_run(tiny_model: Path, tmp_path: Path) -> None:
    """No training flags at all: the safe defaults train without a question; the trainer
    writes its phases in order."""
    data = write_chat_data(tmp_path / "data")
    adapter = tmp_path / "a"
    res = run_lemlab(
        "train",
        "--model",
        tiny_model,
        "--data",
        data,
        "--adapter-path",
        adapter,
        "--iters",
        "12",
        "--steps-per-eval",
        "6",
        "--save-every",
        "6",
        timeout=300,
    )
    assert res.returncode == 0, res.stderr
    assert "warning" not in res.stdout and "trained layers      1 / 2" in res.stdout
    events = read_events(adapter / "events.jsonl")
    phases = [e["phase"] for e in events if e["event"] == "phase"]
    assert phases[:4] == ["loading", "compiling", "evaluating", "compiling"]
    assert "training" in phases and phases[-1] == "saving"
    assert [e["event"] for e in events][-1] == "done"
    first_train = next(i for i, e in enumerate(events) if e["event"] == "train")
    training_at = next(i for i, e in enumerate(events) if e.get("phase") == "training")
    assert training_at < first_train  # the phase says so before the first report arrives


def test_a_detached_run_outlives_its_parent_and_train_stop_stops_it(
    tiny_model: Path, tmp_path: Path
) -> None:
    data = write_chat_data(tmp_path / "data")
    adapter = tmp_path / "a"
    cfg = _cfg(tiny_model, data, adapter, iters=100000, save_every=5)
    # A parent that starts a detached run (as the TUI does) and exits at once.
    code = (
        "import sys; from lemlab.core.training.config import load_config_toml; "
        "from lemlab.engine.train_runner import start_training; "
        "start_training(load_config_toml(sys.argv[1]), detached=True)"
    )
    from lemlab.core.training.config import write_config_toml

    write_config_toml(cfg, tmp_path / "cfg.toml")
    parent = subprocess.run([sys.executable, "-c", code, str(tmp_path / "cfg.toml")], timeout=60)
    assert parent.returncode == 0
    events = adapter / "events.jsonl"
    _wait(
        lambda: '"checkpoint"' in (events.read_text() if events.exists() else ""),
        120,
        "a checkpoint",
    )
    start = read_events(events)[0]
    assert start["detached"] is True and "stopped" not in _kinds(
        events
    )  # the parent is gone; it trains on
    res = run_lemlab("train", "--stop", adapter, timeout=120)
    assert res.returncode == 0, res.stderr
    assert f"pid {start['pid']}" in res.stderr and "stopped at iteration" in res.stderr
    last = read_events(events)[-1]
    assert last["event"] == "stopped" and "SIGINT" in last["message"] and last["iteration"] >= 5
    again = run_lemlab("train", "--stop", adapter)
    assert (
        again.returncode == 2
        and again.stderr.count("\n") == 1
        and "already ended (stopped)" in again.stderr
    )

    # --continue: a new run from the saved weights, for the iterations left, saying what is not restored
    res = run_lemlab("train", "--continue", adapter, "--iters", "6", "--yes", timeout=300)
    assert res.returncode == 0, res.stderr
    assert f"the adapter weights after iteration {last['iteration']:,}" in res.stdout
    assert "not restored: the optimizer state" in res.stdout
    cont = read_events(Path(f"{adapter}-continued") / "events.jsonl")
    resumed = Path(cont[0]["resume_adapter_file"])
    assert resumed.parent == adapter and f"continuing from {resumed.name}" in res.stdout
    assert cont[-1]["event"] == "done"


def test_train_stop_refuses_a_pid_that_is_not_this_runs_trainer(tmp_path: Path) -> None:
    stranger = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import time; time.sleep(60)",
            "lemlab.engine.train_child",
            "/elsewhere/lemlab-train.toml",
        ]
    )
    try:
        import socket

        run = tmp_path / "run"
        run.mkdir()
        (run / "events.jsonl").write_text(
            json.dumps(
                {"event": "start", "ts": 1.0, "pid": stranger.pid, "host": socket.gethostname()}
            )
            + "\n"
        )
        res = run_lemlab("train", "--stop", run)
        assert res.returncode == 2 and res.stderr.count("\n") == 1 and "is gone" in res.stderr
        assert stranger.poll() is None  # not signalled
    finally:
        stranger.kill()
        stranger.wait()


# ---------------------------------------------------------------- watch exit statuses


def _watch_in_pty(*args: str, timeout: float = 90) -> tuple[int, str]:
    """`lemlab watch` with a terminal as stdout (its live mode); (exit status, screen text)."""
    master, slave = pty.openpty()
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "100", "LINES": "30"}
    proc = subprocess.Popen(
        lemlab_cmd("watch", *args), stdin=slave, stdout=slave, stderr=slave, env=env
    )
    os.close(slave)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    while True:
        try:
            import select

            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                chunks.append(os.read(master, 65536))
        except OSError:  # the child closed the terminal
            break
        if proc.poll() is not None and not ready:
            break
        assert time.monotonic() < deadline, "watch did not end"
    os.close(master)
    return proc.wait(), b"".join(chunks).decode(errors="replace")


def test_a_killed_trainer_makes_watch_exit_1_in_all_three_modes(
    tiny_model: Path, tmp_path: Path
) -> None:
    data = write_chat_data(tmp_path / "data")
    adapter = tmp_path / "a"
    proc = start_training(
        _cfg(tiny_model, data, adapter, iters=100000, save_every=1000), detached=True
    )
    try:
        events = adapter / "events.jsonl"
        _wait(
            lambda: '"train"' in (events.read_text() if events.exists() else ""),
            120,
            "a train event",
        )
        plain = subprocess.Popen(
            lemlab_cmd("watch", "--interval", "0.2", adapter),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        time.sleep(0.5)
        proc.popen.send_signal(signal.SIGKILL)  # no final event is written
        proc.wait(60)
        out, err = plain.communicate(timeout=60)
        assert plain.returncode == 1, (out, err)
        assert "run interrupted: the trainer" in err
    finally:
        proc.kill()
    once = run_lemlab("watch", "--once", adapter)
    assert once.returncode == 1 and "interrupted" in once.stdout
    code, screen = _watch_in_pty("--interval", "0.2", str(adapter))
    assert code == 1 and "interrupted" in screen
    # the same run once an error event is recorded (as `lemlab train` or the TUI does)
    from lemlab.engine.train_runner import record_lost_trainer

    record_lost_trainer(adapter, -9)
    once = run_lemlab("watch", "--once", adapter)
    assert once.returncode == 1 and "run failed: training process killed by signal 9" in once.stderr
    code, screen = _watch_in_pty("--interval", "0.2", str(adapter))
    assert code == 1 and "signal 9" in screen
    plain = run_lemlab("watch", "--interval", "0.2", adapter)
    assert plain.returncode == 1 and "status     error" in plain.stdout


def test_watch_waits_for_a_folder_that_does_not_exist_yet(tiny_model: Path, tmp_path: Path) -> None:
    data = write_chat_data(tmp_path / "data")
    adapter = tmp_path / "later"
    env = {**os.environ, "TERM": "dumb"}
    watch = subprocess.Popen(
        lemlab_cmd("watch", "--interval", "0.2", adapter),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    time.sleep(1.0)
    assert watch.poll() is None  # waiting, not failing
    proc = start_training(_cfg(tiny_model, data, adapter, iters=20))
    assert proc.wait(300) == 0
    out, err = watch.communicate(timeout=60)
    assert watch.returncode == 0, err
    assert f"waiting for {adapter} to appear" in err
    assert re.search(r"\s20  done", out) and "phase training" in out and "status     done" in out


def test_watch_under_term_dumb_prints_events_as_they_come(tmp_path: Path) -> None:
    fixture = Path(__file__).resolve().parent / "fixtures" / "training" / "lemlab_events.jsonl"
    lines = fixture.read_text().splitlines(keepends=True)
    path = tmp_path / "events.jsonl"
    path.write_text("".join(lines[:3]))
    master, slave = pty.openpty()  # a terminal, but a dumb one
    proc = subprocess.Popen(
        lemlab_cmd("watch", "--interval", "0.1", path),
        stdout=slave,
        stderr=slave,
        env={**os.environ, "TERM": "dumb"},
    )
    os.close(slave)
    try:
        seen = b""
        deadline = time.monotonic() + 60
        while b"val   7.002" not in seen:  # the first events, before the run has ended
            assert time.monotonic() < deadline and proc.poll() is None, seen
            seen += os.read(master, 65536)
        with open(path, "a") as fh:
            fh.write("".join(lines[3:]))
        assert proc.wait(60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)


def test_watch_vs_draws_a_previous_run_on_the_same_chart(tmp_path: Path) -> None:
    fixture = Path(__file__).resolve().parent / "fixtures" / "training" / "lemlab_events.jsonl"
    earlier = tmp_path / "run-earlier"
    earlier.mkdir()
    shifted = []
    for line in fixture.read_text().splitlines():
        event = json.loads(line)
        for key in ("train_loss", "val_loss"):
            if key in event:
                event[key] += 1.0
        shifted.append(json.dumps(event))
    (earlier / "events.jsonl").write_text("\n".join(shifted) + "\n")
    res = run_lemlab("watch", "--once", fixture, "--vs", earlier)
    assert res.returncode == 0, res.stderr
    chart = [ln for ln in res.stdout.splitlines() if "│" in ln]
    assert any("+" in ln for ln in chart) and any(
        "x" in ln for ln in chart
    )  # the other run's marks
    assert any("o" in ln or "@" in ln for ln in chart)  # this run's validation points
    assert "+ train   x val   of run-earlier" in res.stdout
    top = float(chart[0].split("│")[0])
    assert top > 7.9  # the axis spans both runs (the earlier one starts 1.0 higher)
