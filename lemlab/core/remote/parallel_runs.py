"""A/B batteries and self-distillation spread over several endpoints (OpenAI-compatible servers)
through lemlab.core.remote.dispatch: each endpoint takes up to its `max_in_flight` units at once,
connection errors and 5xx are retried with backoff (possibly on another endpoint), and each
unit's result is yielded once, in completion order.

Units. A/B: one probe with ALL its conditions (every variant, base and adapters) on one endpoint,
so each probe line is written once, whole, by whichever endpoint answered; a retried probe is
redone from its first condition. Distill: one (probe, sample index); its seed comes from the
pair, so a redone sample is the same request.

Order. Lines reach the file in completion order, not battery order. Readers and resume match
probe lines by id (lemlab.core.ab.abfile, lemlab.core.ab.store) and the summary is computed in
battery order, so the order of lines changes nothing but the file's look.

Headless: engines come in already loaded (lemlab.engine.remote_pool connects them); the events
are the ones lemlab.core.ab.runner and lemlab.core.distill.runner yield, so the same views and
recorders show and write them.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from lemlab.core.ab.conditions import ConditionPlan
from lemlab.core.ab.in_flight import InFlight
from lemlab.core.ab.runner import (
    ConditionMap,
    ProbeDone,
    ProbeLike,
    Progress,
    ResumeState,
    RunDone,
    RunEvent,
    ScorerLike,
    complete_results,
    condition_result,
    request_sampler,
    run_started,
    system_form,
)
from lemlab.core.distill import output as d
from lemlab.core.distill.runner import DistillEvent, DistillWork
from lemlab.core.engine_api import Engine, GenerationHandle, GenStats
from lemlab.core.errors import LemlabError
from lemlab.core.remote.dispatch import RetryPolicy, Worker, run_units
from lemlab.core.remote.endpoints import Endpoint, is_remote_spec, parse_model_spec, redact_url


def check_model_specs(specs: Sequence[str]) -> list[str]:
    """The model specs of a run: one local model, or one or more servers of one model."""
    specs = [s for s in specs if s]
    if not specs:
        raise LemlabError(
            "no model given: use --model FOLDER, --model openai:URL#MODEL or --endpoint NAME"
        )
    if len(specs) > 1 and not all(is_remote_spec(s) for s in specs):
        raise LemlabError(
            "several models given: a run spreads over servers of one model only "
            "(each --model openai:URL#MODEL or --endpoint NAME); a local model runs alone"
        )
    return specs


def remote_model_label(
    specs: Sequence[str], endpoints: Mapping[str, Endpoint] | None = None
) -> str:
    """The `model` a remote run records (and --resume compares): one endpoint's spec without
    credentials; for several endpoints, the model name they all give, since a resumed run may
    use other servers. LemlabError when several endpoints do not name one model."""
    parsed = [parse_model_spec(s, endpoints) for s in specs]
    if len(parsed) == 1:
        return redact_url(specs[0].strip())
    names = {e.model for e in parsed}
    if None in names:
        raise LemlabError(
            "a run over several endpoints needs the model named on each "
            '(openai:URL#MODEL, or model = "..." in [endpoints.NAME])'
        )
    if len(names) > 1:
        raise LemlabError(
            f"the endpoints name different models ({', '.join(sorted(map(str, names)))}): "
            "one run compares conditions on one model"
        )
    return str(names.pop())


@dataclass(frozen=True)
class EndpointSlot:
    """One endpoint as a run sees it: a label for lines and logs (never a key), an engine per
    variant name ("" = the base model) already loaded, a capacity and a health check."""

    label: str
    engines: Mapping[str, Engine]
    max_in_flight: int = 1
    ping: Callable[[], object] | None = None


class Cancelled(Exception):
    """A unit stopped by cancel(); the dispatcher drops it (it is redone on resume)."""


def finish(flight: InFlight, handle: GenerationHandle) -> tuple[str, GenStats]:
    """The whole reply; a failed request raises (its EndpointError says if retrying helps)."""
    with flight.tracking(handle):
        text, stats = handle.raise_for_error()
    if flight.cancelled or stats.finish_reason == "cancelled":
        raise Cancelled
    if stats.finish_reason == "error":
        raise LemlabError(handle.error or "generation failed")
    return text, stats


def _workers(
    slots: Sequence[EndpointSlot], do: Callable[[EndpointSlot, Any], Any]
) -> list[Worker[Any, Any]]:
    if not slots:
        raise LemlabError("no endpoint to run on")
    return [
        Worker(s.label, functools.partial(do, s), max(1, s.max_in_flight), s.ping) for s in slots
    ]


# --- A/B -------------------------------------------------------------------------------------


class ParallelBatteryRunner:
    """BatteryRunner's events (RunStarted, ProbeDone with `endpoint`, RunDone) for a run spread
    over endpoints. Raises DispatchError (one line) when a probe fails for good; every probe
    finished before that was yielded, so --resume continues from there."""

    def __init__(
        self,
        slots: Sequence[EndpointSlot],
        probes: Sequence[ProbeLike],
        plan: ConditionPlan,
        scorer: ScorerLike,
        sampler: Any,
        *,
        resume: ResumeState | None = None,
        failure_detector: Callable[[str, str], Any] | None = None,
        retry: RetryPolicy | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.slots, self.probes, self.plan = list(slots), list(probes), plan
        self.scorer, self.sampler = scorer, sampler
        self.state = resume or ResumeState()
        self.failure_detector = failure_detector
        self.retry = retry or RetryPolicy()
        self._clock = clock
        self._flight = InFlight()
        for s in self.slots:
            missing = [v.label for v in plan.variants if v.name not in s.engines]
            if missing:
                raise LemlabError(f"endpoint {s.label}: no engine for {', '.join(missing)}")

    def cancel(self) -> None:
        """Stop now: replies in flight are cancelled and their probes redone on resume."""
        self._flight.cancel()

    @property
    def cancelled(self) -> bool:
        return self._flight.cancelled

    def events(self) -> Iterator[RunEvent]:
        start = self._clock()
        todo = [(i, p) for i, p in enumerate(self.probes, 1) if p.id not in self.state.complete]
        per_probe = len(self.plan.conditions)
        total_units = len(todo) * per_probe
        yield run_started(self.probes, self.state, self.plan, total_units)
        done = 0
        units = run_units(
            todo,
            _workers(self.slots, self._run_probe),
            retry=self.retry,
            cancel=self._flight.cancel_event,
            label=lambda u: u[1].id,
        )
        for (index, probe), (conds, label) in units:
            self.state.complete[probe.id] = conds
            done += per_probe
            progress = Progress.at(done, total_units, self._clock() - start)
            yield ProbeDone(index, len(self.probes), probe, conds, progress, endpoint=label)
        yield RunDone(
            complete_results(self.probes, self.state), self.cancelled, self._clock() - start
        )

    def _run_probe(
        self, slot: EndpointSlot, unit: tuple[int, ProbeLike]
    ) -> tuple[ConditionMap, str]:
        """Runs on a dispatcher thread: every condition of one probe on one endpoint."""
        _, probe = unit
        conds: ConditionMap = {}
        for cond in self.plan.conditions:
            engine = slot.engines[cond.variant]
            form = system_form(engine.loaded)
            sampler = request_sampler(self.sampler, probe.id, cond.name)
            handle = engine.generate(cond.messages(probe.prompt), sampler)
            text, stats = finish(self._flight, handle)
            conds[cond.name] = condition_result(
                probe, cond, text, stats, form, self.scorer, self.failure_detector
            )
        return conds, slot.label


# --- distill ---------------------------------------------------------------------------------


class ParallelDistillRunner(DistillWork):
    """DistillRunner's events (DistillStarted, SampleScored, DistillDone) for samples spread over
    endpoints; `last_endpoint` names the endpoint of the SampleScored just yielded."""

    def __init__(
        self,
        slots: Sequence[EndpointSlot],
        probes: Sequence[ProbeLike],
        settings: d.DistillSettings,
        scorer: ScorerLike,
        kernel_text: str | None = None,
        state: d.DistillState | None = None,
        *,
        retry: RetryPolicy | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(probes, settings, scorer, kernel_text, state, clock)
        self.slots = list(slots)
        self.retry = retry or RetryPolicy()

    def cancel(self) -> None:
        """Stop now: replies in flight are cancelled and their samples redone on resume."""
        self._flight.cancel()

    def events(self) -> Iterator[DistillEvent]:
        start = mark = self._clock()
        todo = [(i, p, s) for i, p, idxs in self.todo() for s in idxs]
        yield self.started()
        units = run_units(
            todo,
            _workers(self.slots, self._sample),
            retry=self.retry,
            cancel=self._flight.cancel_event,
            label=lambda u: f"{u[1].id}#{u[2]}",
        )
        for (index, _, _), (sample, label) in units:
            now = self._clock()
            self.last_endpoint = label
            yield self.record(index, sample, now - mark)
            mark = now
        yield self.done(start)

    def _sample(self, slot: EndpointSlot, unit: tuple[int, ProbeLike, int]) -> tuple[d.Sample, str]:
        _, probe, idx = unit
        started = self._clock()
        handle = slot.engines[""].generate(
            self.messages(probe.prompt), self.settings.sampler(probe.id, idx)
        )
        text, stats = finish(self._flight, handle)
        return self.scored_sample(probe, idx, text, stats, self._clock() - started), slot.label
