"""Training progress as events: the events JSONL lemlab's trainer writes, and both mlx-lm stdout
formats, parsed into one `TrainingEvent` shape and folded into a `RunState`.

Iteration numbering: every event uses mlx-lm's CLI numbering (the number its stdout prints).
mlx-lm 0.32's validation *callback* reports CLI iteration - 1; lemlab's trainer adds the 1 back
and keeps the callback's value as `weights_after`. A validation at CLI iteration k measures the
weights before update k (after k - 1 updates); checkpoint k holds the weights after update k.

Headless: no textual / mlx imports (the TUI training pane and `lemlab watch` both use this).
"""

from __future__ import annotations

import gc
import json
import math
import re
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

from lemlab.core.training.file_follower import LineFollower

EVENT_KINDS = ("start", "phase", "train", "val", "checkpoint", "done", "error", "stopped")
TERMINAL_KINDS = frozenset({"done", "error", "stopped"})

_FLOAT_FIELDS = (
    "train_loss",
    "learning_rate",
    "iterations_per_second",
    "tokens_per_second",
    "peak_memory",
    "val_loss",
    "val_time",
)


@dataclass(slots=True)
class TrainingEvent:
    """One progress event. Fields not carried by a given source stay None.

    Not frozen: a frozen dataclass's __init__ costs a setattr call per field, which dominated
    parsing a 100k-line log. Treat events as values all the same."""

    kind: str
    iteration: int | None = None
    ts: float | None = None  # Unix seconds (events files only; stdout logs have no times)
    train_loss: float | None = None
    learning_rate: float | None = None
    iterations_per_second: float | None = None
    tokens_per_second: float | None = None
    trained_tokens: int | None = None
    peak_memory: float | None = None  # GB
    val_loss: float | None = None
    val_time: float | None = None
    path: str | None = None  # checkpoint / adapter file
    message: str | None = None  # error / stop reason
    total_iters: int | None = None  # start events
    pid: int | None = None  # start events: the trainer process
    host: str | None = None  # start events: the machine it runs on (a pid means nothing elsewhere)
    phase: str | None = None  # phase events: loading, compiling, evaluating, training, saving
    source: str = "events"  # "events", "log-old" or "log-new"


# ---------------------------------------------------------------- events JSONL


def event_json(event: str, **fields: Any) -> str:
    """One events-file line (no newline): the kind, a UTC ISO timestamp, then the fields."""
    return json.dumps({"event": event, "ts": datetime.now(UTC).isoformat(), **fields})


def parse_timestamp(value: Any) -> float | None:
    """ISO-8601 string or Unix number -> Unix seconds; None when absent or unreadable."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value).timestamp()
        except ValueError:
            return None
    return None


_KINDS = frozenset(EVENT_KINDS)
_FLOATS = frozenset(_FLOAT_FIELDS)
_INTS = frozenset(("iteration", "trained_tokens", "total_iters", "pid"))
_STRS = frozenset(("path", "message", "host", "phase"))


def event_from_dict(obj: dict[str, Any]) -> TrainingEvent | None:
    """Build an event from one decoded events-file object; None for unknown kinds."""
    kind = obj.get("event")
    if kind not in _KINDS:
        return None
    values: dict[str, Any] = {}
    # Walk the object's own keys (a handful) rather than every field name: the hot loop of
    # `watch --once` on a 100k-line file. type() rather than isinstance: bool is an int
    # subclass and must not count as a number (and type() is faster).
    for name, v in obj.items():
        t = type(v)
        if t is float:
            if name in _FLOATS:
                values[name] = v
            elif name in _INTS:
                values[name] = int(v)
        elif t is int:
            if name in _INTS:
                values[name] = v
            elif name in _FLOATS:
                values[name] = float(v)
        elif t is str and name in _STRS:
            values[name] = v
    ts = obj.get("ts")
    return TrainingEvent(kind, ts=_iso_ts(ts) if type(ts) is str else parse_timestamp(ts), **values)


def _iso_ts(value: str) -> float | None:
    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError:
        return None


def parse_event_line(line: str) -> TrainingEvent | None:
    """One events-file line -> event; None for blank, malformed or unknown lines (skipped)."""
    line = line.strip()
    if not line.startswith("{"):
        return None
    try:
        obj = json.loads(line)
    except (ValueError, RecursionError):  # deep nesting is malformed too
        return None
    return event_from_dict(obj) if isinstance(obj, dict) else None


def event_to_dict(event: TrainingEvent) -> dict[str, Any]:
    """The JSON object for an event (None fields omitted), `event` key first."""
    out: dict[str, Any] = {"event": event.kind}
    for name in TrainingEvent.__dataclass_fields__:
        if name in ("kind", "source"):
            continue
        value = getattr(event, name)
        if value is not None:
            out[name] = value
    return out


# ---------------------------------------------------------------- mlx-lm stdout

ANSI_RE = re.compile(r"\x1b(?:\[[0-9;?]*[ -/]*[@-~]|\][^\x07]*\x07|[()][A-Za-z0-9])")
# nan / inf too: mlx-lm prints a diverged loss as `nan`, and dropping the line would hide it.
_NUM = r"[-+]?(?:\d[\d,]*\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|[-+]?(?:nan|inf)"

_OLD_TRAIN = re.compile(
    rf"Iter (\d+): Train loss ({_NUM}), Learning Rate ({_NUM}), It/sec ({_NUM}), "
    rf"Tokens/sec ({_NUM}), Trained Tokens ({_NUM}), Peak mem ({_NUM}) GB"
)
_OLD_VAL = re.compile(rf"Iter (\d+): Val loss ({_NUM}), Val took ({_NUM})s")
_OLD_SAVE = re.compile(
    r"Iter (\d+): Saved adapter weights to .* and (.*?(\d{7})_adapters\.safetensors)\.?$"
)
_OLD_FINAL = re.compile(r"^Saved final weights to (.*?)\.?$")
_OLD_START = re.compile(r"Starting training\.\.\., iters: (\d+)")

_NEW_TRAIN = re.compile(rf"^\s*(\d+)\s+({_NUM})\s+[▼▲]\s+({_NUM})\s+({_NUM})k\s*$")
_NEW_VAL = re.compile(rf"^\s*(\d+)\s+val\s+({_NUM})\s+({_NUM})s\s*$")
_NEW_SAVE = re.compile(r"^\s*save\s+(\S*?(\d{7})_adapters\.safetensors)\s*$")
# _NEW_TRAIN | _NEW_VAL over a whole text: whitespace but newlines, so a match is one line.
_WS = r"[^\S\n]"
_NEW_ROW = re.compile(
    rf"^{_WS}*(\d+){_WS}+(?:({_NUM}){_WS}+[▼▲]{_WS}+({_NUM}){_WS}+({_NUM})k"
    rf"|val{_WS}+({_NUM}){_WS}+({_NUM})s){_WS}*$",
    re.MULTILINE,
)
_NEW_HEADER_ITERS = re.compile(r"batch · iters\s+([\d,]+)\s+·\s+([\d,]+)")


_CSI_RE = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")  # ANSI_RE's first branch
_SAMPLE_CHARS = 1 << 16


def strip_ansi(text: str) -> str:
    """ANSI_RE.sub("", text), faster on a long log whose codes are a few colour sequences.

    Those sequences are read from the text's head; str.replace removes them when every ESC in
    the text starts one of them. Then the result is the same as the regex's: a CSI sequence
    holds no other ESC and reads the same from its ESC whatever follows, so the occurrences
    are exactly the regex's matches and removing one cannot form another."""
    if len(text) > _SAMPLE_CHARS:
        seqs = set(_CSI_RE.findall(text, 0, _SAMPLE_CHARS))
        if seqs and text.count("\x1b") == sum(text.count(seq) for seq in seqs):
            for seq in seqs:
                text = text.replace(seq, "")
            return text
    return ANSI_RE.sub("", text)


def _f(text: str) -> float:
    return float(text.replace(",", "") if "," in text else text)


def parse_log_line(line: str) -> list[TrainingEvent]:
    """Events in one physical line of an mlx-lm stdout log (old or 0.32 table format).

    ANSI codes are stripped and carriage-return segments (progress bars redrawn in place)
    are read one by one, so logs captured from a terminal parse like piped ones.
    """
    if "\x1b" in line:
        line = strip_ansi(line)
    out: list[TrainingEvent] = []
    for segment in line.split("\r"):
        event = _parse_log_segment(segment.rstrip("\n"))
        if event is not None:
            out.append(event)
    return out


def _parse_log_segment(seg: str) -> TrainingEvent | None:
    if "Iter " in seg:
        return _parse_old_iter(seg)
    m = _NEW_TRAIN.match(seg)
    if m:
        return TrainingEvent(
            "train",
            int(m[1]),
            train_loss=_f(m[2]),
            tokens_per_second=_f(m[3]),
            trained_tokens=round(_f(m[4]) * 1000),  # shown rounded to 100 tokens
            source="log-new",
        )
    m = _NEW_VAL.match(seg)
    if m:
        return TrainingEvent(
            "val", int(m[1]), val_loss=_f(m[2]), val_time=_f(m[3]), source="log-new"
        )
    m = _NEW_SAVE.match(seg)
    if m:
        return TrainingEvent("checkpoint", int(m[2]), path=m[1], source="log-new")
    return _parse_log_markers(seg)


def _parse_old_iter(seg: str) -> TrainingEvent | None:
    m = _OLD_TRAIN.search(seg)
    if m:
        return TrainingEvent(
            "train",
            int(m[1]),
            train_loss=_f(m[2]),
            learning_rate=_f(m[3]),
            iterations_per_second=_f(m[4]),
            tokens_per_second=_f(m[5]),
            trained_tokens=int(_f(m[6])),
            peak_memory=_f(m[7]),
            source="log-old",
        )
    m = _OLD_VAL.search(seg)
    if m:
        return TrainingEvent(
            "val", int(m[1]), val_loss=_f(m[2]), val_time=_f(m[3]), source="log-old"
        )
    m = _OLD_SAVE.search(seg)
    if m:
        return TrainingEvent("checkpoint", int(m[3]), path=m[2], source="log-old")
    return None


def _parse_log_markers(seg: str) -> TrainingEvent | None:
    m = _NEW_HEADER_ITERS.search(seg)
    if m:
        return TrainingEvent("start", total_iters=int(m[2].replace(",", "")), source="log-new")
    m = _OLD_START.search(seg)
    if m:
        return TrainingEvent("start", total_iters=int(m[1]), source="log-old")
    m = _OLD_FINAL.match(seg.strip())
    if m:
        return TrainingEvent("done", path=m[1], source="log-old")
    return None


def looks_like_events(first_line: str) -> bool:
    """Autodetect: an events file's lines are JSON objects; a stdout log's are not."""
    return first_line.lstrip().startswith("{")


def parse_lines(lines: list[str], events_format: bool) -> list[TrainingEvent]:
    if events_format:
        return _parse_event_lines(lines)
    # One ANSI pass over the whole batch is much cheaper than one per line (a 100k-line log).
    text = "\n".join(lines)
    if "\x1b" in text:
        text = strip_ansi(text)
    return _parse_log_text(text.replace("\r", "\n"))


def _parse_log_text(text: str) -> list[TrainingEvent]:
    """Table-format train / val rows (nearly every line of a long log) are found by one
    MULTILINE regex over the whole text; the lines between them go through the per-segment
    parser. Such a row can hold no "Iter ", so both routes give the same events."""
    # split() hands back [gap, 6 groups, gap, 6 groups, ..., gap] without a match object per row.
    parts = _NEW_ROW.split(text)
    out: list[TrainingEvent] = []
    for i in range(0, len(parts) - 1, 7):
        gap, it, loss, tps, tokens, vloss, vtime = parts[i : i + 7]
        if gap and gap != "\n":  # more than the newline ending the previous row
            _parse_log_gap(gap, out)
        # float(x.replace(",", "")) is _f inlined: three calls per row add up over 100k rows.
        if loss is not None:
            event = TrainingEvent(
                "train",
                int(it),
                train_loss=float(loss.replace(",", "")),
                tokens_per_second=float(tps.replace(",", "")),
                trained_tokens=round(float(tokens.replace(",", "")) * 1000),
                source="log-new",
            )
        else:
            event = TrainingEvent(
                "val",
                int(it),
                val_loss=float(vloss.replace(",", "")),
                val_time=float(vtime.replace(",", "")),
                source="log-new",
            )
        out.append(event)
    if parts[-1] and parts[-1] != "\n":
        _parse_log_gap(parts[-1], out)
    return out


def _parse_log_gap(text: str, out: list[TrainingEvent]) -> None:
    for segment in text.split("\n"):
        if segment:
            event = _parse_log_segment(segment)
            if event is not None:
                out.append(event)


def _parse_event_lines(lines: list[str]) -> list[TrainingEvent]:
    """Decode a batch of events lines with one json.loads; fall back line by line when any
    line is malformed (those are skipped, as parse_event_line does)."""
    kept = [ln for ln in (line.strip() for line in lines) if ln.startswith("{")]
    try:
        objs = json.loads("[" + ",".join(kept) + "]")
    except (ValueError, RecursionError):
        objs = None
    if objs is None or len(objs) != len(kept):
        # A line like `{"a": 1}, {"b": 2}` would decode as two objects; per-line is exact.
        return [ev for ev in map(parse_event_line, kept) if ev is not None]
    out: list[TrainingEvent] = []
    for obj in objs:
        if type(obj) is dict:
            ev = event_from_dict(obj)
            if ev is not None:
                out.append(ev)
    return out


# ---------------------------------------------------------------- run state


def perplexity(loss: float | None) -> float | None:
    """exp(loss); None when unknown or too large to be meaningful."""
    if loss is None or loss > 700:
        return None
    return math.exp(loss)


@dataclass
class RunState:
    """Everything a monitor shows, folded from events in order. `apply` is O(1) per event."""

    total_iters: int | None = None
    iteration: int = 0
    status: str = "waiting"  # waiting, running, done, error, stopped, interrupted
    phase: str | None = None  # the trainer's last phase event (None: no phase events, or ended)
    message: str | None = None
    trainer: tuple[int, str] | None = None  # (pid, host) from the start event
    log_format: str | None = None
    train_points: list[tuple[int, float]] = field(default_factory=list)
    val_points: list[tuple[int, float]] = field(default_factory=list)
    checkpoints: list[tuple[int, str]] = field(default_factory=list)
    last_train: TrainingEvent | None = None
    best_val: tuple[int, float] | None = None  # (iteration, loss)
    first_seen: float | None = None
    last_seen: float | None = None
    _rate_anchor: tuple[int, float] | None = None  # (iteration, time) of the first timed report
    _rate_last: tuple[int, float] | None = None

    def apply(self, ev: TrainingEvent, now: float | None = None) -> None:
        """Fold one event in. `now` stands in for events without a timestamp (stdout logs)."""
        t = ev.ts if ev.ts is not None else now
        if t is not None:
            self.first_seen = t if self.first_seen is None else self.first_seen
            self.last_seen = t
        if ev.source != "events":
            self.log_format = ev.source
        if ev.total_iters is not None:
            self.total_iters = ev.total_iters
        if ev.iteration is not None and ev.kind in _PROGRESS_KINDS:
            self.iteration = max(self.iteration, ev.iteration)
        handler = _HANDLERS.get(ev.kind)  # a dict, not getattr(f"_on_{kind}"): the hot loop
        if handler is not None:
            handler(self, ev, t)
        if self.status == "waiting" and ev.kind not in TERMINAL_KINDS:
            self.status = "running"

    def _on_start(self, ev: TrainingEvent, t: float | None) -> None:
        self.status = "running"
        self.trainer = (ev.pid, ev.host) if ev.pid is not None and ev.host else None

    def interrupt(self, message: str) -> None:
        """The trainer is gone and wrote no final event (killed with SIGKILL, machine crash)."""
        self.status, self.message, self.phase = "interrupted", message, None

    def _on_phase(self, ev: TrainingEvent, t: float | None) -> None:
        self.phase = ev.phase

    def _on_train(self, ev: TrainingEvent, t: float | None) -> None:
        if ev.iteration is None or ev.train_loss is None:
            return
        self.train_points.append((ev.iteration, ev.train_loss))
        self.last_train = ev
        if t is not None:
            if self._rate_anchor is None:
                self._rate_anchor = (ev.iteration, t)
            self._rate_last = (ev.iteration, t)
        # A table-format log has no end marker: its last report is at the final iteration.
        if ev.source == "log-new" and self.total_iters and ev.iteration >= self.total_iters:
            self.status = "done"

    def _on_val(self, ev: TrainingEvent, t: float | None) -> None:
        if ev.iteration is None or ev.val_loss is None:
            return
        self.val_points.append((ev.iteration, ev.val_loss))
        if self.best_val is None or ev.val_loss < self.best_val[1]:
            self.best_val = (ev.iteration, ev.val_loss)

    def _on_checkpoint(self, ev: TrainingEvent, t: float | None) -> None:
        if ev.iteration is not None and ev.path:
            self.checkpoints.append((ev.iteration, ev.path))

    def _on_done(self, ev: TrainingEvent, t: float | None) -> None:
        self.status, self.phase = "done", None

    def _on_error(self, ev: TrainingEvent, t: float | None) -> None:
        self.status, self.phase = "error", None
        self.message = ev.message

    def _on_stopped(self, ev: TrainingEvent, t: float | None) -> None:
        self.status, self.phase = "stopped", None
        if ev.iteration is not None:  # the updates in the weights it saved
            self.iteration = max(self.iteration, ev.iteration)
        self.message = ev.message

    # -------------------------------------------------------------- derived figures

    @property
    def finished(self) -> bool:
        return self.status in TERMINAL_KINDS or self.status == "interrupted"

    @property
    def train_loss(self) -> float | None:
        return self.train_points[-1][1] if self.train_points else None

    @property
    def val_loss(self) -> float | None:
        return self.val_points[-1][1] if self.val_points else None

    @property
    def learning_rate(self) -> float | None:
        return self.last_train.learning_rate if self.last_train else None

    @property
    def tokens_per_second(self) -> float | None:
        return self.last_train.tokens_per_second if self.last_train else None

    @property
    def peak_memory(self) -> float | None:
        return self.last_train.peak_memory if self.last_train else None

    @property
    def trained_tokens(self) -> int | None:
        return self.last_train.trained_tokens if self.last_train else None

    @property
    def iterations_per_second(self) -> float | None:
        """Wall-clock rate between timed reports (includes validation and saves), else the
        trainer's own it/s (training steps only), else None."""
        if self._rate_anchor and self._rate_last:
            (i0, t0), (i1, t1) = self._rate_anchor, self._rate_last
            if i1 > i0 and t1 > t0:
                return (i1 - i0) / (t1 - t0)
        return self.last_train.iterations_per_second if self.last_train else None

    @property
    def eta_seconds(self) -> float | None:
        if self.finished or not self.total_iters:
            return None
        rate = self.iterations_per_second
        if not rate:
            return None
        return max(self.total_iters - self.iteration, 0) / rate

    @property
    def best_checkpoint(self) -> str | None:
        """The checkpoint nearest the best validation (ties go to the earlier one)."""
        if self.best_val is None or not self.checkpoints:
            return None
        it = self.best_val[0]
        return min(self.checkpoints, key=lambda c: (abs(c[0] - it), c[0]))[1]


_PROGRESS_KINDS = frozenset({"train", "val", "checkpoint"})
_HANDLERS = {kind: getattr(RunState, f"_on_{kind}") for kind in EVENT_KINDS}


def fold(events: list[TrainingEvent], state: RunState | None = None) -> RunState:
    state = state if state is not None else RunState()
    for ev in events:
        state.apply(ev)
    return state


# ---------------------------------------------------------------- following a run

EVENTS_FILE = "events.jsonl"
LOG_FILE = "train.log"
CONFIG_FILE = "lemlab-train.toml"


@dataclass(frozen=True)
class RunSource:
    """What `watch` (or the TUI) follows: a file, and the adapter folder it belongs to."""

    file: Path
    folder: Path


def resolve_run_source(path: str | Path) -> RunSource:
    """An events.jsonl, an mlx-lm stdout log, or an adapter folder (its events.jsonl, else its
    train.log). Raises FileNotFoundError with a one-line message when there is nothing to read."""
    p = Path(path).expanduser()
    if p.is_dir():
        for name in (EVENTS_FILE, LOG_FILE):
            if (p / name).is_file():
                return RunSource(p / name, p)
        raise FileNotFoundError(f"{p} holds neither {EVENTS_FILE} nor {LOG_FILE}")
    if p.is_file():
        return RunSource(p, p.parent)
    raise FileNotFoundError(f"no such file or folder: {p}")


def find_total_iters(folder: Path) -> int | None:
    """Planned iterations from lemlab-train.toml, else mlx-lm's adapter_config.json."""
    import tomllib

    try:
        with open(folder / CONFIG_FILE, "rb") as fh:
            value = tomllib.load(fh).get("train", {}).get("iters")
        if isinstance(value, int):
            return value
    except (OSError, ValueError, AttributeError, RecursionError):  # unreadable: not known
        pass
    try:
        value = json.loads((folder / "adapter_config.json").read_text()).get("iters")
        return value if isinstance(value, int) else None
    except (OSError, ValueError, AttributeError, RecursionError):
        return None


class RunWatcher:
    """Follow a run's file and keep its `RunState` current; `poll()` returns the new events.
    The format (events JSONL or stdout log) is detected from the first complete line."""

    def __init__(
        self,
        source: RunSource,
        clock: Any = None,
        *,
        liveness: TrainerCheck | None = None,
        follow_name: bool = True,
    ) -> None:
        self.source = source
        # follow_name=False: stay with the file the run writes when events.jsonl is rotated.
        self._follower = LineFollower(source.file, follow_name=follow_name)
        self._events_format: bool | None = None
        self._clock = clock  # callable giving "now" for untimed log events; None = no times
        # How to tell the trainer is gone, and for how long it may be before an unfinished run
        # counts as interrupted (the `lemlab train` that started it needs a moment to write the
        # final event); None: never. The engine owns the trainer, so it supplies the check.
        self._liveness = liveness
        self._gone_since: float | None = None
        self.state = self._fresh_state()

    def _fresh_state(self) -> RunState:
        return RunState(total_iters=find_total_iters(self.source.folder))

    @property
    def events_format(self) -> bool | None:
        return self._events_format

    def poll(self) -> list[TrainingEvent]:
        lines, reset = self._follower.poll()
        if reset:
            self.state = self._fresh_state()
            self._events_format = None
        if not lines:
            return []
        if self._events_format is None:
            first = next((ln for ln in lines if ln.strip()), None)
            if first is None:
                return []
            self._events_format = looks_like_events(first)
        now = self._clock() if self._clock is not None else None
        with _gc_paused(len(lines) >= _BULK_LINES):
            events = parse_lines(lines, self._events_format)
            for ev in events:
                self.state.apply(ev, now)
        return events

    def check_trainer(self) -> bool:
        """With liveness on: mark a running run interrupted once its trainer has been gone for
        the grace period. True when that just happened."""
        state = self.state
        if self._liveness is None or state.finished or state.trainer is None:
            return False
        pid, host = state.trainer
        if not self._liveness.gone(pid, host):
            self._gone_since = None
            return False
        now = time.monotonic()
        self._gone_since = self._gone_since or now
        if now - self._gone_since < self._liveness.grace:
            return False
        state.interrupt(f"the trainer (pid {pid}) ended without a final event (killed?)")
        return True


@dataclass(frozen=True)
class TrainerCheck:
    """Liveness for a RunWatcher: `gone(pid, host)` says the trainer has ended; `grace` is how
    many seconds it may be gone before the run counts as interrupted."""

    grace: float
    gone: Callable[[int, str], bool]


def process_gone(pid: int, host: str, marker: str) -> bool:
    """True only when it can be told: the run is on this machine and process `pid` no longer
    exists, is a zombie, or now runs another program (no argument holds `marker`: pids are
    reused). psutil reads the command line on Linux and macOS alike (a /proc reader would be
    blind on a Mac)."""
    if host != socket.gethostname():
        return False
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return True
        cmdline = proc.cmdline()
    except psutil.NoSuchProcess:  # ZombieProcess is one too: gone but for its exit status
        return True
    except (psutil.AccessDenied, OSError):
        return False  # alive, but another user's: not ours to judge
    return not any(marker in arg for arg in cmdline)


def process_args(pid: int) -> list[str] | None:
    """The command line of process `pid`; None when it is gone or cannot be read."""
    try:
        args: list[str] = psutil.Process(pid).cmdline()
    except (psutil.Error, OSError):
        return None
    return args


_BULK_LINES = 10_000


@contextmanager
def _gc_paused(pause: bool) -> Iterator[None]:
    """Hold off the cyclic garbage collector while a big batch is parsed: every event, tuple
    and decoded dict is a tracked allocation, so a 100k-line read sets off hundreds of
    collections (~15% of `watch --once`) that can free nothing (none of them forms a cycle)."""
    if not pause or not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def load_run(path: str | Path) -> RunState:
    """Read a whole run once (for `watch --once`, reports and the score-vs-checkpoint view)."""
    watcher = RunWatcher(resolve_run_source(path))
    watcher.poll()
    return watcher.state


def run_finished(adapter_dir: Path) -> bool:
    """The adapter folder's lemlab run ended with a done event (a rerun skips its training)."""
    return (adapter_dir / EVENTS_FILE).is_file() and load_run(adapter_dir).status == "done"
