"""The start-a-run form: training settings, then the effective-gradient figures and the
small-model warning (core.training_config) before anything starts. Dismisses with the checked
TrainingConfig, or None. A warning, or an earlier run in the adapter folder (whose events are
archived, never deleted), needs a second press of Start.

Errors and warnings show in a box at the top, under the title, where the eye is when ctrl+s
seems to do nothing (at 120x40 the end of the form is below the fold). Defaults are the safe
small-model settings, so an untouched form raises no warning. Continuing a run opens the same
form with the old run's settings (`base`) and a note saying what is and is not restored."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Input, Label, Static

from lemlab.core.errors import LemlabError
from lemlab.core.paths import get_paths
from lemlab.core.training.config import (
    TrainingConfig,
    default_num_layers,
    format_figures,
    gradient_figures,
    read_model_facts,
    resolve_config,
    small_model_warning,
)
from lemlab.core.training.preflight import preflight_training
from lemlab.core.training.runs import previous_run

# (field, label, parser) in form order; parsers turn the text into the config's type.
TEXT_FIELDS: tuple[tuple[str, str, type], ...] = (
    ("model", "model folder", str),
    ("data", "data folder (train.jsonl, valid.jsonl)", str),
    ("adapter_path", "adapter folder (output)", str),
    ("iters", "iterations", int),
    ("batch_size", "batch size", int),
    ("num_layers", "layers (-1 = all)", int),
    ("learning_rate", "learning rate", float),
    ("rank", "LoRA rank", int),
    ("save_every", "checkpoint every", int),
    ("steps_per_eval", "validate every", int),
    ("steps_per_report", "report every", int),
    ("val_batches", "val batches (-1 = all)", int),
)


def default_adapter_path(model: str) -> str:
    name = Path(model).name or "model"
    return str(get_paths().runs_dir / "adapters" / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}")


EFFECTIVE_GRADIENT_NOTE = (
    "effective gradient = iterations x batch size: how many examples push the weights. The 1B "
    "run that collapsed had ~2,000 (LR 1e-5, 16/26 layers, batch 4); the 27B run that worked had "
    "~400 (LR 5e-6, batch 1, ~26% of layers). Small models want the second."
)


def initial_values(model: str, data: str = "", adapter_path: str = "") -> dict[str, Any]:
    """Form defaults: the safe settings (400 iterations, batch 1, LR 5e-6, ~30% of the model's
    layers), which never trigger the form's own small-model warning."""
    cfg = TrainingConfig()
    facts = read_model_facts(model) if model else None
    layers = default_num_layers(facts.num_layers if facts else None)
    return {
        "model": model,
        "data": data,
        "adapter_path": adapter_path or (default_adapter_path(model) if model else ""),
        "iters": cfg.iters,
        "batch_size": cfg.batch_size,
        "num_layers": layers,
        "learning_rate": cfg.learning_rate,
        "rank": cfg.rank,
        "save_every": cfg.save_every,
        "steps_per_eval": cfg.steps_per_eval,
        "steps_per_report": cfg.steps_per_report,
        "val_batches": cfg.val_batches,
        "mask_prompt": cfg.mask_prompt,
    }


def parse_form(
    texts: dict[str, str], mask_prompt: bool, base: dict[str, Any] | None = None
) -> TrainingConfig:
    """Form text -> a validated config; LemlabError (one line) for the first bad field. `base`:
    settings the form does not show (a continued run's rank, seed, resume file...)."""
    values: dict[str, Any] = {**(base or {}), "mask_prompt": mask_prompt}
    for name, label, kind in TEXT_FIELDS:
        raw = texts.get(name, "").strip()
        if kind is str:
            values[name] = str(Path(raw).expanduser().resolve()) if raw else ""
            continue
        try:
            values[name] = kind(raw)
        except ValueError:
            raise LemlabError(
                f"{label}: {raw!r} is not a {'whole number' if kind is int else 'number'}"
            ) from None
    for name, label in (
        ("model", "model folder"),
        ("data", "data folder"),
        ("adapter_path", "adapter folder"),
    ):
        if not values[name]:
            raise LemlabError(f"{label} is required")
    return resolve_config(values)


def plan_lines(cfg: TrainingConfig) -> tuple[list[str], list[str]]:
    """(figures, warnings) shown before starting; reads only the model's headers (cheap)."""
    fig = gradient_figures(cfg, read_model_facts(cfg.model))
    warnings = small_model_warning(fig)
    if previous_run(Path(cfg.adapter_path)):
        warnings = [
            *warnings,
            f"{cfg.adapter_path} holds an earlier run: its events and log will be "
            "archived (kept) and checkpoints saved again are overwritten",
        ]
    return format_figures(fig), warnings


class StartRunScreen(ModalScreen["TrainingConfig | None"]):
    DEFAULT_CSS = """
    StartRunScreen { align: center middle; }
    #train-form { width: 96%; height: 92%; border: round $primary; background: $surface; padding: 0 1; }
    #train-form Grid { grid-size: 4; grid-columns: 1fr 2fr 1fr 2fr; grid-gutter: 0 1; height: auto; }
    #train-form Label { padding: 1 0 0 0; color: $text-muted; }
    #train-form Input.-wide { column-span: 3; }
    #train-plan { height: auto; padding: 0 1; margin: 1 0 0 0; }
    #train-explain { height: auto; padding: 0 1; color: $text-muted; }
    #train-note { height: auto; padding: 0 1; color: $text; background: $primary 20%; display: none; }
    #train-note.-shown { display: block; }
    #train-warning { height: auto; max-height: 8; padding: 0 1; color: $text; background: $warning 25%;
                     display: none; }
    #train-warning.-shown { display: block; }
    #train-error { height: auto; padding: 0 1; color: $error; text-style: bold; display: none; }
    #train-error.-shown { display: block; }
    #train-buttons { height: 3; align: right middle; }
    """
    BINDINGS = [
        Binding(
            "escape", "cancel", "Cancel", id="train_form.cancel", tooltip="Close, start nothing"
        ),
        Binding(
            "ctrl+s",
            "start",
            "Start",
            id="train_form.start",
            tooltip="Check the settings and start training",
        ),
    ]

    def __init__(
        self,
        values: dict[str, Any],
        *,
        base: dict[str, Any] | None = None,
        note: list[str] | None = None,
    ) -> None:
        super().__init__()
        self.values, self.base, self.note = values, base, note or []
        self.acknowledged: TrainingConfig | None = None  # warnings seen for this exact config
        self._auto_layers = str(values.get("num_layers", ""))  # the layers value the form chose

    def compose(self) -> ComposeResult:
        with Vertical(id="train-form"):
            title = "Continue a LoRA training run" if self.note else "Start a LoRA training run"
            yield Static(
                f"{title}  (ctrl+s starts, Esc cancels)", classes="table-title", markup=False
            )
            # Above the fields: what stops ctrl+s is seen where the user looks, at any height.
            yield Static("", id="train-error", markup=False)
            yield Static("", id="train-warning", markup=False)
            yield Static(
                "\n".join(self.note),
                id="train-note",
                classes="-shown" if self.note else "",
                markup=False,
            )
            with VerticalScroll():
                with Grid():
                    for name, label, _ in TEXT_FIELDS:
                        wide = name in ("model", "data", "adapter_path")
                        yield Label(label)
                        yield Input(
                            str(self.values.get(name, "")),
                            id=f"tf-{name}",
                            classes="-wide" if wide else "",
                        )
                yield Checkbox(
                    "loss on the reply only (mask prompt)",
                    bool(self.values.get("mask_prompt")),
                    id="tf-mask_prompt",
                )
                yield Static("", id="train-plan", markup=False)
                yield Static(EFFECTIVE_GRADIENT_NOTE, id="train-explain", markup=False)
            with Horizontal(id="train-buttons"):
                yield Button("Cancel", id="train-cancel")
                yield Button("Start", id="train-start", variant="primary")

    def on_mount(self) -> None:
        self.refresh_plan()
        self.query_one("#tf-data", Input).focus()

    def _texts(self) -> dict[str, str]:
        return {name: self.query_one(f"#tf-{name}", Input).value for name, _, _ in TEXT_FIELDS}

    def _config(self) -> TrainingConfig:
        return parse_form(
            self._texts(), self.query_one("#tf-mask_prompt", Checkbox).value, self.base
        )

    @on(Input.Changed, "#tf-model")
    def _model_changed(self, event: Input.Changed) -> None:
        """Layers the user has not chosen follow the model: ~30% of its layers."""
        layers = self.query_one("#tf-num_layers", Input)
        facts = (
            read_model_facts(Path(event.value.strip()).expanduser())
            if event.value.strip()
            else None
        )
        auto = str(default_num_layers(facts.num_layers if facts else None))
        if layers.value.strip() == self._auto_layers and auto != self._auto_layers:
            self._auto_layers = auto
            layers.value = auto  # its own Changed event redraws the plan

    @on(Input.Changed)
    @on(Checkbox.Changed)
    def refresh_plan(self) -> None:
        plan, warning = (
            self.query_one("#train-plan", Static),
            self.query_one("#train-warning", Static),
        )
        start = self.query_one("#train-start", Button)
        try:
            cfg = self._config()
            figures, warnings = plan_lines(cfg)
        except LemlabError as exc:
            plan.update("")
            warning.update("")
            warning.remove_class("-shown")
            self._show_error(str(exc))
            return
        plan.update("\n".join(figures))
        warning.update("\n".join(warnings))
        warning.set_class(bool(warnings), "-shown")
        self._show_error("")
        start.label = "Start anyway" if warnings and self.acknowledged == cfg else "Start"

    def action_start(self) -> None:
        try:
            cfg = self._config()
            preflight_training(
                cfg
            )  # the same checks `lemlab train` makes (model, layers, data lines)
            _, warnings = plan_lines(cfg)
        except LemlabError as exc:
            self._show_error(str(exc))
            return
        if warnings and self.acknowledged != cfg:
            self.acknowledged = cfg
            self.refresh_plan()
            self.notify(
                "read the warning, then press Start anyway (ctrl+s) to train", severity="warning"
            )
            return
        self.dismiss(cfg)

    def _show_error(self, text: str) -> None:
        error = self.query_one("#train-error", Static)
        error.update(text)
        error.set_class(bool(text), "-shown")

    def action_cancel(self) -> None:
        self.dismiss(None)

    @on(Button.Pressed, "#train-start")
    def _start_pressed(self) -> None:
        self.action_start()

    @on(Button.Pressed, "#train-cancel")
    def _cancel_pressed(self) -> None:
        self.action_cancel()
