"""The self-distillation runner: a pure generator that samples N responses per probe from any
Engine, scores each and yields events. No file I/O and no mlx here; lemlab.core.distill.output records
the events and the CLI / TUI show them (the TUI mounts lemlab.tui.widgets.distill_progress).

Order: probe by probe, sample 0..N-1 within a probe, skipping every (probe, sample) the resume
state already holds. A kernel goes in as the system message (the engine folds it into the user
turn for templates without a system role) with prefix reuse, so it is prefilled once per model.

Usage:
    run = DistillRunner(engine, probes, settings, scorer, kernel_text, state)
    for event in run.events():
        ...            # run.cancel() from any thread stops at the next token
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from lemlab.core.ab.in_flight import InFlight
from lemlab.core.ab.runner import ScorerLike
from lemlab.core.distill.output import DistillSettings, DistillState, ProbeLike, Record, Sample
from lemlab.core.engine_api import Engine, GenStats, LoadInfo, Message
from lemlab.core.errors import LemlabError


@dataclass(frozen=True)
class Counts:
    """Figures for a progress display: whole-run totals, resumed work included."""

    generated: int
    kept: int
    total: int  # probes x samples

    @property
    def keep_rate(self) -> float:
        """Percent of generated samples kept (0.0 before any)."""
        return 100.0 * self.kept / self.generated if self.generated else 0.0


@dataclass(frozen=True)
class DistillStarted:
    probes: int
    samples: int
    counts: Counts
    resumed: list[Record]  # scores already recorded (for a histogram)


@dataclass(frozen=True)
class ModelLoaded:
    info: LoadInfo


@dataclass(frozen=True)
class SampleStarted:
    probe_index: int  # 1-based
    probes: int
    probe: ProbeLike
    sample_idx: int


@dataclass(frozen=True)
class SampleScored:
    probe_index: int
    probes: int
    sample: Sample
    wall_s: float  # since the previous sample (or the start): loading and scoring included
    counts: Counts


@dataclass(frozen=True)
class DistillDone:
    cancelled: bool
    elapsed_s: float
    counts: Counts


DistillEvent = DistillStarted | ModelLoaded | SampleStarted | SampleScored | DistillDone


class DistillCancelled(Exception):
    pass


class DistillWork:
    """What the distill runners share (this one on one engine, ParallelDistillRunner over
    servers): the work still to do, the figures, the chat sent, scoring and recording a reply,
    and cancelling."""

    last_endpoint = ""  # the server of the SampleScored just yielded ("" on a single engine)

    def __init__(
        self,
        probes: Sequence[ProbeLike],
        settings: DistillSettings,
        scorer: ScorerLike,
        kernel_text: str | None,
        state: DistillState | None,
        clock: Callable[[], float],
    ) -> None:
        self.probes, self.settings = list(probes), settings
        self.scorer, self.kernel_text = scorer, kernel_text
        self.state = state or DistillState()
        self._clock = clock
        self._flight = InFlight()

    def cancel(self) -> None:
        """Stop at the next token; the sample in progress is dropped (redone on resume)."""
        self._flight.cancel()

    @property
    def cancelled(self) -> bool:
        return self._flight.cancelled

    def todo(self) -> list[tuple[int, ProbeLike, list[int]]]:
        """(1-based probe index, probe, sample indices still to generate), probes with work only."""
        out = []
        for i, p in enumerate(self.probes, 1):
            idxs = [s for s in range(self.settings.samples) if (p.id, s) not in self.state.records]
            if idxs:
                out.append((i, p, idxs))
        return out

    def counts(self) -> Counts:
        recs = self.state.records
        return Counts(
            len(recs),
            sum(1 for r in recs.values() if r.kept),
            len(self.probes) * self.settings.samples,
        )

    def messages(self, prompt: str) -> list[Message]:
        """The chat sent to the model: the kernel (if any) as system turn, then the probe."""
        msgs: list[Message] = [{"role": "user", "content": prompt}]
        if self.kernel_text is not None:
            msgs.insert(0, {"role": "system", "content": self.kernel_text})
        return msgs

    def started(self) -> DistillStarted:
        return DistillStarted(
            len(self.probes),
            self.settings.samples,
            self.counts(),
            list(self.state.records.values()),
        )

    def scored_sample(
        self, probe: ProbeLike, idx: int, text: str, stats: GenStats, wall: float
    ) -> Sample:
        """The reply scored against the keep threshold (wall: seconds, if the engine gave none)."""
        score = round(float(self.scorer.score(text)["lek_score"]), 2)
        return Sample(
            probe,
            idx,
            text,
            score,
            self.settings.keeps(score, stats.finish_reason),
            stats.elapsed or wall,
            stats.generation_tokens,
            stats.finish_reason,
        )

    def record(self, index: int, sample: Sample, wall_s: float) -> SampleScored:
        """Remember a finished sample in the resume state; the event that reports it."""
        self.state.records[(sample.probe.id, sample.sample_idx)] = Record(
            sample.lek_score, sample.kept, wall_s, sample.finish_reason
        )
        return SampleScored(index, len(self.probes), sample, wall_s, self.counts())

    def done(self, start: float) -> DistillDone:
        return DistillDone(self.cancelled, self._clock() - start, self.counts())


class DistillRunner(DistillWork):
    def __init__(
        self,
        engine: Engine,
        probes: Sequence[ProbeLike],
        settings: DistillSettings,
        scorer: ScorerLike,
        kernel_text: str | None = None,
        state: DistillState | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        generate_options: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(probes, settings, scorer, kernel_text, state, clock)
        self.engine = engine
        self.generate_options = dict(generate_options or {})  # engine extras (logits_processors)

    def events(self) -> Iterator[DistillEvent]:
        start = self._clock()
        todo = self.todo()
        yield self.started()
        mark = start
        try:
            if todo:
                if self.cancelled:
                    raise DistillCancelled
                info = self.engine.load(self.settings.model, self.settings.adapter).result()
                yield ModelLoaded(info)
            for index, probe, idxs in todo:
                for idx in idxs:
                    yield SampleStarted(index, len(self.probes), probe, idx)
                    sample = self._sample(probe, idx)
                    now = self._clock()
                    yield self.record(index, sample, now - mark)
                    mark = now
        except DistillCancelled:
            pass
        yield self.done(start)

    def _sample(self, probe: ProbeLike, idx: int) -> Sample:
        if self.cancelled:
            raise DistillCancelled
        handle = self.engine.generate(
            self.messages(probe.prompt),
            self.settings.sampler(probe.id, idx),
            reuse_prefix=self.kernel_text is not None,
            **self.generate_options,
        )
        started = self._clock()
        try:
            with self._flight.tracking(handle):
                text, stats = handle.result()
        except BaseException:
            handle.cancel()  # Ctrl+C while waiting: stop the engine too
            raise
        if self.cancelled or stats.finish_reason == "cancelled":
            raise DistillCancelled
        if stats.finish_reason == "error":
            err = handle.error or "unknown error"
            raise LemlabError(f"generation failed on {probe.id} sample {idx}: {err}")
        return self.scored_sample(probe, idx, text, stats, self._clock() - started)
