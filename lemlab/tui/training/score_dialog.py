"""Asks how to score the checkpoints: which battery (shipped, or a file), how many probes and
how many tokens per reply. Dismisses with a ScoreRequest, or None."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Select, Static

from lemlab.core.battery.probes import list_batteries
from lemlab.core.errors import LemlabError
from lemlab.tui.training.checkpoint_scoring import DEFAULT_BATTERY, ScoreRequest


def shipped_batteries() -> list[tuple[str, str]]:
    """(label, name) of every loadable battery, for the picker."""
    return [(f"{b.name}  ({b.count} probes)", b.name) for b in list_batteries() if not b.error]


def parse_request(battery: str, path: str, max_tokens: str, limit: str) -> ScoreRequest:
    try:
        tokens = int(max_tokens)
        probes = int(limit) if limit.strip() else None
    except ValueError:
        raise LemlabError("max tokens and probes must be whole numbers") from None
    spec = path.strip() or battery
    if not spec:
        raise LemlabError("choose a battery or give a battery file")
    return ScoreRequest(battery=spec, max_tokens=tokens, limit=probes)


class ScoreDialog(ModalScreen["ScoreRequest | None"]):
    DEFAULT_CSS = """
    ScoreDialog { align: center middle; }
    #score-box { width: 80; height: auto; border: round $primary; background: $surface; padding: 0 1; }
    #score-box Grid { grid-size: 2; grid-columns: 1fr 2fr; height: auto; }
    #score-box Label { padding: 1 0 0 0; color: $text-muted; }
    #score-error { height: auto; color: $error; }
    #score-buttons { height: 3; align: right middle; }
    """
    BINDINGS = [
        Binding(
            "escape", "cancel", "Cancel", id="score_form.cancel", tooltip="Close, score nothing"
        ),
        Binding("ctrl+s", "run", "Score", id="score_form.run", tooltip="Score every checkpoint"),
    ]

    def __init__(self, request: ScoreRequest, checkpoints: int) -> None:
        super().__init__()
        self.request, self.checkpoints = request, checkpoints

    def compose(self) -> ComposeResult:
        options = shipped_batteries()
        names = [name for _, name in options]
        value = (
            self.request.battery
            if self.request.battery in names
            else (DEFAULT_BATTERY if DEFAULT_BATTERY in names else Select.NULL)
        )
        path = "" if self.request.battery in names else self.request.battery
        with Vertical(id="score-box"):
            yield Static(
                f"Score {self.checkpoints} checkpoints with a battery (greedy; one model load each)",
                classes="table-title",
                markup=False,
            )
            with Grid():
                yield Label("shipped battery")
                yield Select(options, value=value, id="score-battery", allow_blank=True)
                yield Label("or battery file")
                yield Input(path, placeholder="path to .toml/.json/.jsonl", id="score-path")
                yield Label("probes (empty = all)")
                yield Input(str(self.request.limit or ""), id="score-limit")
                yield Label("max tokens per reply")
                yield Input(str(self.request.max_tokens), id="score-tokens")
            yield Static("", id="score-error", markup=False)
            with Horizontal(id="score-buttons"):
                yield Button("Cancel", id="score-cancel")
                yield Button("Score", id="score-run", variant="primary")

    def action_run(self) -> None:
        battery = self.query_one("#score-battery", Select).value
        try:
            req = parse_request(
                battery if isinstance(battery, str) else "",
                self.query_one("#score-path", Input).value,
                self.query_one("#score-tokens", Input).value,
                self.query_one("#score-limit", Input).value,
            )
        except LemlabError as exc:
            self.query_one("#score-error", Static).update(str(exc))
            return
        self.dismiss(req)

    def action_cancel(self) -> None:
        self.dismiss(None)

    @on(Button.Pressed, "#score-run")
    def _run_pressed(self) -> None:
        self.action_run()

    @on(Button.Pressed, "#score-cancel")
    def _cancel_pressed(self) -> None:
        self.action_cancel()

    @on(Input.Submitted)
    def _submitted(self) -> None:
        self.action_run()
