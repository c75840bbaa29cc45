"""The A/B battery runner: a pure generator that drives any Engine through a battery of probes
under a plan of conditions, scores every response and yields events. No file I/O and no mlx
here; lemlab.core.ab.store records the events (output file, sidecar, resume) and the CLI / TUI
show them.

Order of work. Loading a model is the expensive step, so the runner goes variant by variant
(base model, then each adapter): load once, then every probe still to do, each under all of that
variant's conditions (probe-major, as the published runs did). With a single variant - no
adapters - each probe line is complete, and yielded as ProbeDone, as soon as its conditions are.
With adapters, a probe is complete only when the last variant has run it: earlier variants yield
VariantProbeDone (the store keeps those in a sidecar file, so a killed run resumes without redoing
them) and the last variant's pass yields ProbeDone lines in battery order.

Kernel requests use the engine's prefix reuse, so a kernel's system turn is prefilled once per
model instead of once per probe.

Usage:
    run = BatteryRunner(engine, probes, plan, scorer, Sampler(), resume=state)
    for event in run.events():
        ...            # run.cancel() from any thread stops at the next token
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from lemlab.core.ab.abfile import condition_entry
from lemlab.core.ab.conditions import BASE_VARIANT, Condition, ConditionPlan, Variant
from lemlab.core.ab.in_flight import InFlight
from lemlab.core.engine_api import Engine, GenStats, LoadInfo, Sampler
from lemlab.core.errors import LemlabError
from lemlab.core.remote.endpoints import is_remote_spec
from lemlab.core.scoring.failure_modes import FailureMode

SYSTEM_FORM_NONE = "none"  # no kernel: no system message
SYSTEM_FORM_SYSTEM = "system"  # kernel sent as the system turn
SYSTEM_FORM_USER = "user_prefix"  # template rejects system: kernel, blank line, prompt as user turn


class ProbeLike(Protocol):
    # Read-only members, so frozen dataclasses (battery.probes.Probe) satisfy the protocol.
    @property
    def id(self) -> str: ...
    @property
    def category(self) -> str: ...
    @property
    def prompt(self) -> str: ...


class ScorerLike(Protocol):
    id: str

    def score(self, text: str) -> dict[str, Any]: ...


ConditionMap = dict[str, dict[str, Any]]


# --- events ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Progress:
    """Figures for a progress bar: units are (probe, condition) generations still to do."""

    done_units: int
    total_units: int
    elapsed_s: float
    eta_s: float | None  # None until one unit is done

    @property
    def fraction(self) -> float:
        return self.done_units / self.total_units if self.total_units else 1.0

    @classmethod
    def at(cls, done_units: int, total_units: int, elapsed_s: float) -> Progress:
        """The figures after done_units, the ETA from the mean time per unit so far."""
        eta = elapsed_s / done_units * (total_units - done_units) if done_units else None
        return cls(done_units, total_units, elapsed_s, eta)


@dataclass(frozen=True)
class RunStarted:
    total_probes: int
    todo_probes: int  # probes without a complete line yet
    resumed_probes: int  # complete lines kept from an earlier run
    conditions: list[str]
    variants: list[str]
    total_units: int


@dataclass(frozen=True)
class VariantLoading:
    variant: Variant


@dataclass(frozen=True)
class VariantLoaded:
    variant: Variant
    info: LoadInfo
    system_form: str  # how kernels reach the model on this variant


@dataclass(frozen=True)
class ProbeStarted:
    index: int  # 1-based position in the battery
    total: int
    probe: ProbeLike
    variant: Variant


@dataclass(frozen=True)
class ConditionStarted:
    probe_id: str
    condition: str


@dataclass(frozen=True)
class ConditionProgress:
    """Throttled while tokens stream (for live tokens/s)."""

    probe_id: str
    condition: str
    tokens: int
    tokens_per_s: float
    text: str  # the reply so far


@dataclass(frozen=True)
class ConditionDone:
    probe_id: str
    condition: str
    result: dict[str, Any]  # the probe line's entry for this condition
    stats: GenStats
    progress: Progress


@dataclass(frozen=True)
class VariantProbeDone:
    """One probe finished on a variant that is not the last: a partial result to keep."""

    variant: str
    probe_id: str
    conditions: ConditionMap


@dataclass(frozen=True)
class ProbeDone:
    index: int
    total: int
    probe: ProbeLike
    conditions: ConditionMap  # every condition, in plan order
    progress: Progress
    endpoint: str | None = None  # the server that answered (runs spread over endpoints)


@dataclass(frozen=True)
class RunDone:
    """The end. `results` maps probe id -> conditions for every complete probe, battery order
    (kept lines included). cancelled=True when cancel() stopped the run early."""

    results: dict[str, ConditionMap]
    cancelled: bool
    elapsed_s: float


RunEvent = (
    RunStarted
    | VariantLoading
    | VariantLoaded
    | ProbeStarted
    | ConditionStarted
    | ConditionProgress
    | ConditionDone
    | VariantProbeDone
    | ProbeDone
    | RunDone
)


@dataclass
class ResumeState:
    """Work already done: complete probes (id -> conditions) and per-variant partial results."""

    complete: dict[str, ConditionMap] = field(default_factory=dict)
    partial: dict[tuple[str, str], ConditionMap] = field(default_factory=dict)  # (variant, id)


class RunCancelled(Exception):
    """Raised inside the runner when cancel() interrupts a generation."""


# --- the runner ------------------------------------------------------------------------------


class BatteryRunner:
    def __init__(
        self,
        engine: Engine,
        probes: Sequence[ProbeLike],
        plan: ConditionPlan,
        scorer: ScorerLike,
        sampler: Sampler,
        *,
        resume: ResumeState | None = None,
        failure_detector: Callable[[str, str], Any] | None = None,
        generate_options: Mapping[str, Any] | None = None,
        progress_every: float = 0.25,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.engine, self.probes, self.plan = engine, list(probes), plan
        self.scorer, self.sampler = scorer, sampler
        self.state = resume or ResumeState()
        self.failure_detector = failure_detector
        self.generate_options = dict(
            generate_options or {}
        )  # engine extras, e.g. logits_processors
        self.progress_every = progress_every
        self._clock = clock
        self._flight = InFlight()
        self._done_units = 0
        self._total_units = 0
        self._start = 0.0

    # -- control --

    def cancel(self) -> None:
        """Stop at the next token. The probe in progress is dropped (it is redone on resume)."""
        self._flight.cancel()

    @property
    def cancelled(self) -> bool:
        return self._flight.cancelled

    # -- work --

    def todo(self, variant: Variant) -> list[tuple[int, ProbeLike]]:
        """(1-based index, probe) still to run on this variant."""
        return [
            (i, p)
            for i, p in enumerate(self.probes, 1)
            if p.id not in self.state.complete and (variant.name, p.id) not in self.state.partial
        ]

    def events(self) -> Iterator[RunEvent]:
        self._start = self._clock()
        per_variant = {v.name: self.todo(v) for v in self.plan.variants}
        self._total_units = sum(
            len(per_variant[v.name]) * len(self.plan.for_variant(v.name))
            for v in self.plan.variants
        )
        yield run_started(self.probes, self.state, self.plan, self._total_units)
        last = self.plan.variants[-1].name
        try:
            for variant in self.plan.variants:
                todo = per_variant[variant.name]
                if not todo:
                    continue
                yield VariantLoading(variant)
                info = self._load(variant)
                form = system_form(info)
                yield VariantLoaded(variant, info, form)
                for index, probe in todo:
                    yield ProbeStarted(index, len(self.probes), probe, variant)
                    conds: ConditionMap = {}
                    for cond in self.plan.for_variant(variant.name):
                        yield ConditionStarted(probe.id, cond.name)
                        result, stats = yield from self._run_condition(probe, cond, form)
                        conds[cond.name] = result
                        self._done_units += 1
                        yield ConditionDone(probe.id, cond.name, result, stats, self.progress())
                    if variant.name == last:
                        full = self._assemble(probe.id, conds)
                        self.state.complete[probe.id] = full
                        yield ProbeDone(index, len(self.probes), probe, full, self.progress())
                    else:
                        self.state.partial[(variant.name, probe.id)] = conds
                        yield VariantProbeDone(variant.name, probe.id, conds)
        except RunCancelled:
            pass
        results = complete_results(self.probes, self.state)
        yield RunDone(results, self.cancelled, self._clock() - self._start)

    def progress(self) -> Progress:
        return Progress.at(self._done_units, self._total_units, self._clock() - self._start)

    def _load(self, variant: Variant) -> LoadInfo:
        if self.cancelled:
            raise RunCancelled
        loaded = self.engine.loaded
        if loaded is not None and loaded_matches(loaded, self.plan.model, variant.adapter):
            return loaded  # already there (e.g. the TUI chat loaded it): no reload
        return self.engine.load(self.plan.model, variant.adapter).result()

    def _assemble(self, probe_id: str, last_conds: ConditionMap) -> ConditionMap:
        merged: ConditionMap = {}
        for v in self.plan.variants[:-1]:
            merged.update(self.state.partial[(v.name, probe_id)])
        merged.update(last_conds)
        return {name: merged[name] for name in self.plan.names}  # plan order

    def _run_condition(
        self, probe: ProbeLike, cond: Condition, form: str
    ) -> Generator[ConditionProgress, None, tuple[dict[str, Any], GenStats]]:
        """Generate and score one (probe, condition); yields throttled ConditionProgress, returns
        (result dict, stats)."""
        if self.cancelled:
            raise RunCancelled
        sampler = request_sampler(self.sampler, probe.id, cond.name)
        handle = self.engine.generate(
            cond.messages(probe.prompt),
            sampler,
            reuse_prefix=cond.kernel is not None,
            **self.generate_options,
        )
        parts: list[str] = []
        started = last_report = self._clock()
        stats = GenStats()
        try:
            with self._flight.tracking(handle):
                for chunk in handle:
                    parts.append(chunk.text)
                    stats = chunk.stats
                    if chunk.error:
                        raise LemlabError(
                            f"generation failed on {probe.id} / {cond.name}: {chunk.error}"
                        )
                    now = self._clock()
                    if not chunk.done and now - last_report >= self.progress_every:
                        last_report = now
                        yield ConditionProgress(
                            probe.id,
                            cond.name,
                            stats.generation_tokens,
                            stats.generation_tps,
                            "".join(parts),
                        )
        except BaseException:
            handle.cancel()  # Ctrl+C or a consumer closing the generator: stop the engine too
            raise
        if self.cancelled or stats.finish_reason == "cancelled":
            raise RunCancelled
        text = "".join(parts)
        if not stats.elapsed:  # an engine that does not time itself: use the wall clock
            stats = replace(stats, elapsed=self._clock() - started)
        return self.condition_result(probe, cond, text, stats, form), stats

    def condition_result(
        self, probe: ProbeLike, cond: Condition, text: str, stats: GenStats, form: str
    ) -> dict[str, Any]:
        """The research keys (response, lek_score, heuristic, chars, time_s), then lemlab's."""
        return condition_result(probe, cond, text, stats, form, self.scorer, self.failure_detector)


def run_started(
    probes: Sequence[ProbeLike], state: ResumeState, plan: ConditionPlan, total_units: int
) -> RunStarted:
    done = sum(1 for p in probes if p.id in state.complete)
    return RunStarted(
        total_probes=len(probes),
        todo_probes=len(probes) - done,
        resumed_probes=done,
        conditions=plan.names,
        variants=[v.label for v in plan.variants],
        total_units=total_units,
    )


def complete_results(probes: Sequence[ProbeLike], state: ResumeState) -> dict[str, ConditionMap]:
    """Probe id -> conditions of every complete probe, in battery order."""
    return {p.id: state.complete[p.id] for p in probes if p.id in state.complete}


def system_form(info: LoadInfo | None) -> str:
    """How kernels reach a loaded model (a model not known yet is taken to have a system role)."""
    return SYSTEM_FORM_SYSTEM if info is None or info.supports_system_role else SYSTEM_FORM_USER


def condition_result(
    probe: ProbeLike,
    cond: Condition,
    text: str,
    stats: GenStats,
    form: str,
    scorer: ScorerLike,
    failure_detector: Callable[[str, str], Any] | None = None,
) -> dict[str, Any]:
    """One condition's entry of a probe line: the research keys (response, lek_score,
    heuristic, chars, time_s), then lemlab's (tokens, finish_reason, system_form, ...)."""
    extra: dict[str, Any] = {
        "tokens": stats.generation_tokens,
        "finish_reason": stats.finish_reason,
        "system_form": form if cond.kernel is not None else SYSTEM_FORM_NONE,
    }
    if cond.kernel is not None:
        extra["kernel_sha256"] = cond.kernel.sha256
    if cond.adapter is not None:
        extra["adapter"] = cond.adapter
    if stats.prefix_build_time > 0:
        # time_s includes prefilling the kernel once for the whole run: say how much of it.
        extra["cache_build_s"] = round(stats.prefix_build_time, 1)
    if failure_detector is not None:
        found = failure_detector(text, probe.prompt) or []
        extra["failure_modes"] = [failure_entry(m) for m in found]
    return condition_entry(text, scorer.score(text), stats.elapsed, **extra)


def failure_entry(mode: FailureMode | Mapping[str, Any] | str) -> dict[str, Any]:
    """A failure mode as stored in a condition entry: `{label, evidence, detail}`, so a report
    can show what the detector saw (readers that want labels take `label`). A detector gives
    FailureMode; a bare label (an older detector) or a stored entry is taken as it is."""
    label: Any
    evidence: Any
    detail: Any
    if isinstance(mode, FailureMode):
        label, evidence, detail = mode.label, mode.evidence, mode.detail
    elif isinstance(mode, Mapping):
        label, evidence, detail = mode.get("label"), mode.get("evidence"), mode.get("detail")
    else:
        label, evidence, detail = mode, "", None
    return {
        "label": str(label),
        "evidence": str(evidence or ""),
        "detail": dict(detail) if isinstance(detail, Mapping) else {},
    }


def loaded_matches(info: LoadInfo, model: str, adapter: str | None) -> bool:
    """Whether the engine already holds `model` + `adapter`: resolved paths for local models;
    for a server spec, the same spec (one without #model matches the model the server chose)."""
    if is_remote_spec(model):
        loaded = info.model_path
        same = loaded == model or ("#" not in model and loaded.partition("#")[0] == model)
        return same and info.adapter_path == adapter
    if adapter is None or info.adapter_path is None:
        same_adapter = adapter is None and info.adapter_path is None
    else:
        same_adapter = _same_path(adapter, info.adapter_path)
    return same_adapter and _same_path(model, info.model_path)


def _same_path(a: str, b: str) -> bool:
    """Both exist and resolve to one place (a hub id or a missing path never matches)."""
    pa, pb = Path(a).expanduser(), Path(b).expanduser()
    return pa.exists() and pb.exists() and pa.resolve() == pb.resolve()


def request_sampler(sampler: Sampler, probe_id: str, condition: str) -> Sampler:
    """The sampler for one request. A seeded sampling run gets a seed per (probe, condition), so
    a resumed run draws exactly what an uninterrupted one would have; greedy is unchanged."""
    if sampler.greedy or sampler.seed is None:
        return sampler
    digest = hashlib.sha256(f"{sampler.seed}|{probe_id}|{condition}".encode()).digest()
    return replace(sampler, seed=int.from_bytes(digest[:4], "big") & 0x7FFFFFFF)


__all__ = [
    "BASE_VARIANT",
    "BatteryRunner",
    "ConditionDone",
    "ConditionProgress",
    "ConditionStarted",
    "ProbeDone",
    "ProbeStarted",
    "Progress",
    "ResumeState",
    "RunDone",
    "RunEvent",
    "RunStarted",
    "VariantLoaded",
    "VariantLoading",
    "VariantProbeDone",
    "complete_results",
    "condition_result",
    "failure_entry",
    "loaded_matches",
    "request_sampler",
    "run_started",
    "system_form",
]
