"""Live view of a self-distillation run: kept / generated counts, keep rate, and a histogram of
sample scores with kept and rejected samples side by side (where the threshold cuts).

Standalone: feed it `apply(event)` with lemlab.core.distill.runner events (DistillStarted,
SampleScored), or call start() / record() directly. Plain Text rendering (no markup), so
nothing in a probe id can break it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from rich.text import Text
from textual.widget import Widget

from lemlab.core.distill import runner as ev

BAR = "█"


@dataclass(frozen=True)
class Bin:
    low: float  # inclusive
    high: float  # exclusive
    kept: int
    rejected: int


def score_bins(scores: Iterable[tuple[float, bool]], width: float) -> list[Bin]:
    """Bins of `width` covering every score, highest first; empty bins inside the range are kept
    so the shape reads true."""
    counts: dict[int, list[int]] = {}
    for score, kept in scores:
        cell = counts.setdefault(math.floor(score / width), [0, 0])
        cell[0 if kept else 1] += 1
    if not counts:
        return []
    keys = range(max(counts), min(counts) - 1, -1)
    return [Bin(k * width, (k + 1) * width, *counts.get(k, [0, 0])) for k in keys]


class DistillProgress(Widget):
    """Counts line plus a score histogram. Colours come from the theme (component classes)."""

    COMPONENT_CLASSES = {
        "distill-progress--kept",
        "distill-progress--rejected",
        "distill-progress--dim",
    }
    DEFAULT_CSS = """
    DistillProgress { height: auto; min-height: 3; padding: 0 1; }
    DistillProgress > .distill-progress--kept { color: $success; }
    DistillProgress > .distill-progress--rejected { color: $error; }
    DistillProgress > .distill-progress--dim { color: $text-muted; }
    """

    def __init__(
        self,
        *,
        threshold: float = 24.0,
        total: int = 0,
        bin_width: float = 5.0,
        max_rows: int = 12,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.threshold, self.total, self.bin_width, self.max_rows = (
            threshold,
            total,
            bin_width,
            max_rows,
        )
        self.scores: list[tuple[float, bool]] = []

    # -- feeding --

    def start(
        self, total: int, threshold: float, resumed: Iterable[tuple[float, bool]] = ()
    ) -> None:
        """A (re)started run: totals, the gate, and scores already recorded by an earlier run."""
        self.total, self.threshold = total, threshold
        self.scores = list(resumed)
        self.refresh(layout=True)

    def record(self, score: float, kept: bool) -> None:
        self.scores.append((score, kept))
        self.refresh(layout=True)

    def apply(self, event: object) -> None:
        """Take a lemlab.core.distill.runner event; others are ignored."""
        if isinstance(event, ev.DistillStarted):
            self.start(
                event.counts.total, self.threshold, [(r.lek_score, r.kept) for r in event.resumed]
            )
        elif isinstance(event, ev.SampleScored):
            self.record(event.sample.lek_score, event.sample.kept)

    # -- figures --

    @property
    def generated(self) -> int:
        return len(self.scores)

    @property
    def kept(self) -> int:
        return sum(1 for _, k in self.scores if k)

    @property
    def keep_rate(self) -> float:
        return 100.0 * self.kept / self.generated if self.generated else 0.0

    def summary_text(self) -> str:
        of = f" of {self.total}" if self.total else ""
        return (
            f"kept {self.kept} / generated {self.generated}{of} · keep rate {self.keep_rate:.1f}% "
            f"· threshold {self.threshold:g}"
        )

    # -- drawing --

    def get_content_height(self, container: object, viewport: object, width: int) -> int:
        return 2 + len(self._bins())

    def _bins(self) -> list[Bin]:
        bins = score_bins(self.scores, self.bin_width)
        return bins[: self.max_rows]  # the highest scores matter most: they are what is kept

    def render(self) -> Text:
        kept_style = self.get_component_rich_style("distill-progress--kept")
        rej_style = self.get_component_rich_style("distill-progress--rejected")
        dim = self.get_component_rich_style("distill-progress--dim")
        text = Text(self.summary_text(), no_wrap=True)
        bins = self._bins()
        if not bins:
            text.append("\nno samples yet", style=dim)
            return text
        text.append("\n" + f"{'score':>13}  kept / rejected", style=dim)
        bar_room = max(4, (self.size.width or 60) - 32) // 2
        peak = max(max(b.kept, b.rejected) for b in bins) or 1
        for b in bins:
            text.append(f"\n{b.low:>6g}..{b.high:<5g}")
            text.append("▸" if b.low <= self.threshold < b.high else " ", style=dim)
            text.append(" ")
            text.append(_bar(b.kept, peak, bar_room), style=kept_style)
            text.append(f" {b.kept:<4}")
            text.append(_bar(b.rejected, peak, bar_room), style=rej_style)
            text.append(f" {b.rejected}")
        return text


def _bar(count: int, peak: int, room: int) -> str:
    n = math.ceil(count / peak * room) if count else 0
    return (BAR * n).ljust(room)
