"""The run setup form: battery (shipped or a file), conditions (baseline + kernels + adapters or
checkpoints), scorer, max tokens and sampler. Returns a RunRequest; checks numbers here, and
everything else (files, names) when the run is prepared, exactly as `lemlab ab` does."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Select, SelectionList, Static

from lemlab.core.engine_api import Sampler
from lemlab.tui.battery.run_job import RunRequest

SCORER_IDS = ("v2", "v2-distill", "v0")


def _scorer_ids() -> tuple[str, ...]:
    try:
        from lemlab.core.scoring import SCORERS

        return tuple(SCORERS)
    except ImportError:
        return SCORER_IDS


def _split(text: str) -> tuple[str, ...]:
    return tuple(x.strip() for x in text.split(",") if x.strip())


def parse_form(
    values: dict[str, str], kernels: list[str], battery_choice: str | None
) -> RunRequest:
    """RunRequest from the form's texts; ValueError (one line) names the bad field."""
    battery = values["battery_path"].strip() or (battery_choice or "")
    if not battery:
        raise ValueError("choose a battery or type a battery file path")
    try:
        max_tokens = int(values["max_tokens"])
        temperature = float(values["temperature"])
        top_p = float(values["top_p"])
        seed = int(values["seed"]) if values["seed"].strip() else None
        limit = int(values["limit"]) if values["limit"].strip() else None
    except ValueError as exc:
        raise ValueError(f"not a number: {exc}") from None
    if max_tokens < 1 or temperature < 0 or not 0 < top_p <= 1 or (limit is not None and limit < 1):
        raise ValueError("need max tokens >= 1, temperature >= 0, 0 < top-p <= 1, limit >= 1")
    return RunRequest(
        battery=battery, kernels=tuple(kernels) + _split(values["kernel_paths"]),
        adapters=_split(values["adapters"]), scorer=values["scorer"],
        sampler=Sampler(temperature, top_p, max_tokens, seed), limit=limit,
    )  # fmt: skip


class RunSetupScreen(ModalScreen[RunRequest | None]):
    DEFAULT_CSS = """
    RunSetupScreen { align: center middle; }
    RunSetupScreen #setup-box {
        width: 90%; height: 90%; border: round $primary; background: $surface; padding: 0 1;
    }
    RunSetupScreen Label { margin: 1 0 0 0; color: $text-muted; }
    RunSetupScreen #setup-kernels { height: auto; max-height: 8; }
    RunSetupScreen .setup-row { height: auto; }
    RunSetupScreen .setup-row Input { width: 1fr; }
    RunSetupScreen #setup-error { color: $error; height: auto; }
    """
    BINDINGS = [
        Binding(
            "escape",
            "dismiss_none",
            "Cancel",
            id="battery.setup_cancel",
            tooltip="Close, run nothing",
        ),
        Binding("ctrl+s", "submit", "Run", id="battery.setup_run", tooltip="Start the run"),
    ]

    def __init__(self, sampler: Sampler, last: RunRequest | None = None) -> None:
        super().__init__()
        self.sampler, self.last = sampler, last

    def compose(self) -> ComposeResult:
        from lemlab.core.kernels import list_kernels
        from lemlab.core.probes import list_batteries

        batteries = [
            (f"{b.name} ({b.count} probes)", b.name) for b in list_batteries() if not b.error
        ]
        kernels = [(k.name, k.name) for k in list_kernels() if not k.error]
        s = self.sampler
        with VerticalScroll(id="setup-box"):
            yield Static("New battery run  (ctrl+s runs, Esc cancels)", markup=False)
            yield Label("Battery: a shipped one, or a file path (.json / .jsonl / .toml)")
            with Horizontal(classes="setup-row"):
                yield Select(
                    batteries, id="setup-battery", prompt="shipped battery", allow_blank=True
                )
                yield Input(placeholder="or a battery file path", id="setup-battery-path")
            yield Label("Conditions: baseline always; tick kernels, add kernel files and adapters")
            yield SelectionList[str](*kernels, id="setup-kernels")
            yield Input(
                placeholder="more kernels: NAME=PATH or PATH, comma-separated",
                id="setup-kernel-paths",
            )
            yield Input(placeholder="adapters or checkpoints: PATH or NAME=PATH, comma-separated",
                        id="setup-adapters")  # fmt: skip
            yield Label("Scorer, max tokens, temperature, top-p, seed, probe limit")
            with Horizontal(classes="setup-row"):
                yield Select(
                    [(x, x) for x in _scorer_ids()],
                    value="v2",
                    id="setup-scorer",
                    allow_blank=False,
                )
                yield Input(
                    str(s.max_tokens), id="setup-max-tokens", tooltip="max tokens per response"
                )
                yield Input(str(s.temperature), id="setup-temperature", tooltip="0 = greedy")
                yield Input(str(s.top_p), id="setup-top-p", tooltip="nucleus sampling, 1 = off")
                yield Input(
                    "" if s.seed is None else str(s.seed), placeholder="seed", id="setup-seed"
                )
                yield Input(
                    placeholder="all probes", id="setup-limit", tooltip="only the first N probes"
                )
            yield Static("", id="setup-error", markup=False)
            yield Button("Run", id="setup-run", variant="primary")

    def values(self) -> dict[str, str]:
        ids = {"battery_path": "battery-path", "kernel_paths": "kernel-paths", "adapters": "adapters",
               "max_tokens": "max-tokens", "temperature": "temperature", "top_p": "top-p",
               "seed": "seed", "limit": "limit"}  # fmt: skip
        out = {k: self.query_one(f"#setup-{v}", Input).value for k, v in ids.items()}
        out["scorer"] = str(self.query_one("#setup-scorer", Select).value)
        return out

    def action_submit(self) -> None:
        battery = self.query_one("#setup-battery", Select).value
        kernels = list(self.query_one("#setup-kernels", SelectionList).selected)
        try:
            req = parse_form(self.values(), kernels, battery if isinstance(battery, str) else None)
        except ValueError as exc:
            self.query_one("#setup-error", Static).update(str(exc))
            return
        self.dismiss(req)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "setup-run":
            self.action_submit()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.action_submit()

    def action_dismiss_none(self) -> None:
        self.dismiss(None)
