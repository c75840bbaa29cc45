"""The training child process: `python -m lemlab.engine.train_child ADAPTER/lemlab-train.toml`.

Runs mlx-lm's tuner in-process and appends one JSON line per event to ADAPTER/events.jsonl:
start, phase, train, val, checkpoint, then one of done / stopped / error. Every line is flushed;
the last one is fsynced.

Not `mlx_lm.lora.train_model` itself: it takes no batch iterator, which is where this child
notices a stop and tells compiling from training. So `prepare`, `build_optimizer` and
`training_args` mirror train_model step by step (fine-tune type, learning-rate schedule,
optimizer settings, every TrainingArgs field), and tests/test_train_mlx_lm_fields.py fails
when mlx-lm's options, TrainingArgs fields or train_model's use of them change.

Phase events say what the trainer is doing between reports, which can be minutes: "loading"
(the model and data), "compiling" (the first step: MLX builds its kernels, slow on a cold cache),
"evaluating", "training", "saving". One is written on each change only.

Stopping: SIGINT or SIGTERM (or, unless started with --detached, the parent process going
away) is noticed before the next batch; the child then saves the current weights to
adapters.safetensors, keeps every checkpoint, writes a "stopped" event and exits 130.
`--detached` (runs the TUI starts, which outlive it) ignores the parent. Errors: an "error"
event with a one-line message, the traceback in the log, exit 1.

Validation events carry CLI numbering (see lemlab.core.training.events): `iteration` is the
mlx-lm callback's value + 1, and `weights_after` is the callback's own value.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import sys
import time
import traceback
import types
from pathlib import Path
from typing import Any, cast

from lemlab.core.training.config import TrainingConfig, load_config_toml
from lemlab.core.training.events import EVENTS_FILE, event_json

EXIT_DONE, EXIT_ERROR, EXIT_STOPPED = 0, 1, 130
CHECKPOINT_RE = re.compile(r"^(\d{7})_adapters\.safetensors$")


class StopRequested(Exception):
    """Raised between batches once a stop was asked for."""


class EventWriter:
    def __init__(self, path: Path) -> None:
        self._fh = open(path, "a", encoding="utf-8")  # noqa: SIM115 - lives as long as the run

    def write(self, event: str, *, sync: bool = False, **fields: Any) -> None:
        self._fh.write(event_json(event, **fields) + "\n")
        self._fh.flush()
        if sync:
            os.fsync(self._fh.fileno())

    def close(self) -> None:
        self._fh.close()


class Phases:
    """The trainer's current phase, written as an event when it changes."""

    def __init__(self, events: EventWriter, total_iters: int) -> None:
        self.events, self.total_iters = events, total_iters
        self.current: str | None = None
        self.steps_done = 0  # training batches handed out, less the one in progress

    def set(self, phase: str) -> None:
        if phase != self.current:
            self.current = phase
            self.events.write("phase", phase=phase, iteration=self.steps_done)

    def after_eval(self) -> None:
        self.set("training" if self.steps_done else "compiling")


class StopFlag:
    """Set by SIGINT/SIGTERM; also set when the parent that started us is gone (unless the run
    is detached: started by the TUI to outlive it)."""

    def __init__(self, detached: bool = False) -> None:
        self.reason: str | None = None
        self._parent = None if detached else os.getppid()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._on_signal)

    def _on_signal(self, signum: int, frame: Any) -> None:
        self.reason = self.reason or f"stopped by {signal.Signals(signum).name}"

    def check(self) -> None:
        if self.reason is None and self._parent is not None and os.getppid() != self._parent:
            self.reason = "parent process exited"
        if self.reason is not None:
            raise StopRequested(self.reason)


class CheckpointWatch:
    """Emit a checkpoint event for each NNNNNNN_adapters.safetensors that appears in the folder
    (mlx-lm saves them inside its loop and tells no callback)."""

    def __init__(self, folder: Path, events: EventWriter) -> None:
        self.folder, self.events = folder, events
        self.seen = {p.name for p in folder.glob("*_adapters.safetensors")}

    def scan(self) -> None:
        new = sorted(
            n for n in os.listdir(self.folder) if CHECKPOINT_RE.match(n) and n not in self.seen
        )
        for name in new:
            self.seen.add(name)
            iteration = int(CHECKPOINT_RE.match(name)[1])  # type: ignore[index]
            self.events.write("checkpoint", iteration=iteration, path=str(self.folder / name))


def make_callback(events: EventWriter, phases: Phases) -> Any:
    from mlx_lm.tuner.callbacks import TrainingCallback

    class EventCallback(TrainingCallback):
        def on_train_loss_report(self, info: dict) -> None:
            fields = {k: _plain(v) for k, v in info.items()}
            events.write("train", **fields)
            if fields.get("iteration") == phases.total_iters:
                phases.set("saving")  # the loop ends here; mlx-lm saves the final adapters next

        def on_val_loss_report(self, info: dict) -> None:
            fields = {k: _plain(v) for k, v in info.items()}
            fields["weights_after"] = fields["iteration"]
            fields["iteration"] = fields["iteration"] + 1  # back to CLI numbering
            events.write("val", **fields)
            phases.after_eval()

    return EventCallback()


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def make_batch_iterator(stop: StopFlag, checkpoints: CheckpointWatch, phases: Phases) -> Any:
    from mlx_lm.tuner.trainer import iterate_batches

    def wrapped(*args: Any, **kwargs: Any) -> Any:
        training = kwargs.get("loop", False)  # mlx-lm loops over the training set only
        if not training:
            phases.set("evaluating")
        handed_out = 0
        for batch in iterate_batches(*args, **kwargs):
            if training:
                checkpoints.scan()  # the previous step may have saved one
                phases.steps_done = handed_out
                phases.set("training" if handed_out else "compiling")
                handed_out += 1
            stop.check()
            yield batch

    return wrapped


def build_optimizer(cfg: TrainingConfig) -> Any:
    """The optimizer train_model builds: the schedule (else the constant learning rate) and the
    chosen optimizer's own settings from optimizer_config."""
    import mlx.optimizers as optim
    from mlx_lm.tuner.utils import build_schedule

    classes = {
        "adam": optim.Adam,
        "adamw": optim.AdamW,
        "muon": optim.Muon,
        "sgd": optim.SGD,
        "adafactor": optim.Adafactor,
    }
    lr = build_schedule(cfg.lr_schedule) if cfg.lr_schedule else cfg.learning_rate
    return classes[cfg.optimizer](learning_rate=lr, **cfg.optimizer_config.get(cfg.optimizer, {}))


def training_args(cfg: TrainingConfig) -> dict[str, Any]:
    """Every field of mlx-lm's TrainingArgs, from the config (a test checks none is missing)."""
    return dict(
        batch_size=cfg.batch_size,
        iters=cfg.iters,
        val_batches=cfg.val_batches,
        steps_per_report=cfg.steps_per_report,
        steps_per_eval=cfg.steps_per_eval,
        steps_per_save=cfg.save_every,
        max_seq_length=cfg.max_seq_length,
        adapter_file=str(Path(cfg.adapter_path) / "adapters.safetensors"),
        grad_checkpoint=cfg.grad_checkpoint,
        grad_accumulation_steps=cfg.grad_accumulation_steps,
        clear_cache_threshold=cfg.clear_cache_threshold,
    )


def prepare(cfg: TrainingConfig) -> tuple[Any, Any, Any]:
    """Load model and data and choose what trains, as mlx_lm.lora.train_model does: LoRA or DoRA
    layers on the top num_layers, or (full) those layers' own weights unfrozen."""
    import mlx.core as mx
    import numpy as np
    from mlx_lm.tuner.datasets import CacheDataset, load_dataset
    from mlx_lm.tuner.utils import linear_to_lora_layers
    from mlx_lm.utils import load, save_config

    np.random.seed(cfg.seed)
    args = types.SimpleNamespace(**cfg.mlx_lm_args())
    model, tokenizer = cast(
        "tuple[Any, Any]", load(cfg.model, tokenizer_config={"trust_remote_code": False})
    )
    train_set, valid_set, _ = load_dataset(args, tokenizer)
    mx.random.seed(cfg.seed)
    model.freeze()
    if cfg.num_layers > len(model.layers):
        raise ValueError(f"num_layers {cfg.num_layers} > the model's {len(model.layers)} layers")
    if cfg.fine_tune_type == "full":
        for layer in model.layers[-max(cfg.num_layers, 0) :]:  # -1: [-0:] is every layer
            layer.unfreeze()
    else:
        linear_to_lora_layers(
            model, cfg.num_layers, args.lora_parameters, use_dora=cfg.fine_tune_type == "dora"
        )
    if cfg.resume_adapter_file:
        model.load_weights(cfg.resume_adapter_file, strict=False)  # weights only
    save_config(vars(args), Path(cfg.adapter_path) / "adapter_config.json")
    return model, CacheDataset(train_set), CacheDataset(valid_set)


def run_training(cfg: TrainingConfig, events: EventWriter, stop: StopFlag) -> int:
    from mlx_lm.tuner.trainer import TrainingArgs, train

    folder = Path(cfg.adapter_path)
    phases = Phases(events, cfg.iters)
    phases.set("loading")
    model, train_set, valid_set = prepare(cfg)
    stop.check()
    checkpoints = CheckpointWatch(folder, events)
    targs = TrainingArgs(**training_args(cfg))
    try:
        train(
            model=model,
            optimizer=build_optimizer(cfg),
            train_dataset=train_set,
            val_dataset=valid_set,
            args=targs,
            training_callback=make_callback(events, phases),
            iterate_batches=make_batch_iterator(stop, checkpoints, phases),
        )
    except StopRequested as exc:
        phases.set("saving")
        _save_adapters(model, folder / "adapters.safetensors")
        checkpoints.scan()
        # iteration: the updates in the saved weights (the batch being prepared was not used).
        events.write(
            "stopped",
            sync=True,
            message=str(exc),
            path=str(folder / "adapters.safetensors"),
            iteration=phases.steps_done,
        )
        return EXIT_STOPPED
    checkpoints.scan()
    events.write("done", sync=True, iteration=cfg.iters, path=str(folder / "adapters.safetensors"))
    return EXIT_DONE


def _save_adapters(model: Any, path: Path) -> None:
    import mlx.core as mx
    from mlx.utils import tree_flatten

    mx.save_safetensors(str(path), dict(tree_flatten(model.trainable_parameters())))


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    detached = "--detached" in argv
    stop = StopFlag(detached)  # first, so an early Ctrl+C is not lost
    argv = [a for a in argv if a != "--detached"]
    if len(argv) != 1:
        print(
            "usage: python -m lemlab.engine.train_child ADAPTER/lemlab-train.toml [--detached]",
            file=sys.stderr,
        )
        return 2
    cfg = load_config_toml(argv[0])
    folder = Path(cfg.adapter_path)
    folder.mkdir(parents=True, exist_ok=True)
    from lemlab.core.locks import LockHeld, acquire

    try:  # one trainer per adapter folder, held until this process ends (core/locks.py)
        run_lock = acquire(folder / EVENTS_FILE, f"training run {folder}")  # noqa: F841
    except LockHeld as exc:
        print(f"lemlab train_child: {exc}", file=sys.stderr)
        return 2
    events = EventWriter(folder / EVENTS_FILE)
    events.write(
        "start",
        total_iters=cfg.iters,
        model=cfg.model,
        data=cfg.data,
        adapter_path=cfg.adapter_path,
        pid=os.getpid(),
        host=socket.gethostname(),
        config=str(argv[0]),
        resume_adapter_file=cfg.resume_adapter_file,
        detached=detached,
    )
    started = time.monotonic()
    try:
        code = run_training(cfg, events, stop)
    except StopRequested as exc:  # stopped while loading, before any weights existed
        events.write("stopped", sync=True, message=str(exc))
        code = EXIT_STOPPED
    except Exception as exc:  # noqa: BLE001 - reported as an event; traceback to the log
        traceback.print_exc()
        events.write("error", sync=True, message=f"{type(exc).__name__}: {exc}".splitlines()[0])
        code = EXIT_ERROR
    print(f"lemlab train_child: exit {code} after {time.monotonic() - started:.1f}s", flush=True)
    events.close()
    return code


if __name__ == "__main__":
    sys.exit(main())
