"""Plain-text views of a `RunState`: the block `lemlab watch` and `lemlab train` redraw, and
one-line event descriptions for non-terminal output. Plain strings (no markup), so the TUI can
reuse them inside `rich.text.Text` or `Static(markup=False)`."""

from __future__ import annotations

from lemlab.core.training.events import RunState, TrainingEvent, perplexity
from lemlab.core.training.textchart import render_loss_chart


def fmt_duration(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    s = int(round(seconds))
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s" if m else f"{s}s"


# What each phase event means, as the monitors say it.
PHASE_TEXT = {
    "loading": "loading model and data",
    "compiling": "compiling kernels (first steps; minutes on a cold MLX cache)",
    "evaluating": "evaluating (validation loss)",
    "training": "training",
    "saving": "saving adapters",
}
QUIET_SECONDS = 30.0  # no event for this long: say so (a stalled, slow or killed trainer)


def fmt_rate(rate: float | None) -> str:
    """Iterations per second, or seconds per iteration below 1 it/s (never "0.0 it/s")."""
    if not rate or rate <= 0:
        return "? it/s"
    return f"{rate:,.1f} it/s" if rate >= 1 else f"{1 / rate:,.1f} s/it"


def phase_text(state: RunState) -> str:
    """The trainer's phase while it runs ("" when finished or unknown)."""
    if state.finished or state.phase is None:
        return ""
    return PHASE_TEXT.get(state.phase, state.phase)


def quiet_seconds(state: RunState, now: float | None) -> float | None:
    """Seconds since the last event of a running run; None when finished or unknown."""
    if state.finished or now is None or state.last_seen is None:
        return None
    return max(now - state.last_seen, 0.0)


def status_text(state: RunState, now: float | None = None) -> str:
    """ "running · compiling kernels (...) · no event for 1m40s"; the end reason once finished."""
    parts = [state.status + (f": {state.message}" if state.message else "")]
    phase = phase_text(state)
    if phase:
        parts.append(phase)
    quiet = quiet_seconds(state, now)
    if quiet is not None and quiet >= QUIET_SECONDS:
        parts.append(f"no event for {fmt_duration(quiet)}")
    return " · ".join(parts)


def _num(value: float | None, spec: str, unit: str = "") -> str:
    return "?" if value is None else f"{value:{spec}}{unit}"


def _loss(loss: float | None) -> str:
    if loss is None:
        return "?"
    ppl = perplexity(loss)
    return f"{loss:.3f} (ppl {ppl:,.1f})" if ppl is not None else f"{loss:.3f}"


def _timing(state: RunState) -> str:
    elapsed = None
    if state.first_seen is not None and state.last_seen is not None:
        elapsed = state.last_seen - state.first_seen
    if state.finished:
        return f"took {fmt_duration(elapsed)}"
    return f"ETA {fmt_duration(state.eta_seconds)}"


def progress_line(state: RunState) -> str:
    total = state.total_iters
    if total:
        pct = min(state.iteration / total, 1.0)
        bar = "#" * int(pct * 20)
        return f"iteration {state.iteration:,}/{total:,} [{bar:<20}] {pct:.0%}"
    return f"iteration {state.iteration:,}/?"


def best_line(state: RunState) -> str:
    if state.best_val is None:
        return "best val   ?"
    it, loss = state.best_val
    ckpt = state.best_checkpoint
    where = f", nearest checkpoint {ckpt.rsplit('/', 1)[-1]}" if ckpt else ""
    return f"best val   {loss:.3f} at iteration {it:,}{where}"


def summary_lines(
    state: RunState, *, chart: bool = True, width: int = 72, now: float | None = None
) -> list[str]:
    """The monitor block: status (with the phase, and how long it has been quiet when `now` is
    given), progress and rate, losses, memory, ETA, best val, chart."""
    rate = state.iterations_per_second
    lines = [
        f"status     {status_text(state, now)}"
        + (f"   (log format: {state.log_format})" if state.log_format else ""),
        progress_line(state) + (f"   {fmt_rate(rate)}" if rate else ""),
        f"train loss {_loss(state.train_loss)}",
        f"val loss   {_loss(state.val_loss)}",
        f"lr {_num(state.learning_rate, '.2e')}   tokens/s {_num(state.tokens_per_second, ',.0f')}"
        f"   peak mem {_num(state.peak_memory, '.3g', ' GB')}   {_timing(state)}",
        best_line(state),
        f"checkpoints {len(state.checkpoints)}"
        + (f" (last {state.checkpoints[-1][1].rsplit('/', 1)[-1]})" if state.checkpoints else ""),
    ]
    if chart:
        lines.append("")
        lines.extend(
            render_loss_chart(
                state.train_points,
                state.val_points,
                width=max(width - 10, 20),
                height=8,
                total_iters=state.total_iters,
            )
        )
    return lines


def compact_lines(state: RunState, now: float | None = None) -> list[str]:
    """`summary_lines`'s figures in three lines, for a small terminal (80x24), where the chart
    needs the rows: status and progress, losses and the best checkpoint, rate and memory."""
    total = f"{state.total_iters:,}" if state.total_iters else "?"
    pct = f" ({min(state.iteration / state.total_iters, 1.0):.0%})" if state.total_iters else ""
    rate = state.iterations_per_second
    head = f"{status_text(state, now)} · iteration {state.iteration:,}/{total}{pct}"
    if rate:
        head += f" · {fmt_rate(rate)}"
    head += f" · {_timing(state)}"
    best = "?"
    if state.best_val is not None:
        it, loss = state.best_val
        best = f"{loss:.3f} @ {it:,}"
        if state.best_checkpoint:
            best += f" ({state.best_checkpoint.rsplit('/', 1)[-1]})"
    losses = f"train {_num(state.train_loss, '.3f')}   val {_num(state.val_loss, '.3f')}   best val {best}"
    extra = (
        f"lr {_num(state.learning_rate, '.2e')}   tokens/s {_num(state.tokens_per_second, ',.0f')}"
        f"   peak mem {_num(state.peak_memory, '.3g', ' GB')}   checkpoints {len(state.checkpoints)}"
    )
    return [head, losses, extra]


# ---------------------------------------------------------------- full-screen monitor

MONITOR_CHART_ROWS = (6, 24)  # chart height bounds when fitted to the terminal


def _elapsed(state: RunState, now: float | None) -> float | None:
    """Run time so far: to the last event once finished, else to `now` (the clock ticks between
    reports)."""
    if state.first_seen is None:
        return None
    end = state.last_seen if state.finished or now is None else max(now, state.last_seen or now)
    return (end or state.first_seen) - state.first_seen


def _clock(state: RunState, now: float | None) -> str:
    seconds = _elapsed(state, now)
    elapsed = fmt_duration(seconds)
    if state.finished:
        return "" if seconds is None else f"took {elapsed}"  # a stdout log read once has no times
    if state.status == "waiting":
        return ""
    eta = state.eta_seconds
    quiet = now - state.last_seen if now is not None and state.last_seen is not None else None
    if eta is not None and quiet is not None:
        eta = max(eta - quiet, 0.0)  # count down between reports
    parts = [f"elapsed {elapsed}", f"ETA {fmt_duration(eta)}"]
    if quiet is not None:
        parts.append(f"last event {fmt_duration(quiet)} ago")  # a stalled or killed run shows here
    return "   ".join(parts)


def _at(points: list[tuple[int, float]]) -> str:
    return f" at iteration {points[-1][0]:,}" if points else ""


def _best_with_checkpoint(state: RunState) -> str:
    """Like `best_line`, shorter (fits 80 columns), and "nearest" only when the checkpoint was
    saved at a different iteration than the best validation."""
    if state.best_val is None or state.best_checkpoint is None:
        return best_line(state)
    it, loss = state.best_val
    ckpt_it = next(i for i, p in state.checkpoints if p == state.best_checkpoint)
    name = state.best_checkpoint.rsplit("/", 1)[-1]
    return f"best val   {loss:.3f} at iteration {it:,}, {'' if ckpt_it == it else 'nearest '}checkpoint {name}"


def _figures(state: RunState, now: float | None) -> list[str]:
    # The clock (elapsed, ETA, last event) goes right after the status word and the phase after
    # it: a long phase text cut at the screen's edge must never hide the ETA.
    head, _, rest = status_text(state).partition(" · ")
    status = f"{head}   {_clock(state, now)}".rstrip() + (f" · {rest}" if rest else "")
    if state.log_format:
        status += f"   (log format: {state.log_format})"
    rate = state.iterations_per_second
    tokens = state.trained_tokens
    return [
        f"status     {status}",
        progress_line(state) + (f"   {fmt_rate(rate)}" if rate else ""),
        f"train loss {_loss(state.train_loss)}{_at(state.train_points)}",
        f"val loss   {_loss(state.val_loss)}{_at(state.val_points)}",
        _best_with_checkpoint(state),
        f"lr {_num(state.learning_rate, '.2e')}   tokens/s {_num(state.tokens_per_second, ',.0f')}"
        f"   trained tokens {'?' if tokens is None else f'{tokens:,}'}"
        f"   peak mem {_num(state.peak_memory, '.3g', ' GB')}",
        f"checkpoints {len(state.checkpoints)}"
        + (f" (last {state.checkpoints[-1][1].rsplit('/', 1)[-1]})" if state.checkpoints else ""),
    ]


def monitor_lines(
    state: RunState,
    *,
    width: int = 100,
    height: int | None = None,
    now: float | None = None,
    chart: bool = True,
    other: tuple[RunState, str] | None = None,
) -> list[str]:
    """The full-screen terminal monitor (`lemlab watch`): the figures of `summary_lines` plus
    where each loss was measured, it/s, trained tokens, a ticking clock, and a loss chart that
    fills `height` rows in all (8 chart rows when no height is given). `now` = Unix time of the redraw."""
    lines = _figures(state, now)
    if not chart:
        return lines
    rows = 8
    if height is not None:  # what is left below the figures, a blank line and the chart's axes
        lo, hi = MONITOR_CHART_ROWS
        rows = min(max(height - len(lines) - 1 - 3, lo), hi)
    if other is not None:
        rows -= 1  # its legend line
    plot = render_loss_chart(
        state.train_points,
        state.val_points,
        width=max(width - 10, 20),
        height=rows,
        total_iters=state.total_iters,
        other=(other[0].train_points, other[0].val_points, other[1]) if other is not None else None,
    )
    return lines + [""] + plot


def event_line(ev: TrainingEvent) -> str:
    """One line per event, for logs and pipes where redrawing is impossible."""
    it = f"{ev.iteration:>6}" if ev.iteration is not None else "      "
    if ev.kind == "train":
        return f"{it}  train {_loss(ev.train_loss)}  tok/s {_num(ev.tokens_per_second, ',.0f')}"
    if ev.kind == "val":
        return f"{it}  val   {_loss(ev.val_loss)}  ({_num(ev.val_time, '.2f', 's')})"
    if ev.kind == "checkpoint":
        return f"{it}  save  {ev.path}"
    if ev.kind == "start":
        return f"        start ({ev.total_iters or '?'} iterations)"
    if ev.kind == "phase":
        return f"        phase {PHASE_TEXT.get(ev.phase or '', ev.phase)}"
    return f"{it}  {ev.kind}" + (f": {ev.message}" if ev.message else "")
