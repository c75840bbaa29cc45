"""Two conditions of one probe side by side: scores, the per-signal breakdown, the phrases each
signal fired on (the scorer's `explain`), failure modes and both responses (never parsed as
markup: tiny models emit gibberish bytes). Keys flip either side's condition, step probes (the
score table's cursor follows) and override the focused side's score. Signals that are zero on
both sides are hidden and the signal table folds away (t), so a small terminal keeps rows for
the responses."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from lemlab.core.ab.score_table import ProbeRow, ScoreTable
from lemlab.core.safe_text import visible, visible_line
from lemlab.core.scoring import get_scorer

EVIDENCE_SHOWN = 4  # phrases per signal in the breakdown; the response shows the rest


def load_scorer(scorer_id: str) -> Any:
    """The run's scorer, or None when that id is unknown here (old or foreign files)."""
    try:
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
    """`on_show(probe_id, condition)` is called whenever the probe or the right-hand condition
    changes (the score table follows, so the cursor is on the probe shown when the reader goes
    back); `on_override(probe_id, condition, done)` corrects a score shown here and calls
    `done()` once it is saved."""

    DEFAULT_CSS = """
    SideBySideScreen #sbs-title { height: auto; background: $panel; padding: 0 1; text-style: bold; }
    SideBySideScreen #sbs-prompt { height: auto; max-height: 4; padding: 0 1; color: $text-muted; }
    SideBySideScreen #sbs-signals { height: auto; max-height: 40%; }
    SideBySideScreen #sbs-signals-note { height: auto; padding: 0 1; color: $text-muted; }
    SideBySideScreen #sbs-sides { height: 1fr; min-height: 6; }
    SideBySideScreen .sbs-side { width: 1fr; border: round $secondary; padding: 0 1; }
    SideBySideScreen .sbs-side:focus { border: round $accent; }
    SideBySideScreen .sbs-head { text-style: bold; color: $accent; }
    SideBySideScreen .sbs-failure { color: $warning; }
    """
    BINDINGS = [
        # F1 first: the footer keeps its first keys when a small terminal cuts the rest.
        Binding(
            "f1", "app.help", "Help", id="battery.sbs_help", tooltip="Show all keys and commands"
        ),
        Binding(
            "escape", "close", "Back", id="battery.sbs_close", tooltip="Back to the score table"
        ),
        Binding("n", "step(1)", "Next", id="battery.sbs_next", tooltip="Show the next probe"),
        Binding("p", "step(-1)", "Prev", id="battery.sbs_prev", tooltip="Show the previous probe"),
        # Not a priority binding: it must see the probe that keys queued before it (n, p) chose.
        Binding(
            "o",
            "override",
            "Override",
            id="battery.sbs_override",
            tooltip="Correct the score of the focused side (Tab switches sides)",
        ),
        Binding(
            "t",
            "toggle_signals",
            "Signals",
            id="battery.sbs_signals",
            tooltip="Show or hide the signal table (more rows for the responses)",
        ),
        Binding(
            "a",
            "flip('left')",
            "Left cond.",
            id="battery.sbs_left",
            tooltip="Cycle the condition shown on the left",
        ),
        Binding(
            "b",
            "flip('right')",
            "Right cond.",
            id="battery.sbs_right",
            tooltip="Cycle the condition shown on the right",
        ),
        Binding(
            "x", "swap", "Swap", id="battery.sbs_swap", tooltip="Swap the left and right conditions"
        ),
        Binding(
            "z",
            "toggle_zero",
            "Zero signals",
            id="battery.sbs_zero",
            show=False,
            tooltip="Show or hide signals that are zero on both sides",
        ),
    ]

    def __init__(
        self,
        model: ScoreTable,
        rows: list[ProbeRow],
        index: int,
        left: str,
        right: str,
        scorer_id: str = "v2",
        *,
        on_show: Callable[[str, str], None] | None = None,
        on_override: Callable[[str, str, Callable[[], None]], None] | None = None,
    ) -> None:
        super().__init__()
        self.model, self.rows, self.index = model, rows, index
        self.left, self.right = left, right
        self.scorer = load_scorer(scorer_id)
        self.on_show, self.on_override = on_show, on_override
        self.signals_shown = True
        self.zero_shown = False  # zero-on-both-sides signals take rows the responses need

    def compose(self) -> ComposeResult:
        yield Static("", id="sbs-title", markup=False)
        yield Static("", id="sbs-prompt", markup=False)
        signals: DataTable[str | Text] = DataTable(id="sbs-signals", show_cursor=False)
        signals.can_focus = False  # Tab moves between the two responses
        yield signals
        yield Static("", id="sbs-signals-note", markup=False)
        with Horizontal(id="sbs-sides"):
            for side in ("left", "right"):
                with VerticalScroll(classes="sbs-side", id=f"sbs-{side}"):
                    yield Static("", classes="sbs-head", id=f"sbs-{side}-head", markup=False)
                    yield Static("", classes="sbs-failure", id=f"sbs-{side}-failures", markup=False)
                    yield Static("", id=f"sbs-{side}-text", markup=False)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#sbs-right").focus()
        self.redraw()

    @property
    def row(self) -> ProbeRow:
        return self.rows[self.index]

    @property
    def focused_condition(self) -> str:
        """The condition of the focused side (the right one unless the left has focus)."""
        focused = self.focused
        left = self.query_one("#sbs-left")
        return (
            self.left
            if focused is not None and (focused is left or left in focused.ancestors)
            else self.right
        )

    # -- actions --------------------------------------------------------------------------------
    def action_close(self) -> None:
        self._shown()
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

    def action_toggle_signals(self) -> None:
        self.signals_shown = not self.signals_shown
        self.redraw()

    def action_toggle_zero(self) -> None:
        self.zero_shown = not self.zero_shown
        self.redraw()

    def action_override(self) -> None:
        if self.on_override is None:
            self.notify("overrides need an open run file (not a comparison)")
            return
        row, cond = self.row, self.focused_condition
        if row.score(cond) is None:
            self.notify(f"{cond} has no score on {row.id}")
            return
        self.on_override(row.id, cond, self.redraw)

    def _shown(self) -> None:
        if self.on_show is not None:
            self.on_show(self.row.id, self.right)

    # -- drawing --------------------------------------------------------------------------------
    def redraw(self) -> None:
        row = self.row
        # The conditions first: in a kernel A/B the kernel's name is the fact that matters, and
        # a narrow terminal must wrap the title, never cut it.
        # Names, ids, prompts and responses come from the file: controls shown visibly.
        self.query_one("#sbs-title", Static).update(
            visible_line(
                f"{self.left}  vs  {self.right}  ·  {row.id} [{row.category}]  "
                f"probe {self.index + 1}/{len(self.rows)}"
            )
        )
        self.query_one("#sbs-prompt", Static).update(Text(visible(row.prompt)))
        self._signals(row)
        for side, cond in (("left", self.left), ("right", self.right)):
            self._side(side, row, cond)
        self._shown()

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
        self.query_one(f"#sbs-{side}-head", Static).update(visible_line(self._head(row, cond)))
        found = row.failure_evidence(cond)
        self.query_one(f"#sbs-{side}-failures", Static).update(
            visible_line(
                "failure modes: "
                + (
                    "; ".join(f"{label} ({ev})" if ev else label for label, ev in found)
                    if found
                    else "none"
                )
            )
        )
        self.query_one(f"#sbs-{side}-text", Static).update(
            Text(visible(row.response(cond)) or "(no response)")
        )

    def _signals(self, row: ProbeRow) -> None:
        table: DataTable[str | Text] = self.query_one("#sbs-signals", DataTable)
        note = self.query_one("#sbs-signals-note", Static)
        table.clear(columns=True)
        lh, rh = row.heuristic(self.left), row.heuristic(self.right)
        names = list(dict.fromkeys([*lh, *rh]))
        zero = [
            n
            for n in names
            if n != "lek_score" and not _nonzero(lh.get(n)) and not _nonzero(rh.get(n))
        ]
        shown = names if self.zero_shown else [n for n in names if n not in zero]
        table.display = self.signals_shown
        if not self.signals_shown:
            note.display = True
            note.update(f"signal table hidden ({len(shown)} signals) · t shows it")
            return
        note.update(
            f"{len(zero)} signals zero on both sides hidden · z shows them · t hides the table"
            if zero and not self.zero_shown
            else ""
        )
        note.display = bool(zero and not self.zero_shown)
        table.add_columns(
            *(
                _cell(c)
                for c in (
                    "signal",
                    self.left,
                    f"{self.left}: fired on",
                    self.right,
                    f"{self.right}: fired on",
                )
            )
        )
        le, re_ = self._explain(row, self.left), self._explain(row, self.right)
        lp, rp = self._points(lh), self._points(rh)
        for name in shown:
            table.add_row(
                *(
                    _cell(c)
                    for c in (  # DataTable reads str cells as markup
                        name,
                        _value(lh.get(name), lp.get(name)),
                        _phrases(le.get(name, [])),
                        _value(rh.get(name), rp.get(name)),
                        _phrases(re_.get(name, [])),
                    )
                )
            )

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


def _cell(text: str) -> Text:
    return Text(visible_line(text))


def _nonzero(value: Any) -> bool:
    return bool(value) if isinstance(value, int | float) else value not in (None, "", [], {})


def _value(count: Any, points: float | None) -> str:
    text = _num(count)
    return f"{text} ({points:+.1f})" if points else text


def _num(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.2f}".rstrip("0").rstrip(".") if value != int(value) else str(int(value))
    return "" if value is None else str(value)
