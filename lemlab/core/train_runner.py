"""Start and stop the training child process (no mlx here: the child imports it).

Usage (CLI and TUI alike):

    proc = start_training(cfg)          # writes ADAPTER/lemlab-train.toml, starts the child
    watcher = RunWatcher(proc.source)   # follow ADAPTER/events.jsonl
    while proc.poll() is None: watcher.poll(); ...
    proc.request_stop()                 # child saves adapters, writes "stopped", exits 130
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from lemlab.core.training_config import TrainingConfig, write_config_toml
from lemlab.core.training_events import CONFIG_FILE, EVENTS_FILE, LOG_FILE, RunSource, event_json

EXIT_DONE, EXIT_ERROR, EXIT_STOPPED = 0, 1, 130


@dataclass
class TrainingProcess:
    popen: subprocess.Popen[bytes]
    folder: Path

    @property
    def source(self) -> RunSource:
        return RunSource(self.folder / EVENTS_FILE, self.folder)

    @property
    def log_path(self) -> Path:
        return self.folder / LOG_FILE

    def poll(self) -> int | None:
        return self.popen.poll()

    def request_stop(self) -> None:
        """Ask the child to save and stop before its next batch."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGINT)

    def kill(self) -> None:
        if self.popen.poll() is None:
            self.popen.kill()

    def wait(self, timeout: float | None = None) -> int:
        return self.popen.wait(timeout)


def record_lost_trainer(folder: Path, code: int) -> str:
    """The child ended with exit status `code` and no final event (SIGKILL, OOM killer): append
    an error event for it, so every other watcher of the file (`lemlab watch`, a TUI) learns the
    run has ended; returns the reason. Best effort: a full disk must not hide the real failure,
    which the caller reports anyway."""
    if code < 0:
        reason = f"training process killed by signal {-code}; checkpoints kept"
    else:
        reason = f"training process exited with code {code} and no final event"
    try:
        with open(folder / EVENTS_FILE, "a+b") as fh:
            # A line the child left half-written stays a line of its own (and is skipped).
            lead = b""
            if fh.seek(0, os.SEEK_END):
                fh.seek(-1, os.SEEK_END)
                lead = b"" if fh.read(1) == b"\n" else b"\n"
            fh.write(lead + (event_json("error", message=reason, lost_trainer=True) + "\n").encode())
    except OSError:
        pass
    return reason


def previous_run(folder: Path) -> bool:
    return (folder / EVENTS_FILE).exists()


def archive_previous_run(folder: Path) -> Path | None:
    """Move an earlier run's events and log aside (kept, never deleted); returns the new events
    name. Checkpoints stay where they are: the new run overwrites those it saves again."""
    events = folder / EVENTS_FILE
    if not events.exists():
        return None
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(events.stat().st_mtime))
    target = folder / f"events.{stamp}.jsonl"
    n = 1
    while target.exists():
        n += 1
        target = folder / f"events.{stamp}-{n}.jsonl"
    os.replace(events, target)
    log = folder / LOG_FILE
    if log.exists():
        os.replace(log, target.with_suffix(".log"))
    return target


def start_training(cfg: TrainingConfig, env: dict[str, str] | None = None) -> TrainingProcess:
    """Write the resolved config into the adapter folder and launch the child (no shell).
    Its stdout/stderr (mlx-lm's own table, warnings, a traceback on error) go to train.log.
    The child gets its own session so a terminal Ctrl+C reaches only the parent, which then
    forwards one clean stop request."""
    folder = Path(cfg.adapter_path)
    folder.mkdir(parents=True, exist_ok=True)
    config_path = folder / CONFIG_FILE
    write_config_toml(cfg, config_path)
    child_env = dict(os.environ if env is None else env)
    child_env.setdefault("TOKENIZERS_PARALLELISM", "false")
    with open(folder / LOG_FILE, "ab") as log:
        popen = subprocess.Popen(
            [sys.executable, "-m", "lemlab.engine.train_child", str(config_path)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=child_env,
            start_new_session=True,
        )
    return TrainingProcess(popen, folder)
