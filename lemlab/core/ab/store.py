"""Where an A/B run's results go: the research A/B JSONL (one probe line, flushed and fsynced, as
each probe completes; a summary line at the end), a sidecar `<output>.partial.jsonl` holding
per-variant partial results of runs with adapters, and resuming from both.

Probe lines of a run spread over several servers arrive in completion order, not battery order:
resume keys them by probe id and the summary is built in battery order, so nothing depends on
the order of lines.

Crash safety. Probe lines are appended with one write each and fsynced, so a SIGKILL leaves every
earlier line intact and at most one half-written last line; resume detects that line, rewrites
the file without it (atomically), and redoes the probe. The sidecar is append-only the same way;
it is deleted once the summary line is on disk.

One writer: opening locks the output (core/locks.py) for as long as the OpenedRun lives, so a
second run on it is refused with the holder's name; a probe written twice (in the output or
the sidecar) is corruption that resume refuses. Headless: no mlx.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lemlab.core.ab import abfile
from lemlab.core.ab.conditions import ConditionPlan
from lemlab.core.ab.runner import ConditionMap, ProbeLike, ResumeState
from lemlab.core.atomic import write_text_atomic
from lemlab.core.errors import LemlabError
from lemlab.core.files.run_files import append_line, read_jsonl_strict, same_setting, start_fresh
from lemlab.core.locks import FileLock, acquire

SIDECAR_SUFFIX = ".partial.jsonl"


@dataclass(frozen=True)
class RunSettings:
    """What makes a run's outputs what they are. Compared on --resume: any difference refuses."""

    model: str
    scorer: str
    sampler: dict[str, Any]  # Sampler.as_dict(): temperature, top_p, max_tokens[, seed]
    conditions: dict[str, dict[str, str | None]]  # name -> {adapter, kernel_sha256}, in order

    @classmethod
    def for_plan(cls, plan: ConditionPlan, scorer: str, sampler: dict[str, Any]) -> RunSettings:
        return cls(plan.model, scorer, dict(sampler), plan.settings())

    def line_extras(self) -> dict[str, Any]:
        """lemlab's keys after the research keys of every probe line (what resume checks)."""
        return {"model": self.model, "scorer": self.scorer, "sampler": self.sampler}

    def header(self) -> dict[str, Any]:
        return {"type": "header", **self.line_extras(), "conditions": self.conditions}


def sidecar_path(output: str | Path) -> Path:
    p = Path(output)
    return p.with_name(p.name + SIDECAR_SUFFIX)


@dataclass
class OpenedRun:
    """The state an output file was opened in (what the CLI reports before starting)."""

    state: ResumeState
    notes: list[str] = field(default_factory=list)
    already_complete: bool = False
    prior_seconds: float = 0.0  # generation time already spent in kept lines
    # The output's exclusive lock, held while this object lives (the run) or until release().
    lock: FileLock | None = field(default=None, repr=False, compare=False)


# --- opening ---------------------------------------------------------------------------------


def open_output(
    output: str | Path,
    settings: RunSettings,
    probes: Sequence[ProbeLike],
    *,
    resume: bool,
) -> OpenedRun:
    """A fresh file (refusing to overwrite one without --resume), or the kept work of a resumed
    one. Raises LemlabError (one line) on settings that differ or a corrupt file, or LockHeld
    when another run has the output open (before anything is read or written)."""
    out, side = Path(output), sidecar_path(output)
    lock = acquire(out)
    try:
        empty_side = not side.exists() or side.stat().st_size == 0
        if not resume or not out.exists():
            notes = start_fresh(out, resume, reuse_empty=empty_side)
            side.unlink(missing_ok=True)  # stale partial results of an older run of that name
            return OpenedRun(ResumeState(), notes, lock=lock)
        opened = _resume_output(out, settings, probes)
        _resume_sidecar(side, settings, probes, opened)
    except BaseException:
        lock.release()
        raise
    opened.lock = lock
    return opened


def _resume_output(out: Path, settings: RunSettings, probes: Sequence[ProbeLike]) -> OpenedRun:
    parsed = abfile.read_ab(out)
    bad = [i for i in parsed.issues if not i.truncated]
    if bad:
        raise LemlabError(f"{bad[0]} (not a clean A/B file: cannot resume)")
    by_id = {p.id: p for p in probes}
    state = ResumeState()
    seconds = 0.0
    for line in parsed.probes:
        _check_probe_line(out, line, settings, by_id)
        state.complete[line.id] = {n: c.to_dict() for n, c in line.conditions.items()}
        seconds += sum(c.time_s for c in line.conditions.values())
    opened = OpenedRun(state, prior_seconds=seconds)
    truncated = parsed.truncated_tail is not None
    if truncated:
        opened.notes.append(f"{out}: dropped a half-written last line (that probe is redone)")
    done = all(p.id in state.complete for p in probes)
    opened.already_complete = done and parsed.summary is not None and not truncated
    if (truncated or parsed.summary is not None) and not opened.already_complete:
        # Keep the good probe lines only; the summary is written again at the end.
        text = "".join(abfile.dumps_line(p.to_dict()) + "\n" for p in parsed.probes)
        write_text_atomic(out, text)
    return opened


def _check_probe_line(
    out: Path, line: abfile.ProbeLine, settings: RunSettings, by_id: Mapping[str, ProbeLike]
) -> None:
    where = f"{out}: probe {line.id!r}"
    probe = by_id.get(line.id)
    if probe is None:
        raise LemlabError(f"{where} is not in this battery (or beyond --limit): cannot resume")
    if line.prompt != probe.prompt:
        raise LemlabError(f"{where} has another prompt than the battery's: cannot resume")
    for key, want in settings.line_extras().items():
        if key not in line.extra:
            raise LemlabError(f"{where} has no {key!r}: not written by `lemlab ab`, cannot resume")
        if not same_setting(key, line.extra[key], want):
            raise LemlabError(
                f"{out}: settings differ: {key} was {line.extra[key]!r}, now {want!r}"
            )
    if list(line.conditions) != list(settings.conditions):
        raise LemlabError(
            f"{out}: settings differ: conditions were {list(line.conditions)}, "
            f"now {list(settings.conditions)}"
        )
    for name, want_c in settings.conditions.items():
        got = line.conditions[name].extra
        if got.get("kernel_sha256") != want_c["kernel_sha256"]:
            raise LemlabError(f"{out}: settings differ: the kernel of {name!r} changed (sha256)")
        if not same_setting("adapter", got.get("adapter"), want_c["adapter"]):
            raise LemlabError(
                f"{out}: settings differ: adapter of {name!r} was {got.get('adapter')!r}"
            )


def _resume_sidecar(
    side: Path, settings: RunSettings, probes: Sequence[ProbeLike], opened: OpenedRun
) -> None:
    if not side.exists():
        return
    if opened.already_complete:
        side.unlink(missing_ok=True)  # the summary is on disk: partial results are stale
        return
    read = read_jsonl_strict(side)
    records, truncated = [rec for _, rec in read.records], read.torn_tail
    seen: dict[tuple[str, str], int] = {}
    for n, rec in read.records[1:]:  # one partial result per (variant, probe): more is two writers
        key = (str(rec.get("variant")), str(rec.get("id")))
        if key in seen:
            raise LemlabError(
                f"{side}:{n}: probe {key[1]!r} of {key[0]!r} is also on line "
                f"{seen[key]} (two runs wrote this file at once?): cannot resume"
            )
        seen[key] = n
    if not records:
        side.unlink(missing_ok=True)
        return
    header, want = records[0], settings.header()
    same_model = same_setting("model", header.get("model"), want["model"])
    if not same_model or {**header, "model": want["model"]} != want:
        raise LemlabError(f"{side}: partial results were made with other settings: cannot resume")
    ids = {p.id for p in probes}
    for rec in records[1:]:
        key = (str(rec.get("variant")), str(rec.get("id")))
        if rec.get("type") == "partial" and key[1] in ids and key[1] not in opened.state.complete:
            opened.state.partial[key] = dict(rec["conditions"])
            opened.prior_seconds += sum(
                float(c.get("time_s", 0.0)) for c in rec["conditions"].values()
            )
    if truncated:
        opened.notes.append(f"{side}: dropped a half-written last line (redone)")
        write_text_atomic(side, "".join(_dumps(r) for r in records))


def _dumps(obj: Mapping[str, Any]) -> str:
    return abfile.dumps_line(obj) + "\n"


# --- writing ---------------------------------------------------------------------------------


class ABRecorder:
    """Writes the events of a BatteryRunner to the output file and the sidecar."""

    def __init__(self, output: str | Path, settings: RunSettings) -> None:
        self.output = Path(output)
        self.sidecar = sidecar_path(output)
        self.settings = settings

    def probe_done(
        self, probe: ProbeLike, conditions: ConditionMap, endpoint: str | None = None
    ) -> dict[str, Any]:
        """Append one probe line. `endpoint` (runs over servers) names the server that answered:
        its config name or host:port, never a key; resume ignores it."""
        extras = self.settings.line_extras()
        if endpoint:
            extras["endpoint"] = endpoint
        line = abfile.probe_line(probe.id, probe.category, probe.prompt, conditions, **extras)
        append_line(self.output, abfile.dumps_line(line) + "\n")
        return line

    def variant_probe_done(self, variant: str, probe_id: str, conditions: ConditionMap) -> None:
        if not self.sidecar.exists():
            append_line(self.sidecar, _dumps(self.settings.header()))
        rec = {
            "type": "partial",
            "variant": variant,
            "id": probe_id,
            "conditions": conditions,
            "ts": abfile.utc_ts(),
        }
        append_line(self.sidecar, _dumps(rec))

    def finish(
        self,
        probes: Sequence[ProbeLike],
        results: Mapping[str, ConditionMap],
        duration_s: float,
        extra: Mapping[str, Any],
    ) -> dict[str, Any]:
        """Append the summary line and drop the sidecar; returns the summary."""
        lines = [
            abfile.probe_line(p.id, p.category, p.prompt, results[p.id])
            for p in probes
            if p.id in results
        ]
        summary = abfile.summarize(
            lines,
            model=self.settings.model,
            duration_s=duration_s,
            max_tokens=int(self.settings.sampler["max_tokens"]),
            condition_order=list(self.settings.conditions),
            **extra,
        )
        append_line(self.output, abfile.dumps_line(summary) + "\n")
        self.sidecar.unlink(missing_ok=True)
        return summary
