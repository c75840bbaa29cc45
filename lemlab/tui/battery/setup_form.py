"""The run setup form: battery (shipped or a file), conditions (baseline + kernels + adapters or
checkpoints), scorer, max tokens and sampler. Returns a RunRequest; checks numbers here, and
everything else (files, names) when the run is prepared, exactly as `lemlab ab` does.

It opens with the last run's settings filled in (Enter on the focused Run button repeats it) or,
for a first run, with the battery list focused (Enter opens it, typing searches it)."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Select, SelectionList, Static

from lemlab.core.battery.kernels import list_kernels
from lemlab.core.battery.probes import list_batteries
from lemlab.core.engine_api import Sampler
from lemlab.core.scoring import SCORERS
from lemlab.tui.battery.run_job import RunRequest


def _scorer_ids() -> tuple[str, ...]:
    return tuple(SCORERS)


def _split(text: str) -> tuple[str, ...]:
    return tuple(x.strip() for x in text.split(",") if x.strip())


def kernel_prompt(name: str, ticked: bool) -> Text:
    """A kernel's line in the list: ticked ones marked and bold, unticked ones dim, so the
    choice reads at a glance (the checkbox alone differs by one coloured character)."""
    if ticked:
        return Text.assemble(("✓ ", "bold"), (name, "bold"), ("  ticked", "italic"))
    return Text.assemble("  ", (name, "dim"))


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
        battery=battery,
        kernels=tuple(kernels) + _split(values["kernel_paths"]),
        adapters=_split(values["adapters"]),
        scorer=values["scorer"],
        sampler=Sampler(temperature, top_p, max_tokens, seed),
        limit=limit,
    )


class RunSetupScreen(ModalScreen[RunRequest | None]):
    DEFAULT_CSS = """
    RunSetupScreen { align: center middle; }
    RunSetupScreen #setup-box {
        width: 90%; height: 90%; border: round $primary; background: $surface; padding: 0 1;
    }
    RunSetupScreen Label { margin: 1 0 0 0; color: $text-muted; }
    RunSetupScreen #setup-kernels { height: auto; max-height: 8; }
    RunSetupScreen #setup-kernels > .selection-list--button-selected,
    RunSetupScreen #setup-kernels > .selection-list--button-selected-highlighted {
        color: $background; background: $success; text-style: bold;
    }
    RunSetupScreen #setup-ticked { height: auto; color: $text-muted; }
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
        batteries = [
            (f"{b.name} ({b.count} probes)", b.name) for b in list_batteries() if not b.error
        ]
        names = [k.name for k in list_kernels() if not k.error]
        last = self.last
        shipped = {v for _, v in batteries}
        ticked = [k for k in last.kernels if k in names] if last else []
        kernel_paths = [k for k in last.kernels if k not in names] if last else []
        chosen = last.battery if last and last.battery in shipped else None
        s = self.sampler
        with VerticalScroll(id="setup-box"):
            title = "New battery run  (ctrl+s runs, Esc cancels)"
            if last is not None:
                title += "  ·  the last run's settings"
            yield Static(title, markup=False)
            yield Label("Battery: a shipped one, or a file path (.json / .jsonl / .toml)")
            with Horizontal(classes="setup-row"):
                yield Select(
                    batteries,
                    id="setup-battery",
                    prompt="shipped battery",
                    allow_blank=True,
                    value=chosen or Select.NULL,
                )
                yield Input(
                    "" if chosen or last is None else last.battery,
                    placeholder="or a battery file path",
                    id="setup-battery-path",
                )
            yield Label(
                "Conditions: baseline always; tick kernels (space), add kernel files and adapters"
            )
            yield SelectionList[str](
                *[(kernel_prompt(n, n in ticked), n, n in ticked) for n in names],
                id="setup-kernels",
            )
            yield Static(self._ticked_text(ticked), id="setup-ticked", markup=False)
            yield Input(
                ", ".join(kernel_paths),
                placeholder="more kernels: NAME=PATH or PATH, comma-separated",
                id="setup-kernel-paths",
            )
            yield Input(
                ", ".join(last.adapters) if last else "",
                placeholder="adapters or checkpoints: PATH or NAME=PATH, comma-separated",
                id="setup-adapters",
            )
            yield Label("Scorer, max tokens, temperature, top-p, seed, probe limit")
            scorers = _scorer_ids()
            scorer = last.scorer if last and last.scorer in scorers else "v2"
            with Horizontal(classes="setup-row"):
                yield Select(
                    [(x, x) for x in scorers], value=scorer, id="setup-scorer", allow_blank=False
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
                    str(last.limit) if last and last.limit else "",
                    placeholder="all probes",
                    id="setup-limit",
                    tooltip="only the first N probes",
                )
            yield Static("", id="setup-error", markup=False)
            yield Button("Run", id="setup-run", variant="primary")

    def on_mount(self) -> None:
        # Something focused at once: with the last run's settings, Enter repeats it; otherwise
        # the battery list (Enter opens it, typing there searches).
        self.query_one("#setup-run" if self.last is not None else "#setup-battery").focus()

    @staticmethod
    def _ticked_text(ticked: list[str]) -> str:
        return f"ticked: {', '.join(ticked)}" if ticked else "no kernel ticked: baseline only"

    def on_selection_list_selected_changed(self, event: SelectionList.SelectedChanged) -> None:
        sel = event.selection_list
        chosen = set(sel.selected)
        for i in range(sel.option_count):
            value = sel.get_option_at_index(i).value
            sel.replace_option_prompt_at_index(i, kernel_prompt(str(value), value in chosen))
        ticked = [
            str(sel.get_option_at_index(i).value)
            for i in range(sel.option_count)
            if sel.get_option_at_index(i).value in chosen
        ]
        self.query_one("#setup-ticked", Static).update(self._ticked_text(ticked))

    def values(self) -> dict[str, str]:
        ids = {
            "battery_path": "battery-path",
            "kernel_paths": "kernel-paths",
            "adapters": "adapters",
            "max_tokens": "max-tokens",
            "temperature": "temperature",
            "top_p": "top-p",
            "seed": "seed",
            "limit": "limit",
        }
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
