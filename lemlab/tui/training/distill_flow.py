"""Self-distillation from the Training pane: a small form (battery, output, samples, gate), then
the core distill runner on the app's engine with the DistillProgress widget fed its events.
Setup and file writing are the `lemlab distill` command's own (prepare_distill, DistillRecorder)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

from lemlab.core.distill import output as d
from lemlab.core.errors import LemlabError
from lemlab.core.paths import get_paths


@dataclass(frozen=True)
class DistillRequest:
    battery: str
    output: str
    samples: int
    threshold: float
    max_tokens: int
    temperature: float


FIELDS = (
    ("battery", "battery (name or file)"),
    ("output", "output JSONL"),
    ("samples", "samples per probe"),
    ("threshold", "keep at score >="),
    ("max_tokens", "max tokens per sample"),
    ("temperature", "temperature"),
)


def default_request() -> DistillRequest:
    out = get_paths().runs_dir / "distill" / "self-distill.jsonl"
    return DistillRequest("ethics20", str(out), 4, d.DEFAULT_THRESHOLD, 512, d.DEFAULT_TEMPERATURE)


def parse_request(texts: dict[str, str]) -> DistillRequest:
    try:
        request = DistillRequest(
            texts["battery"].strip(),
            str(Path(texts["output"].strip()).expanduser()),
            int(texts["samples"]),
            float(texts["threshold"]),
            int(texts["max_tokens"]),
            float(texts["temperature"]),
        )
    except ValueError:
        raise LemlabError(
            "samples and max tokens are whole numbers; threshold and temperature numbers"
        ) from None
    if not (
        math.isfinite(request.threshold) and math.isfinite(request.temperature)
    ):  # NaN passes `<`
        raise LemlabError("threshold and temperature must be finite numbers")
    return request


class DistillDialog(ModalScreen["DistillRequest | None"]):
    DEFAULT_CSS = """
    DistillDialog { align: center middle; }
    #distill-box { width: 84; height: auto; border: round $primary; background: $surface; padding: 0 1; }
    #distill-box Grid { grid-size: 2; grid-columns: 1fr 2fr; height: auto; }
    #distill-box Label { padding: 1 0 0 0; color: $text-muted; }
    #distill-error { height: auto; color: $error; }
    #distill-buttons { height: 3; align: right middle; }
    """
    BINDINGS = [
        Binding(
            "escape",
            "cancel",
            "Cancel",
            id="distill_form.cancel",
            tooltip="Close, generate nothing",
        ),
        Binding(
            "ctrl+s",
            "run",
            "Distill",
            id="distill_form.run",
            tooltip="Sample, score and keep the best",
        ),
    ]

    def __init__(self, request: DistillRequest, model: str) -> None:
        super().__init__()
        self.request, self.model = request, model

    def compose(self) -> ComposeResult:
        with Vertical(id="distill-box"):
            yield Static(
                f"Self-distill training data from {Path(self.model).name} (the loaded model)",
                classes="table-title",
                markup=False,
            )
            with Grid():
                for name, label in FIELDS:
                    yield Label(label)
                    yield Input(str(getattr(self.request, name)), id=f"df-{name}")
            yield Static("", id="distill-error", markup=False)
            with Horizontal(id="distill-buttons"):
                yield Button("Cancel", id="distill-cancel")
                yield Button("Distill", id="distill-run", variant="primary")

    def action_run(self) -> None:
        try:
            req = parse_request(
                {name: self.query_one(f"#df-{name}", Input).value for name, _ in FIELDS}
            )
        except LemlabError as exc:
            self.query_one("#distill-error", Static).update(str(exc))
            return
        self.dismiss(req)

    def action_cancel(self) -> None:
        self.dismiss(None)

    @on(Button.Pressed, "#distill-run")
    def _run_pressed(self) -> None:
        self.action_run()

    @on(Button.Pressed, "#distill-cancel")
    def _cancel_pressed(self) -> None:
        self.action_cancel()
