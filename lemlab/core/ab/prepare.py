"""Preparing an A/B run (the use case `lemlab ab` and the TUI's Battery tab share): every check
that can fail on user input, before any model is loaded, with keyword arguments in and an
ABSetup out; then what the run's summary line adds (summary_extras) and the failure-mode
detector its runners take. Headless: no engine, no display.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from lemlab.core.ab.conditions import ConditionPlan, parse_adapter_arg, plan_conditions
from lemlab.core.ab.store import OpenedRun, RunSettings, open_output
from lemlab.core.battery.kernels import parse_kernel_arg
from lemlab.core.battery.probes import Battery, Probe, resolve_battery
from lemlab.core.engine_api import Sampler
from lemlab.core.errors import LemlabError
from lemlab.core.models.adapters import resolve_adapter
from lemlab.core.models.paths import resolve_model_dir
from lemlab.core.remote.endpoints import is_remote_spec
from lemlab.core.remote.parallel_runs import check_model_specs, remote_model_label
from lemlab.core.scoring import Scorer, get_scorer
from lemlab.core.scoring.failure_modes import detect


@dataclass
class ABSetup:
    """A run checked and its output opened (holding its lock), ready for a runner."""

    probes: list[Probe]
    plan: ConditionPlan
    scorer: Scorer
    sampler: Sampler
    settings: RunSettings
    opened: OpenedRun
    battery: Battery
    specs: list[str]  # the model specs as given (servers: one or more)
    remote: bool
    endpoints: list[str] | None = None  # labels of the servers a remote run connected to

    def release(self) -> None:
        """Let go of the output's lock (held from preparing to the run's end)."""
        if self.opened.lock is not None:
            self.opened.lock.release()


def check_sampler(sampler: Sampler) -> None:
    """The checks `lemlab ab`'s sampling flags get, worded with the flags' names."""
    if sampler.max_tokens < 1:
        raise LemlabError("--max-tokens must be at least 1")
    if sampler.temperature < 0:
        raise LemlabError("--temp must be 0 (greedy) or more")
    if not 0 < sampler.top_p <= 1:
        raise LemlabError("--top-p must be in (0, 1]")


def prepare_ab(
    *,
    model: str | Sequence[str],
    prompts: str,
    output: str | Path,
    sampler: Sampler,
    kernels: Sequence[str] = (),
    adapters: Sequence[str] = (),
    scorer: str = "v2",
    resume: bool = False,
    limit: int | None = None,
) -> ABSetup:
    """Every check that can fail on user input, before any model is loaded; raises LemlabError
    (one line). `model` may be several server specs of one model (a run spread over servers);
    `kernels` / `adapters` are NAME=PATH or PATH (or a kernel's name); `limit` keeps the
    battery's first N probes. The output is opened (fresh, or resumed) and its lock held."""
    check_sampler(sampler)
    if limit is not None and limit < 1:
        raise LemlabError("--limit must be at least 1")
    specs = check_model_specs([model] if isinstance(model, str) else list(model))
    remote = is_remote_spec(specs[0])
    battery = resolve_battery(prompts)
    probes = list(battery.probes[:limit] if limit else battery.probes)
    parsed_kernels = [parse_kernel_arg(k) for k in kernels]
    parsed_adapters = [parse_adapter_arg(a) for a in adapters]
    if remote:  # an adapter path is the server's; connecting tries each one there
        label = remote_model_label(specs)
    else:
        for a in parsed_adapters:
            resolve_adapter(a.path)
        resolve_model_dir(specs[0])
        label = specs[0]
    chosen = get_scorer(scorer)
    plan = plan_conditions(specs[0], parsed_kernels, parsed_adapters)
    settings = RunSettings(label, chosen.id, sampler.as_dict(), plan.settings())
    opened = open_output(output, settings, probes, resume=resume)
    return ABSetup(probes, plan, chosen, sampler, settings, opened, battery, specs, remote)


def failure_detector() -> Callable[..., Any]:
    """The failure-mode detector for condition entries."""
    return detect


def summary_extras(
    plan: ConditionPlan,
    settings: RunSettings,
    results: dict[str, Any],
    endpoints: list[str] | None = None,
) -> dict[str, Any]:
    """lemlab's keys after the research summary keys (`endpoints`: labels of a remote run)."""
    forms: dict[str, str] = {}
    for conds in results.values():
        for name, c in conds.items():
            form = c.get("system_form", "")
            forms[name] = form if forms.get(name, form) == form else "mixed"
    return {
        "scorer": settings.scorer,
        "sampler": settings.sampler,
        "adapters": {v.name: v.adapter for v in plan.variants if v.adapter},
        "kernels": {
            c.kernel.name: c.kernel.sha256
            for c in plan.conditions
            if c.kernel is not None and not c.adapter
        },
        "condition_settings": settings.conditions,
        "system_form": forms,
        "lemlab_version": _version("lemlab"),
        "mlx_lm_version": _version("mlx-lm"),
        **({"endpoints": endpoints} if endpoints else {}),
    }


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "unknown"
