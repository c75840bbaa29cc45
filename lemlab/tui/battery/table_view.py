"""The score grid: one row per probe, one column per condition (score with + / - vs the baseline,
overridden cells marked `*` and styled apart, failure modes tagged), then one numeric delta column
per compared condition, a summary table pinned under it and a preview of the highlighted response
(while a run goes: the reply being generated). It draws a lemlab.core.ab.score_table.ScoreTable; all
logic is there."""

from __future__ import annotations

import textwrap

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import DataTable, Static

from lemlab.core.ab.score_table import Cell, ConditionSummary, ProbeRow, ScoreTable, failure_tag
from lemlab.core.safe_text import visible, visible_line

PREVIEW_CHARS = 2000  # the preview shows the start; the side-by-side view shows all
PREVIEW_LINES = 4  # rows of text in the preview box (its height minus the border)
SCORE_WIDTH = 7  # -100.00
FIXED = ("probe", "category")  # leading columns before the conditions


def cell_text(
    cell: Cell,
    colours: dict[str, str],
    with_overrides: bool,
    failures: list[str] | None = None,
    tag_width: int = 0,
) -> Text:
    """Score, + / - marker, `*` when an override is shown, and the failure modes' tag (reversed,
    in the warning colour: a -17.4 from token degeneration must not read as a plain low score)."""
    # Fixed widths instead of right-justifying: a padded tag after the score would be trimmed.
    if cell.score is None:
        text = Text(f"{'—':>{SCORE_WIDTH}}  ", style=colours.get("text-muted", ""))
    else:
        shown = cell.override is not None and with_overrides
        mark = cell.marker or " "
        mark_style = {"+": colours.get("success", ""), "-": colours.get("error", "")}.get(
            cell.marker, ""
        )
        score = Text(f"{cell.score:>{SCORE_WIDTH}.2f}")
        if shown:
            score.stylize(f"italic underline {colours.get('warning', '')}")
        text = Text.assemble(score, (mark, mark_style), ("*" if shown else " "))
    tag = failure_tag(failures or [])
    if tag_width:  # padded to the column's widest tag, so the scores stay aligned
        text.append(" ")
        text.append(tag, style=f"reverse {colours.get('warning', '')}" if tag else "")
        text.append(" " * (tag_width - len(tag)))
    return text


def delta_text(cell: Cell, colours: dict[str, str]) -> Text:
    if cell.delta is None:
        return Text("—", style=colours.get("text-muted", ""), justify="right")
    style = {"+": colours.get("success", ""), "-": colours.get("error", "")}.get(cell.marker, "")
    return Text(f"{cell.delta:+.2f}" if cell.delta else "0.00", style=style, justify="right")


def summary_cells(s: ConditionSummary, is_reference: bool) -> list[str]:
    def num(v: float | None, signed: bool = False) -> str:
        return "" if v is None else (f"{v:+.2f}" if signed else f"{v:.2f}")

    if is_reference:
        return [s.name, str(s.n), num(s.mean), "", "", "", "", "", ""]
    ci = f"[{s.ci[0]:+.2f}, {s.ci[1]:+.2f}]" if s.ci else ""
    p = f"{s.sign_p:.3f}" if s.sign_p is not None else ""
    return [
        s.name,
        str(s.n),
        num(s.mean),
        num(s.delta, True),
        f"{s.pct(s.improved):.0f}%",
        f"{s.pct(s.regressed):.0f}%",
        f"{s.pct(s.unchanged):.0f}%",
        p,
        ci,
    ]


class ScoreGrid(Vertical):
    DEFAULT_CSS = """
    ScoreGrid { height: 1fr; }
    ScoreGrid #battery-table { height: 1fr; }
    ScoreGrid #battery-summary-title { height: 1; color: $secondary; text-style: bold; padding: 0 1; }
    ScoreGrid #battery-summary { height: auto; max-height: 8; }
    ScoreGrid #battery-preview {
        height: 5; padding: 0 1; color: $text-muted; border-top: solid $secondary;
        overflow: hidden;
    }
    """

    def __init__(self) -> None:
        super().__init__(id="battery-grid")
        self.model: ScoreTable | None = None
        self.shown: list[ProbeRow] = []
        self.live: tuple[str, str, str, int, float] | None = None  # a reply being generated

    def compose(self) -> ComposeResult:
        table: DataTable[Text | str] = DataTable(
            id="battery-table", cursor_type="cell", zebra_stripes=True
        )
        table.fixed_columns = 1
        yield table
        yield Static("Summary", id="battery-summary-title", markup=False)
        summary: DataTable[str | Text] = DataTable(id="battery-summary", show_cursor=False)
        summary.can_focus = False
        yield summary
        yield Static("", id="battery-preview", markup=False)

    @property
    def table(self) -> DataTable[Text | str]:
        return self.query_one("#battery-table", DataTable)

    # -- drawing ----------------------------------------------------------------------------
    def show(self, model: ScoreTable) -> None:
        """Draw a table from scratch (a new run, a loaded file, a comparison)."""
        self.model = model
        t = self.table
        t.clear(columns=True)
        t.add_column("probe", key="probe")
        t.add_column("category", key="category")
        compared = set(self.compared())
        for c in model.conditions:  # each delta next to its score: in view on a narrow screen
            t.add_column(Text(visible_line(c)), key=f"c:{c}")
            if c in compared:
                t.add_column(Text(visible_line(f"Δ {c}")), key=f"d:{c}")
        self.refresh_rows()

    def compared(self) -> list[str]:
        """Conditions with a delta column (all but their own references)."""
        m = self.model
        return [] if m is None else [c for c in m.conditions if c != m.reference(c)]

    def refresh_rows(self) -> None:
        """Redraw rows and the summary after a sort, filter, override or new line; the cursor
        stays on the same probe and column."""
        model, t = self.model, self.table
        if model is None:
            return
        probe, col = self.current_probe(), t.cursor_coordinate.column
        colours = self.app.get_css_variables()
        t.clear()
        self.shown = model.visible()
        widths = {
            c: max((len(failure_tag(r.failure_modes(c))) for r in self.shown), default=0)
            for c in model.conditions
        }
        compared = set(self.compared())
        for r in self.shown:
            cells: list[Text] = []
            for c in model.conditions:
                cell = model.cell(r, c)
                cells.append(
                    cell_text(cell, colours, model.with_overrides, r.failure_modes(c), widths[c])
                )
                if c in compared:
                    cells.append(delta_text(cell, colours))
            # Ids and names come from the file: Text (never markup), controls visible.
            t.add_row(Text(visible_line(r.id)), Text(visible_line(r.category)), *cells, key=r.id)
        if probe is not None and probe in {r.id for r in self.shown}:
            t.move_cursor(row=t.get_row_index(probe), column=col)
        elif self.shown:
            t.move_cursor(row=0, column=col)
        self.refresh_summary()
        self.show_preview()

    def refresh_summary(self) -> None:
        model = self.model
        s: DataTable[str | Text] = self.query_one("#battery-summary", DataTable)
        s.clear(columns=True)
        if model is None:
            return
        s.add_columns(
            "condition",
            "n",
            "mean",
            "Δ ref",
            "failure modes",
            "improved",
            "regressed",
            "unchanged",
            "sign p",
            "95% CI Δ",
        )
        for row in model.summary(self.shown):
            name, n, mean, delta, *rest = summary_cells(row, model.reference(row.name) == row.name)
            counts = model.failure_counts(row.name, self.shown)
            fails = " ".join(f"{failure_tag([k])} {v}" for k, v in sorted(counts.items())) or "none"
            s.add_row(Text(visible_line(name)), n, mean, delta, Text(visible_line(fails)), *rest)
        state = "with overrides" if model.with_overrides else "without overrides (scorer's values)"
        title = f"Summary of {len(self.shown)} of {len(model.rows)} probes, {state}"
        self.query_one("#battery-summary-title", Static).update(title)

    # -- where the cursor is ------------------------------------------------------------------
    def current_probe(self) -> str | None:
        t = self.table
        if not t.row_count:
            return None
        key = t.coordinate_to_cell_key(t.cursor_coordinate).row_key.value
        return str(key) if key is not None else None

    def current_condition(self) -> str | None:
        """The condition under the cursor, on its score or its delta column (None on the probe /
        category columns)."""
        t = self.table
        if not t.row_count or self.model is None:
            return None
        key = t.coordinate_to_cell_key(t.cursor_coordinate).column_key.value or ""
        return key[2:] if key[:2] in ("c:", "d:") else None

    def on_delta_column(self) -> bool:
        t = self.table
        if not t.row_count:
            return False
        key = t.coordinate_to_cell_key(t.cursor_coordinate).column_key.value or ""
        return key.startswith("d:")

    def move_to(self, probe_id: str, condition: str | None = None) -> None:
        """Put the cursor on this probe (and this condition's score column): side by side
        steps through probes, and an override from the table must land where the reader was."""
        t = self.table
        if probe_id not in {r.id for r in self.shown}:
            return
        col = t.cursor_coordinate.column
        if condition is not None and self.model is not None and condition in self.model.conditions:
            col = t.get_column_index(f"c:{condition}")
        t.move_cursor(row=t.get_row_index(probe_id), column=col)

    def current_row(self) -> ProbeRow | None:
        pid = self.current_probe()
        return next((r for r in self.shown if r.id == pid), None)

    def show_live(self, probe_id: str, cond: str, text: str, tokens: int, tps: float) -> None:
        self.live = (probe_id, cond, text, tokens, tps)
        self.show_preview()

    def end_live(self) -> None:
        self.live = None
        self.show_preview()

    def _live_text(self, width: int) -> Text:
        """The reply being generated: its last lines, so the newest tokens are in view."""
        assert self.live is not None
        pid, cond, text, tokens, tps = self.live
        pid, cond, text = visible_line(pid), visible_line(cond), visible(text)
        lines = [
            w
            for para in text.split("\n") or [""]
            for w in textwrap.wrap(para, max(10, width)) or [""]
        ]
        head = Text(f"generating {pid} / {cond}: {tokens} tokens, {tps:.1f} tok/s", style="bold")
        return Text("\n").join([head, Text("\n".join(lines[-(PREVIEW_LINES - 1) :]))])

    def show_preview(self) -> None:
        row, cond = self.current_row(), self.current_condition()
        box = self.query_one("#battery-preview", Static)
        if self.live is not None:
            box.update(self._live_text(box.content_region.width or self.size.width - 2))
            return
        if row is None:
            box.update("")
            return
        # Everything here came from the file (or the model): controls shown visibly.
        pid, cond_shown = visible_line(row.id), visible_line(cond or "")
        if cond is None:
            box.update(Text(f"{pid} [{visible_line(row.category)}]: {visible(row.prompt)}"))
            return
        text = visible(row.response(cond)[:PREVIEW_CHARS])
        out = Text()
        for label, evidence in row.failure_evidence(cond):  # why the tag is there
            out.append(
                visible_line(f"{label}{': ' + evidence if evidence else ''}") + "\n", style="bold"
            )
        out.append(f"{cond_shown}: {text}" if text else f"{cond_shown}: (no response)")
        box.update(out)

    def on_data_table_cell_highlighted(self, event: DataTable.CellHighlighted) -> None:
        if event.data_table.id == "battery-table":
            self.show_preview()
