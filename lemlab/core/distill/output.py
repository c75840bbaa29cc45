"""The self-distillation JSONL (research format) and its resume state.

Output file (one line per KEPT sample, then a summary line; spec/formats.md):

    {"type": "training", "training": {"messages": [user, assistant]},
     "meta": {probe_id, category, sample_idx, lek_score, chars, time_s, model, threshold,
              temperature, ts, <lemlab keys>}}
    {"type": "summary", model, probes, samples_per_probe, total_generated, total_kept,
     keep_rate, avg_kept_score, threshold, temperature, duration_s, ts, <lemlab keys>}

Rejected samples never reach that file, so resuming needs a sidecar, `<output>.progress.jsonl`:
a header line with the run's settings, then one line per GENERATED sample (probe_id,
sample_idx, lek_score, kept, wall_s, finish_reason). A kept sample's training line is written
first and its progress line second; on resume a training line without a progress line counts
as done, and a progress line saying "kept" whose training line was lost (a cut last line) is
redone. Every sample's seed comes from (seed, probe id, sample idx), so a redone sample is the
same sample. A complete run removes the sidecar after writing its summary line.

A sample cut at max_tokens (finish_reason "length") is kept as the research tool did, its meta
saying `truncated: true`, unless `truncated = "drop"` asks to drop every such sample.

Both files are appended one fsynced write per line: a SIGKILL leaves at most one half-written
last line, which resume drops (rewriting the file atomically). Headless: no mlx.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from lemlab.core.ab import abfile
from lemlab.core.ab.abfile import utc_ts
from lemlab.core.atomic import write_text_atomic
from lemlab.core.engine_api import Sampler
from lemlab.core.errors import LemlabError
from lemlab.core.files.run_files import (
    JsonlRead,
    append_line,
    read_jsonl_strict,
    same_setting,
    start_fresh,
)
from lemlab.core.locks import FileLock, acquire

PROGRESS_SUFFIX = ".progress.jsonl"
DEFAULT_SAMPLES = 10
DEFAULT_THRESHOLD = 24.0  # Phase 1; Phase 0 ("baseline lock") used 15.0
DEFAULT_MAX_TOKENS = 4096
DEFAULT_TEMPERATURE = 0.8  # Phase 1; Phase 0 used 0.9
DEFAULT_TOP_P = 0.95
DEFAULT_SEED = 42
DEFAULT_SCORER = "v2-distill"
# A sample that hit max_tokens ends mid-sentence; trained on, the adapter learns the cut-off.
# "keep" (the default, as the research tool did): kept when it scores enough, its meta marked
# `truncated: true` and the run warns; "drop": never kept.
TRUNCATED_MODES = ("keep", "drop")
DEFAULT_TRUNCATED = "keep"
LIMIT_REASON = "length"  # GenStats.finish_reason of a reply cut at max_tokens

META_KEYS = (
    "probe_id",
    "category",
    "sample_idx",
    "lek_score",
    "chars",
    "time_s",
    "model",
    "threshold",
    "temperature",
    "ts",
)
SUMMARY_KEYS = (
    "type",
    "model",
    "probes",
    "samples_per_probe",
    "total_generated",
    "total_kept",
    "keep_rate",
    "avg_kept_score",
    "threshold",
    "temperature",
    "duration_s",
    "ts",
)


class ProbeLike(Protocol):
    # Read-only members, so frozen dataclasses (battery.probes.Probe) satisfy the protocol.
    @property
    def id(self) -> str: ...
    @property
    def category(self) -> str: ...
    @property
    def prompt(self) -> str: ...


def dumps_line(obj: Mapping[str, Any]) -> str:
    """One line with its newline, JSON written as the A/B files are (abfile.dumps_line)."""
    return abfile.dumps_line(obj) + "\n"


def progress_path(output: str | Path) -> Path:
    p = Path(output)
    return p.with_name(p.name + PROGRESS_SUFFIX)


# --- settings and seeds ----------------------------------------------------------------------


@dataclass(frozen=True)
class DistillSettings:
    """What makes a run's samples what they are. Compared on --resume: any difference refuses."""

    model: str
    adapter: str | None = None
    kernel: str | None = None  # kernel name (never part of the training example)
    kernel_sha256: str | None = None
    samples: int = DEFAULT_SAMPLES
    threshold: float = DEFAULT_THRESHOLD
    temperature: float = DEFAULT_TEMPERATURE
    top_p: float = DEFAULT_TOP_P
    max_tokens: int = DEFAULT_MAX_TOKENS
    seed: int = DEFAULT_SEED
    scorer: str = DEFAULT_SCORER
    truncated: str = DEFAULT_TRUNCATED  # what to do with samples that hit max_tokens

    def header(self) -> dict[str, Any]:
        return {"type": "header", **asdict(self)}

    def sampler(self, probe_id: str, sample_idx: int) -> Sampler:
        return Sampler(
            self.temperature,
            self.top_p,
            self.max_tokens,
            sample_seed(self.seed, probe_id, sample_idx),
        )

    def greedy_warning(self) -> str | None:
        if self.temperature <= 0 and self.samples > 1:
            return f"temperature 0 is greedy decoding: the {self.samples} samples of a probe will be identical"
        return None

    def check(self, as_flags: bool = True) -> None:
        """One-line errors for values the engine cannot take, naming `--max-tokens` (CLI) or
        `max_tokens` (a TOML key) as the caller asks."""

        def name(key: str) -> str:
            return "--" + key.replace("_", "-") if as_flags else key

        if self.samples < 1:
            raise LemlabError(f"{name('samples')} must be at least 1")
        if self.max_tokens < 1:
            raise LemlabError(f"{name('max_tokens')} must be at least 1")
        if self.temperature < 0:
            raise LemlabError(f"{name('temperature')} must be 0 (greedy) or more")
        if not 0 < self.top_p <= 1:
            raise LemlabError(f"{name('top_p')} must be in (0, 1]")
        if self.truncated not in TRUNCATED_MODES:
            raise LemlabError(f"{name('truncated')} must be one of {', '.join(TRUNCATED_MODES)}")

    def keeps(self, lek_score: float, finish_reason: str | None) -> bool:
        """The keep rule: the threshold, and (unless truncated = keep) a reply that ended itself."""
        if self.truncated == "drop" and finish_reason == LIMIT_REASON:
            return False
        return lek_score >= self.threshold


def sample_seed(seed: int, probe_id: str, sample_idx: int) -> int:
    """A stable 31-bit seed per sample (sha256, never Python's salted hash()), so a resumed run
    draws exactly the samples an uninterrupted one would."""
    digest = hashlib.sha256(f"{seed}|{probe_id}|{sample_idx}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


# --- lines -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    """One generated and scored response."""

    probe: ProbeLike
    sample_idx: int
    text: str
    lek_score: float  # rounded to 2 decimals
    kept: bool
    time_s: float  # generation seconds
    tokens: int = 0
    finish_reason: str | None = None

    @property
    def hit_limit(self) -> bool:
        return self.finish_reason == LIMIT_REASON


def training_line(
    sample: Sample, settings: DistillSettings, ts: str | None = None
) -> dict[str, Any]:
    """The research training line; lemlab's keys follow the research meta keys."""
    p = sample.probe
    meta: dict[str, Any] = {
        "probe_id": p.id,
        "category": p.category,
        "sample_idx": sample.sample_idx,
        "lek_score": sample.lek_score,
        "chars": len(sample.text),
        "time_s": round(sample.time_s, 1),
        "model": settings.model,
        "threshold": settings.threshold,
        "temperature": settings.temperature,
        "ts": ts or utc_ts(),
        "scorer": settings.scorer,
        "seed": sample_seed(settings.seed, p.id, sample.sample_idx),
        "tokens": sample.tokens,
        "finish_reason": sample.finish_reason,
    }
    if sample.hit_limit:
        meta["truncated"] = True  # kept with truncated = keep: it ends mid-sentence
    if settings.adapter:
        meta["adapter"] = settings.adapter
    if settings.kernel_sha256:
        meta["kernel"], meta["kernel_sha256"] = settings.kernel, settings.kernel_sha256
    messages = [
        {"role": "user", "content": p.prompt},
        {"role": "assistant", "content": sample.text},
    ]
    return {"type": "training", "training": {"messages": messages}, "meta": meta}


def progress_line(sample: Sample, wall_s: float) -> dict[str, Any]:
    return {
        "type": "sample",
        "probe_id": sample.probe.id,
        "sample_idx": sample.sample_idx,
        "lek_score": sample.lek_score,
        "kept": sample.kept,
        "wall_s": round(wall_s, 3),
        "finish_reason": sample.finish_reason,
    }


@dataclass(frozen=True)
class Record:
    """A generated sample as the progress file remembers it."""

    lek_score: float
    kept: bool
    wall_s: float = 0.0
    finish_reason: str | None = None


def summary_line(
    settings: DistillSettings,
    n_probes: int,
    records: Mapping[tuple[str, int], Record],
    duration_s: float,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    kept = [r.lek_score for r in records.values() if r.kept]
    generated = len(records)
    out: dict[str, Any] = {
        "type": "summary",
        "model": settings.model,
        "probes": n_probes,
        "samples_per_probe": settings.samples,
        "total_generated": generated,
        "total_kept": len(kept),
        "keep_rate": round(100.0 * len(kept) / generated, 1) if generated else 0.0,
        "avg_kept_score": round(sum(kept) / len(kept), 2) if kept else 0.0,
        "threshold": settings.threshold,
        "temperature": settings.temperature,
        "duration_s": round(duration_s, 1),
        "ts": utc_ts(),
        "scorer": settings.scorer,
        "seed": settings.seed,
        "top_p": settings.top_p,
        "max_tokens": settings.max_tokens,
        "truncated": settings.truncated,
        "hit_token_limit": sum(1 for r in records.values() if r.finish_reason == LIMIT_REASON),
    }
    if settings.adapter:
        out["adapter"] = settings.adapter
    if settings.kernel_sha256:
        out["kernel"], out["kernel_sha256"] = settings.kernel, settings.kernel_sha256
    out.update(extra or {})
    return out


# --- reading back (resume) -------------------------------------------------------------------


@dataclass
class DistillState:
    """Work already done, as an opened output file holds it."""

    records: dict[tuple[str, int], Record] = field(default_factory=dict)  # (probe id, idx)
    kept_lines: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    already_complete: bool = False
    summary: dict[str, Any] | None = None
    # The output's exclusive lock, held while this object lives (the run) or until release().
    lock: FileLock | None = field(default=None, repr=False, compare=False)

    @property
    def prior_seconds(self) -> float:
        return sum(r.wall_s for r in self.records.values())

    @property
    def kept(self) -> int:
        return sum(1 for r in self.records.values() if r.kept)


def open_distill_output(
    output: str | Path, settings: DistillSettings, probes: Sequence[ProbeLike], *, resume: bool
) -> DistillState:
    """A fresh output (refusing to overwrite one without --resume) or the state of a resumed one.
    The output is locked first (LockHeld names the run that has it open)."""
    out, prog = Path(output), progress_path(output)
    lock = acquire(out)
    try:
        unstarted = _unstarted(out, prog)
        if not resume or not out.exists() or unstarted:
            notes = start_fresh(out, resume, reuse_empty=unstarted)
            write_text_atomic(prog, dumps_line(settings.header()))  # replaces a stale sidecar
            state = DistillState(notes=notes)
        else:
            state = _resume(out, prog, settings, probes)
    except BaseException:
        lock.release()
        raise
    state.lock = lock
    return state


def _unstarted(out: Path, prog: Path) -> bool:
    """An empty output whose progress file is missing or holds its header only: a run that
    stopped before its first sample. Nothing to keep, so resume starts it afresh."""
    try:
        if not out.is_file() or out.stat().st_size:
            return False
        return not prog.exists() or prog.read_bytes().count(b"\n") <= 1
    except OSError:
        return False


def drop_unstarted(output: str | Path) -> None:
    """After a failed start (model load, server): remove an output with no sample yet and its
    header-only progress file, so the same command can simply run again."""
    out, prog = Path(output), progress_path(output)
    if out.exists() and _unstarted(out, prog):
        with contextlib.suppress(OSError):
            out.unlink()
            prog.unlink(missing_ok=True)


def _resume(
    out: Path, prog: Path, settings: DistillSettings, probes: Sequence[ProbeLike]
) -> DistillState:
    if not prog.exists():
        done = _complete_without_progress(out, settings, probes)
        if done is not None:
            return done
        raise LemlabError(
            f"{out}: its progress file {prog.name} is missing: cannot resume "
            "(rejected samples are only recorded there)"
        )
    state = DistillState()
    main, side = read_jsonl_strict(out), read_jsonl_strict(prog)
    _check_header(prog, side, settings)
    ids = {p.id for p in probes}
    kept_by_key = _kept_lines(out, main, ids)
    seen: dict[tuple[str, int], int] = {}
    stale: set[int] = set()  # progress lines of samples to redo: dropped from the file
    for n, rec in side.records[1:]:
        key = _key(prog, n, rec, ids)
        _refuse_duplicate(prog, n, key, seen)
        if rec.get("kept") and key not in kept_by_key:
            stale.add(n)  # its training line was cut off: redo it (same seed, same sample)
            continue
        state.records[key] = Record(
            float(rec["lek_score"]),
            bool(rec["kept"]),
            float(rec.get("wall_s", 0.0)),
            rec.get("finish_reason"),
        )
    # A redone sample appends its own progress line: drop the old one, so (probe, sample)
    # stays unique in the file.
    side.records = [(n, r) for n, r in side.records if n not in stale]
    for key, line in kept_by_key.items():  # a training line written just before a kill
        meta = line["meta"]
        state.records.setdefault(
            key, Record(float(meta["lek_score"]), True, 0.0, meta.get("finish_reason"))
        )
    state.kept_lines = list(kept_by_key.values())
    state.summary = next((r for _, r in main.records if r.get("type") == "summary"), None)
    total = len(probes) * settings.samples
    finished = sum(1 for p in probes for i in range(settings.samples) if (p.id, i) in state.records)
    state.already_complete = finished == total and state.summary is not None and not main.torn_tail
    _rewrite_if_needed(out, prog, main, side, state, bool(stale))
    return state


_BEFORE_THE_KEY = {"truncated": "keep"}  # what runs written before a setting existed did


def _complete_without_progress(
    out: Path, settings: DistillSettings, probes: Sequence[ProbeLike]
) -> DistillState | None:
    """A finished run (its progress file removed at the end): complete when the summary line
    matches these settings; None when the output is not a finished run."""
    main = read_jsonl_strict(out)
    summary = next((r for _, r in main.records if r.get("type") == "summary"), None)
    if summary is None or main.torn_tail:
        return None
    _kept_lines(out, main, {p.id for p in probes})  # a sample twice, two summaries: corrupt
    had = {
        "samples": summary.get("samples_per_probe"),
        "probes": summary.get("probes"),
        **{
            k: summary.get(k)
            for k in (
                "model",
                "threshold",
                "temperature",
                "top_p",
                "max_tokens",
                "seed",
                "scorer",
                "truncated",
            )
        },
    }
    want = {
        "samples": settings.samples,
        "probes": len(probes),
        "model": settings.model,
        "threshold": settings.threshold,
        "temperature": settings.temperature,
        "top_p": settings.top_p,
        "max_tokens": settings.max_tokens,
        "seed": settings.seed,
        "scorer": settings.scorer,
        "truncated": settings.truncated,
    }
    for key, value in want.items():
        if had[key] is not None and not same_setting(key, had[key], value):
            raise LemlabError(
                f"{out}: settings differ: {key} was {had[key]!r}, now {value!r} "
                "(a finished run): write to a new file"
            )
    return DistillState(already_complete=True, summary=summary)


def _check_header(prog: Path, side: JsonlRead, settings: DistillSettings) -> None:
    if not side.records or side.records[0][1].get("type") != "header":
        raise LemlabError(f"{prog}: no settings header: cannot resume")
    had = side.records[0][1]
    for key, want in settings.header().items():
        if not same_setting(key, had.get(key, _BEFORE_THE_KEY.get(key)), want):
            raise LemlabError(
                f"{prog}: settings differ: {key} was {had.get(key)!r}, now {want!r}: cannot resume"
            )


def _kept_lines(out: Path, main: JsonlRead, ids: set[str]) -> dict[tuple[str, int], dict[str, Any]]:
    kept: dict[tuple[str, int], dict[str, Any]] = {}
    seen: dict[tuple[str, int], int] = {}
    summaries = 0
    for n, rec in main.records:
        if rec.get("type") == "summary":
            summaries += 1
            if summaries > 1:
                raise LemlabError(
                    f"{out}:{n}: a second summary line (two runs wrote this file "
                    "at once?): cannot resume"
                )
            continue
        if rec.get("type") != "training" or not isinstance(rec.get("meta"), dict):
            raise LemlabError(f"{out}:{n}: not a self-distill training line: cannot resume")
        key = _key(out, n, rec["meta"], ids)
        _refuse_duplicate(out, n, key, seen)
        kept[key] = rec
    return kept


def _refuse_duplicate(
    path: Path, n: int, key: tuple[str, int], seen: dict[tuple[str, int], int]
) -> None:
    """Each (probe, sample) is written once; a second line means two writers interleaved."""
    if key in seen:
        raise LemlabError(
            f"{path}:{n}: probe {key[0]!r} sample {key[1]} is also on line {seen[key]} (two runs "
            "wrote this file at once?): cannot resume"
        )
    seen[key] = n


def _key(path: Path, n: int, rec: Mapping[str, Any], ids: set[str]) -> tuple[str, int]:
    pid, idx = rec.get("probe_id"), rec.get("sample_idx")
    if (
        not isinstance(pid, str)
        or not isinstance(idx, int)
        or not isinstance(rec.get("lek_score"), int | float)
    ):
        raise LemlabError(f"{path}:{n}: missing probe_id / sample_idx / lek_score: cannot resume")
    if pid not in ids:
        raise LemlabError(
            f"{path}:{n}: probe {pid!r} is not in this battery: cannot resume with another battery"
        )
    return pid, idx


def _rewrite_if_needed(
    out: Path,
    prog: Path,
    main: JsonlRead,
    side: JsonlRead,
    state: DistillState,
    side_changed: bool = False,
) -> None:
    if state.already_complete:
        return
    if main.torn_tail or state.summary is not None:
        if main.torn_tail:
            state.notes.append(f"{out}: dropped a half-written last line (that sample is redone)")
        write_text_atomic(out, "".join(dumps_line(line) for line in state.kept_lines))
        state.summary = None
    if side.torn_tail or side_changed:
        if side.torn_tail:
            state.notes.append(f"{prog}: dropped a half-written last line")
        write_text_atomic(prog, "".join(dumps_line(r) for _, r in side.records))


class DistillRecorder:
    """Writes scored samples: the training line (kept only) first, then the progress line."""

    def __init__(self, output: str | Path, settings: DistillSettings) -> None:
        self.output = Path(output)
        self.progress = progress_path(output)
        self.settings = settings

    def sample_done(
        self, sample: Sample, wall_s: float, endpoint: str | None = None
    ) -> dict[str, Any] | None:
        """`endpoint` (runs over servers) names the server that made a kept sample (meta)."""
        line = training_line(sample, self.settings) if sample.kept else None
        if line is not None:
            if endpoint:
                line["meta"]["endpoint"] = endpoint
            append_line(self.output, dumps_line(line))
        append_line(self.progress, dumps_line(progress_line(sample, wall_s)))
        return line

    def finish(
        self,
        n_probes: int,
        records: Mapping[tuple[str, int], Record],
        duration_s: float,
        extra: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Append the summary line, then remove the progress file: the run is complete, and
        the summary holds its figures (a rerun with --resume sees it is finished)."""
        summary = summary_line(self.settings, n_probes, records, duration_s, extra)
        append_line(self.output, dumps_line(summary))
        self.progress.unlink(missing_ok=True)
        return summary
