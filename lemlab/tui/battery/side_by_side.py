"""Two conditions of one probe side by side: scores, the per-signal breakdown, the phrases each
signal fired on (the scorer's `explain`), failure modes and both responses (never parsed as
markup: tiny models emit gibberish bytes). Keys flip either side's condition and step probes."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from lemlab.core.score_table import ProbeRow, ScoreTable

EVIDENCE_SHOWN = 4  # phrases per signal in the breakdown; the response shows the rest


def load_scorer(scorer_id: str) -> Any:
    """The run's scorer, or None when that id is unknown here (old or foreign files)."""
    try:
        from lemlab.core.scoring import get_scorer

        return get_scorer(scorer_id)
    except Exception:  # noqa: BLE001 - explain is an extra: a missing scorer shows no phrases
        return None


def _phrases(items: list[str]) -> str:
    shown = ", ".join(
        repr(x)[1:-1] if len(x) < 40 else repr(x[:37] + "…")[1:-1] for x in items[:EVIDENCE_SHOWN]
    )
    more = len(items) - EVIDENCE_SHOWN
    return shown + (f" (+{more})" if more > 0 else "")


class SideBySideScreen(Screen[None]):
    DEFAULT_CSS = """
    SideBySideScreen #sbs-title { height: 1; background: $panel; padding: 0 1; text-style: bold; }
    SideBySideScreen #sbs-prompt { height: auto; max-height: 4; padding: 0 1; color: $text-muted; }
    SideBySideScreen #sbs-signals { height: auto; max-height: 18; }
    SideBySideScreen #sbs-sides { height: 1fr; }
    SideBySideScreen .sbs-side { width: 1fr; border: round $secondary; padding: 0 1; }
    SideBySideScreen .sbs-head { text-style: bold; color: $accent; }
    SideBySideScreen .sbs-failure { color: $warning; }
    """
    BINDINGS = [
        Binding(
            "escape", "close", "Back", id="battery.sbs_close", tooltip="Back to the score table"
        ),
        Binding("n", "step(1)", "Next probe", id="battery.sbs_next", tooltip="Show the next probe"),
        Binding(
            "p", "step(-1)", "Prev probe", id="battery.sbs_prev", tooltip="Show the previous probe"
        ),
        Binding(
            "a",
            "flip('left')",
            "Left cond.",
            id="battery.sbs_left",
            tooltip="Cycle the condition shown on the left",
        ),  # fmt: skip
        Binding(
            "b",
            "flip('right')",
            "Right cond.",
            id="battery.sbs_right",
            tooltip="Cycle the condition shown on the right",
        ),  # fmt: skip
        Binding(
            "x", "swap", "Swap", id="battery.sbs_swap", tooltip="Swap the left and right conditions"
        ),
    ]

    def __init__(self, model: ScoreTable, rows: list[ProbeRow], index: int, left: str, right: str,
                 scorer_id: str = "v2") -> None:  # fmt: skip
        super().__init__()
        self.model, self.rows, self.index = model, rows, index
        self.left, self.right = left, right
        self.scorer = load_scorer(scorer_id)

    def compose(self) -> ComposeResult:
        yield Static("", id="sbs-title", markup=False)
        yield Static("", id="sbs-prompt", markup=False)
        yield DataTable(id="sbs-signals", show_cursor=False)
        with Horizontal(id="sbs-sides"):
            for side in ("left", "right"):
                with VerticalScroll(classes="sbs-side", id=f"sbs-{side}"):
                    yield Static("", classes="sbs-head", id=f"sbs-{side}-head", markup=False)
                    yield Static("", classes="sbs-failure", id=f"sbs-{side}-failures", markup=False)
                    yield Static("", id=f"sbs-{side}-text", markup=False)
        yield Footer()

    def on_mount(self) -> None:
        self.redraw()

    @property
    def row(self) -> ProbeRow:
        return self.rows[self.index]

    # -- actions --------------------------------------------------------------------------------
    def action_close(self) -> None:
        self.dismiss(None)

    def action_step(self, by: int) -> None:
        self.index = (self.index + by) % len(self.rows)
        self.redraw()

    def action_flip(self, side: str) -> None:
        names = self.model.conditions
        current = self.left if side == "left" else self.right
        nxt = names[(names.index(current) + 1) % len(names)] if current in names else names[0]
        if side == "left":
            self.left = nxt
        else:
            self.right = nxt
        self.redraw()

    def action_swap(self) -> None:
        self.left, self.right = self.right, self.left
        self.redraw()

    # -- drawing --------------------------------------------------------------------------------
    def redraw(self) -> None:
        row = self.row
        self.query_one("#sbs-title", Static).update(
            f"{row.id} [{row.category}]  probe {self.index + 1}/{len(self.rows)}  ·  "
            f"{self.left}  vs  {self.right}"
        )
        self.query_one("#sbs-prompt", Static).update(Text(row.prompt))
        self._signals(row)
        for side, cond in (("left", self.left), ("right", self.right)):
            self._side(side, row, cond)

    def _head(self, row: ProbeRow, cond: str) -> str:
        cell = self.model.cell(row, cond)
        if cell.score is None:
            return f"{cond}: no score"
        text = f"{cond}: {cell.score:.2f}"
        if cell.delta is not None:
            text += f" (Δ {cell.delta:+.2f} vs {self.model.reference(cond)}{' ' + cell.marker if cell.marker else ''})"
        if cell.override is not None:
            state = "applied" if self.model.with_overrides else "not applied"
            text += f"  override {cell.override.corrected:.2f} ({state}; scorer {cell.override.original:.2f}): {cell.override.reason}"
        return text

    def _side(self, side: str, row: ProbeRow, cond: str) -> None:
        self.query_one(f"#sbs-{side}-head", Static).update(self._head(row, cond))
        modes = row.failure_modes(cond)
        self.query_one(f"#sbs-{side}-failures", Static).update(
            "failure modes: " + (", ".join(modes) if modes else "none")
        )
        self.query_one(f"#sbs-{side}-text", Static).update(
            Text(row.response(cond) or "(no response)")
        )

    def _signals(self, row: ProbeRow) -> None:
        table: DataTable[str] = self.query_one("#sbs-signals", DataTable)
        table.clear(columns=True)
        table.add_columns(
            "signal", self.left, f"{self.left}: fired on", self.right, f"{self.right}: fired on"
        )
        lh, rh = row.heuristic(self.left), row.heuristic(self.right)
        le, re_ = self._explain(row, self.left), self._explain(row, self.right)
        lp, rp = self._points(lh), self._points(rh)
        for name in dict.fromkeys([*lh, *rh]):
            table.add_row(name, _value(lh.get(name), lp.get(name)), _phrases(le.get(name, [])),
                          _value(rh.get(name), rp.get(name)), _phrases(re_.get(name, [])))  # fmt: skip

    def _points(self, heuristic: dict[str, Any]) -> dict[str, float]:
        """Points per signal (weights and caps applied), when the stored signals are this scorer's."""
        if self.scorer is None or set(self.scorer.signal_names) - set(heuristic):
            return {}
        try:
            return dict(self.scorer.points(heuristic))
        except Exception:  # noqa: BLE001 - foreign heuristics: show raw counts only
            return {}

    def _explain(self, row: ProbeRow, cond: str) -> dict[str, list[str]]:
        if self.scorer is None:
            return {}
        try:
            return {
                k: [str(x) for x in v] for k, v in self.scorer.explain(row.response(cond)).items()
            }
        except Exception:  # noqa: BLE001 - a scorer bug must not close the view
            return {}


def _value(count: Any, points: float | None) -> str:
    text = _num(count)
    return f"{text} ({points:+.1f})" if points else text


def _num(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.2f}".rstrip("0").rstrip(".") if value != int(value) else str(int(value))
    return "" if value is None else str(value)
