"""One battery run started from the TUI: the same preparation and writer as `lemlab ab`
(lemlab.core.ab.prepare prepares, lemlab.core.ab.store records), driven from a worker thread that
only iterates the runner (the engine thread does all MLX work) and posts messages back.

The run file goes next to the session: `<sessions_dir>/<session>.runs/<UTC time>-<battery>.jsonl`,
and the session's `[[battery_runs]]` holds one record per run (what resume reads).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from textual.message import Message

from lemlab.core.ab.prepare import ABSetup, failure_detector, prepare_ab, summary_extras
from lemlab.core.ab.runner import BatteryRunner
from lemlab.core.ab.store import ABRecorder
from lemlab.core.engine_api import Engine, Sampler
from lemlab.core.sessions import Session, now_iso
from lemlab.tui.battery.messages import (
    ConditionScored,
    ConditionStreamed,
    ProbeScored,
    RunFailed,
    RunFinished,
    RunProgressed,
)

RUNS_KIND = "battery_runs"
PROGRESS_EVERY = 0.1  # seconds between progress messages: the UI never lags the engine


@dataclass(frozen=True)
class RunRequest:
    """What the setup form asks for; also what a session record keeps so a run can resume."""

    battery: str  # shipped name or file path
    kernels: tuple[str, ...] = ()  # kernel names or NAME=PATH / PATH
    adapters: tuple[str, ...] = ()  # adapter folders / checkpoint files (NAME=PATH allowed)
    scorer: str = "v2"
    sampler: Sampler = field(default_factory=lambda: Sampler(max_tokens=1024))
    limit: int | None = None  # only the first N probes

    def to_record(self) -> dict[str, Any]:
        rec: dict[str, Any] = {
            "battery": self.battery,
            "kernels": list(self.kernels),
            "adapters": list(self.adapters),
            "scorer": self.scorer,
            "sampler": self.sampler.as_dict(),
        }
        if self.limit:
            rec["limit"] = self.limit
        return rec

    @classmethod
    def from_record(cls, rec: dict[str, Any]) -> RunRequest:
        s = dict(rec.get("sampler", {}))
        sampler = Sampler(
            float(s.get("temperature", 0.0)),
            float(s.get("top_p", 1.0)),
            int(s.get("max_tokens", 1024)),
            s.get("seed"),
        )
        return cls(
            str(rec["battery"]),
            tuple(rec.get("kernels", ())),
            tuple(rec.get("adapters", ())),
            str(rec.get("scorer", "v2")),
            sampler,
            rec.get("limit"),
        )


def run_output_path(
    sessions_dir: Path, session: str, battery: str, when: datetime | None = None
) -> Path:
    stamp = (when or datetime.now(UTC)).strftime("%Y%m%d-%H%M%S")
    name = (
        re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(battery).stem or "battery").strip("._") or "battery"
    )
    return sessions_dir / f"{session}.runs" / f"{stamp}-{name}.jsonl"


def prepare_run(req: RunRequest, model: str, output: Path, resume: bool) -> ABSetup:
    """This request checked and its output opened the way `lemlab ab` does it."""
    return prepare_ab(
        model=model,
        prompts=req.battery,
        output=output,
        sampler=req.sampler,
        kernels=req.kernels,
        adapters=req.adapters,
        scorer=req.scorer,
        resume=resume,
        limit=req.limit,
    )


# -- session records ------------------------------------------------------------------------------
def add_run_record(session: Session, req: RunRequest, path: Path, model: str, total: int) -> None:
    session.add_record(
        RUNS_KIND,
        {
            "path": str(path),
            "model": model,
            **req.to_record(),
            "total_probes": total,
            "started": now_iso(),
            "status": "running",
        },
    )


def update_run_record(session: Session, path: str | Path, **changes: Any) -> None:
    for rec in session.extra.get(RUNS_KIND, []):
        if rec.get("path") == str(path):
            rec.update({k: v for k, v in changes.items() if v is not None})


def resumable_run(session: Session) -> dict[str, Any] | None:
    """The newest run record that did not finish (cancelled, failed, or killed while running)."""
    for rec in reversed(session.records(RUNS_KIND)):
        if rec.get("status") != "done" and rec.get("path") and Path(rec["path"]).exists():
            return rec
    return None


# -- the job --------------------------------------------------------------------------------------
class RunJob:
    """Prepared on the UI thread (every user error surfaces there as one line); `drive` runs in
    a worker thread."""

    def __init__(
        self, engine: Engine, req: RunRequest, model: str, output: Path, resume: bool
    ) -> None:
        self.req, self.output, self.model = req, output, model
        self.setup = prepare_run(req, model, output, resume)
        opened = self.setup.opened
        self.total = len(self.setup.probes)
        self.done = len(opened.state.complete)
        self.already_complete = bool(opened.already_complete)
        self.notes: list[str] = list(opened.notes)
        self.runner = BatteryRunner(
            engine,
            self.setup.probes,
            self.setup.plan,
            self.setup.scorer,
            self.setup.sampler,
            resume=opened.state,
            failure_detector=failure_detector(),
        )
        self._last_progress = 0.0
        self._label = ""
        self._latest: Any = None  # the runner's last Progress (units done, ETA)
        # probe id -> the probe line so far (conditions scored, also those of earlier variants),
        # so the table fills cell by cell while a slow model works through a probe
        self._partial: dict[str, dict[str, Any]] = {}
        for (_, pid), conds in opened.state.partial.items():
            self._partial.setdefault(pid, {"conditions": {}})["conditions"].update(conds)

    def cancel(self) -> None:
        self.runner.cancel()

    def drive(self, post: Callable[[Message], object]) -> None:
        """Iterate the runner to its end, writing lines as the CLI does; never raises."""
        recorder = ABRecorder(self.output, self.setup.settings)
        try:
            for event in self.runner.events():
                if self._handle(event, recorder, post):
                    return
        except Exception as exc:  # noqa: BLE001 - a failed run is one line in the UI, never a crash
            text = str(exc).strip().splitlines()
            post(RunFailed(str(self.output), text[0] if text else type(exc).__name__))
        finally:
            self.release()

    def release(self) -> None:
        """Let go of the output's lock (held from prepare to the run's end), so resume or
        another run can open the file."""
        self.setup.release()

    def _handle(self, event: Any, recorder: Any, post: Callable[[Message], object]) -> bool:
        from lemlab.core.ab import runner as ev

        if isinstance(event, ev.ProbeDone):
            line = recorder.probe_done(event.probe, event.conditions)
            self._partial.pop(event.probe.id, None)
            self.done += 1
            post(ProbeScored(line, self.done, self.total))
        elif isinstance(event, ev.VariantProbeDone):
            recorder.variant_probe_done(event.variant, event.probe_id, event.conditions)
        elif isinstance(event, ev.RunDone):
            if not event.cancelled:
                s = self.setup
                recorder.finish(
                    s.probes,
                    event.results,
                    s.opened.prior_seconds + event.elapsed_s,
                    summary_extras(s.plan, s.settings, event.results),
                )
            post(RunFinished(str(self.output), event.cancelled, len(event.results), self.total))
            return True
        else:
            self._progress(event, post)
        return False

    def _progress(self, event: Any, post: Callable[[Message], object]) -> None:
        from lemlab.core.ab import runner as ev

        tps = ""
        if isinstance(event, ev.ProbeStarted):
            self._label = f"probe {event.index}/{event.total} {event.probe.id}"
            p = event.probe
            part = self._partial.setdefault(p.id, {"conditions": {}})
            part.update(type="probe", id=p.id, category=p.category, prompt=p.prompt)
        elif isinstance(event, ev.VariantLoading):
            self._label = f"loading {event.variant.label}"
        elif isinstance(event, ev.ConditionStarted):
            self._label = self._label.split(" · ")[0] + f" · {event.condition}"
        elif isinstance(event, ev.ConditionProgress):
            tps = f"{event.tokens_per_s:.0f} tok/s"
            post(
                ConditionStreamed(
                    event.probe_id, event.condition, event.text, event.tokens, event.tokens_per_s
                )
            )
        elif isinstance(event, ev.ConditionDone):
            tps = f"{event.stats.generation_tps:.0f} tok/s"
            self._latest = event.progress
            known = self._partial.get(event.probe_id)
            if known is not None and "id" in known:
                known["conditions"][event.condition] = event.result
                line = {**known, "conditions": dict(known["conditions"])}
                post(ConditionScored(line, event.condition))
        now = time.monotonic()
        if now - self._last_progress < PROGRESS_EVERY and not isinstance(event, ev.ProbeStarted):
            return
        self._last_progress = now
        post(RunProgressed(self._line(tps), self._fraction()))

    def _line(self, tps: str) -> str:
        p = self._latest
        eta = f"ETA {p.eta_s:.0f}s" if p is not None and p.eta_s is not None else "ETA -"
        parts = [self._label or "starting", tps, eta, f"{self.done}/{self.total} probes"]
        return " · ".join(x for x in parts if x)

    def _fraction(self) -> float:
        p = self._latest
        return p.fraction if p is not None else 0.0
