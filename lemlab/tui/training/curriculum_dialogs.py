"""The two questions a curriculum asks in the TUI: run these stages? (the plan, with each stage's
settings and status) and, between stages, fuse this adapter? (what is merged, where the merged
model goes, how big it is). Both dismiss with True (Enter / y) or False (Esc / n)."""

from __future__ import annotations

import shutil
from pathlib import Path

from rich.table import Table
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from lemlab.core.training.curriculum import Curriculum, FuseJob, StageRow
from lemlab.tui.models.rows import human_size

STATUS_STYLE = {
    "done": "bold green",
    "pending": "",
    "stopped": "yellow",
    "trained (not fused)": "yellow",
}

_CSS = """
{cls} {{ align: center middle; }}
{cls} > Vertical {{ width: 100; height: auto; max-height: 90%; border: round $primary;
    background: $surface; padding: 0 1; }}
{cls} .dialog-title {{ height: auto; color: $secondary; text-style: bold; }}
{cls} .dialog-text {{ height: auto; }}
{cls} VerticalScroll {{ height: auto; max-height: 16; }}
{cls} .dialog-warning {{ height: auto; padding: 0 1; background: $warning 25%; }}
{cls} .dialog-buttons {{ height: 3; align: right middle; }}
"""


def stage_table(rows: list[StageRow]) -> Table:
    """Stage names and paths are user text: Text cells, never markup."""
    table = Table(box=None, pad_edge=False, header_style="bold")
    for name, justify in (
        ("#", "right"),
        ("stage", "left"),
        ("data", "left"),
        ("iters", "right"),
        ("lr", "right"),
        ("layers", "right"),
        ("status", "left"),
    ):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for r in rows:
        table.add_row(
            str(r.number),
            Text(r.name),
            Text(r.data),
            f"{r.iters:,}",
            f"{r.learning_rate:g}",
            str(r.num_layers),
            Text(r.status, style=STATUS_STYLE.get(r.status, "")),
        )
    return table


class _YesNo(ModalScreen[bool]):
    """Enter / y answers yes, Esc / n answers no; the buttons do the same."""

    BINDINGS = [
        Binding("enter,y", "answer(True)", "Yes", id="curriculum_dialog.yes", tooltip="Go ahead"),
        Binding(
            "escape,n", "answer(False)", "No", id="curriculum_dialog.no", tooltip="Do not go ahead"
        ),
    ]

    def on_mount(self) -> None:
        self.query_one("#dialog-yes", Button).focus()

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "dialog-yes")


class CurriculumDialog(_YesNo):
    DEFAULT_CSS = _CSS.format(cls="CurriculumDialog")

    def __init__(
        self, cur: Curriculum, rows: list[StageRow], plan: list[str], warned: bool
    ) -> None:
        super().__init__()
        self.cur, self.rows, self.plan, self.warned = cur, rows, plan, warned

    def compose(self) -> ComposeResult:
        left = sum(r.status != "done" for r in self.rows)
        with Vertical(id="curriculum-box"):
            yield Static(
                f"Run curriculum {self.cur.path.name}: {left} of {len(self.rows)} stages left  "
                "(Enter/y runs, Esc/n cancels)",
                classes="dialog-title",
                markup=False,
            )
            yield Static(
                f"base model {self.cur.base_model}\noutput     {self.cur.output}",
                classes="dialog-text",
                markup=False,
            )
            yield Static(stage_table(self.rows), id="curriculum-stages", classes="dialog-text")
            with VerticalScroll(id="curriculum-plan"):
                yield Static("\n".join(self.plan), classes="dialog-text", markup=False)
            if self.warned:
                yield Static(
                    "A small-model warning is in the plan above: running goes ahead anyway.",
                    classes="dialog-warning",
                    markup=False,
                )
            with Horizontal(classes="dialog-buttons"):
                yield Button("Cancel", id="dialog-no")
                yield Button(
                    "Run anyway" if self.warned else "Run", id="dialog-yes", variant="primary"
                )


def free_space(path: Path) -> int | None:
    """Free bytes on the disk that will hold `path` (its nearest existing ancestor)."""
    for folder in (path, *path.parents):
        if folder.exists():
            try:
                return shutil.disk_usage(folder).free
            except OSError:
                return None
    return None


def fuse_lines(cur: Curriculum, job: FuseJob) -> list[str]:
    size = human_size(job.size_bytes) or "unknown"
    free = free_space(job.out)
    return [
        f"adapter   {job.adapter}",
        f"into      {job.model}",
        f"writes    {job.out}",
        f"size      about {size}"
        + (f"; {human_size(free)} free there" if free is not None else ""),
        f"merged    {job.describe()}",
    ]


class FuseDialog(_YesNo):
    DEFAULT_CSS = _CSS.format(cls="FuseDialog")

    def __init__(self, cur: Curriculum, job: FuseJob) -> None:
        super().__init__()
        self.cur, self.job = cur, job

    def compose(self) -> ComposeResult:
        i, stages = self.job.stage, self.cur.stages
        nxt = f"stage {i + 2} {stages[i + 1].name!r}"
        with Vertical(id="fuse-box"):
            yield Static(
                f"Fuse stage {i + 1} {stages[i].name!r} so that {nxt} starts from merged weights?",
                classes="dialog-title",
                markup=False,
            )
            yield Static(
                "\n".join(fuse_lines(self.cur, self.job)),
                id="fuse-details",
                classes="dialog-text",
                markup=False,
            )
            yield Static(
                f"Enter/y fuses and goes on. Esc/n stops the curriculum here; run it again to "
                f"fuse and continue with {nxt}.",
                classes="dialog-text",
                markup=False,
            )
            with Horizontal(classes="dialog-buttons"):
                yield Button("Stop here", id="dialog-no")
                yield Button("Fuse", id="dialog-yes", variant="primary")
