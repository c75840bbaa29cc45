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
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from lemlab.core.errors import LemlabError
from lemlab.core.training.config import TrainingConfig, write_config_toml
from lemlab.core.training.events import (
    CONFIG_FILE,
    EVENTS_FILE,
    LOG_FILE,
    RunSource,
    TrainerCheck,
    event_json,
    load_run,
    process_args,
    process_gone,
)

EXIT_DONE, EXIT_ERROR, EXIT_STOPPED = 0, 1, 130
TRAINER_MODULE = "lemlab.engine.train_child"  # how start_training runs the child (python -m ...)


def trainer_gone(pid: int, host: str) -> bool:
    """The run's trainer (pid on host) has ended, or the pid now runs another program."""
    return process_gone(pid, host, TRAINER_MODULE)


def trainer_check(grace: float) -> TrainerCheck:
    """What a RunWatcher needs to mark a run interrupted once its trainer is gone `grace` s."""
    return TrainerCheck(grace=grace, gone=trainer_gone)


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
            fh.write(
                lead + (event_json("error", message=reason, lost_trainer=True) + "\n").encode()
            )
    except OSError:
        pass
    return reason


def start_training(
    cfg: TrainingConfig, env: dict[str, str] | None = None, *, detached: bool = False
) -> TrainingProcess:
    """Write the resolved config into the adapter folder and launch the child (no shell).
    Its stdout/stderr (mlx-lm's own table, warnings, a traceback on error) go to train.log.
    The child gets its own session and process group, so a terminal Ctrl+C or hang-up reaches
    only the parent (which forwards one clean stop request). `detached`: the child also keeps
    going when the parent exits (the TUI's runs outlive the app; `lemlab train --stop` or the
    pane stops them); otherwise it stops, saving adapters, once its parent is gone."""
    folder = Path(cfg.adapter_path)
    folder.mkdir(parents=True, exist_ok=True)
    config_path = folder / CONFIG_FILE
    write_config_toml(cfg, config_path)
    child_env = dict(os.environ if env is None else env)
    child_env.setdefault("TOKENIZERS_PARALLELISM", "false")
    with open(folder / LOG_FILE, "ab") as log:
        popen = subprocess.Popen(
            [
                sys.executable,
                "-m",
                TRAINER_MODULE,
                str(config_path),
                *(["--detached"] if detached else []),
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=child_env,
            start_new_session=True,
        )
    return TrainingProcess(popen, folder)


def stop_run(folder: str | Path) -> int:
    """Ask the trainer of the run in `folder` to save and stop (SIGINT, as Ctrl+C would), from
    any process on the same machine; returns its pid. The pid comes from the run's start event
    and is signalled only when it is still this run's trainer, since pids are reused: same
    host, alive, and its command line is lemlab's trainer on this folder's config. LemlabError
    (one line) otherwise."""
    folder = Path(folder).expanduser().resolve()
    if not (folder / EVENTS_FILE).is_file():
        raise LemlabError(f"{folder} holds no {EVENTS_FILE}: not a lemlab training run")
    state = load_run(folder)
    if state.finished:
        raise LemlabError(f"the run in {folder} has already ended ({state.status})")
    if state.trainer is None:
        raise LemlabError(
            f"the run in {folder} recorded no trainer pid (started by an older lemlab?)"
        )
    pid, host = state.trainer
    if host != socket.gethostname():
        raise LemlabError(f"the run's trainer runs on {host}, not here: stop it there")
    if trainer_gone(pid, host) or not _runs_config(pid, folder / CONFIG_FILE):
        raise LemlabError(f"the run's trainer (pid {pid}) is gone: it ended without a final event")
    try:
        os.kill(pid, signal.SIGINT)
    except ProcessLookupError:
        raise LemlabError(
            f"the run's trainer (pid {pid}) is gone: it ended without a final event"
        ) from None
    except PermissionError:
        raise LemlabError(
            f"not allowed to signal the trainer (pid {pid}): another user's process"
        ) from None
    return pid


def _runs_config(pid: int, config: Path) -> bool:
    """The process's command line names this run's config file (a trainer of another run that
    got the recorded pid must not be stopped)."""
    args = process_args(pid)
    if args is None:
        return False
    return any(arg and Path(arg).resolve() == config for arg in args[1:])
