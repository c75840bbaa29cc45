"""Preparing a self-distillation run (the use case `lemlab distill`, `lemlab pipeline` and the
TUI's Training tab share): every check that can fail on user input, before any model is loaded,
with keyword arguments in and a DistillJob out. Headless: no engine, no display.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lemlab.core.battery.kernels import parse_kernel_arg
from lemlab.core.battery.probes import Probe, resolve_battery
from lemlab.core.distill import output as d
from lemlab.core.errors import LemlabError
from lemlab.core.models.adapters import resolve_adapter
from lemlab.core.models.paths import resolve_model_dir
from lemlab.core.remote.endpoints import is_remote_spec
from lemlab.core.remote.parallel_runs import check_model_specs, remote_model_label
from lemlab.core.scoring import Scorer, get_scorer


@dataclass
class DistillJob:
    """Everything checked and opened, ready to run (no model loaded yet)."""

    output: Path
    settings: d.DistillSettings
    probes: list[Probe]
    scorer: Scorer
    kernel_text: str | None
    state: d.DistillState
    battery: str = ""
    specs: list[str] | None = None  # the model specs as given (servers: one or more)

    @property
    def remote(self) -> bool:
        return is_remote_spec(self.specs[0]) if self.specs else False


def prepare_distill(
    *,
    model: str | list[str],
    prompts: str | list[Any],
    output: str | Path,
    adapter: str | None = None,
    kernel: str | None = None,
    resume: bool = False,
    limit: int | None = None,
    **settings: Any,
) -> DistillJob:
    """Every check that can fail on user input, before any model is loaded. `prompts` is a
    battery spec (path or shipped name) or a list of probes; `settings` are DistillSettings
    fields (samples, threshold, temperature, top_p, max_tokens, seed, scorer, truncated).
    `model` may be a list of server specs of one model (a run spread over servers); `limit`
    keeps the battery's first N probes."""
    battery = prompts if isinstance(prompts, str) else "(given probes)"
    probes = list(resolve_battery(prompts).probes) if isinstance(prompts, str) else list(prompts)
    if not probes:
        raise LemlabError(f"battery {battery} has no probes: nothing to distill")
    if limit is not None:
        if limit < 1:
            raise LemlabError("--limit must be at least 1")
        probes = probes[:limit]
    specs = check_model_specs([model] if isinstance(model, str) else model)
    if is_remote_spec(specs[0]):  # an adapter path is the server's: connecting tries it there
        label = remote_model_label(specs)
    else:
        resolve_model_dir(specs[0])
        if adapter:
            resolve_adapter(adapter)
        label = specs[0]
    k = parse_kernel_arg(kernel) if kernel else None
    cfg = d.DistillSettings(
        model=label,
        adapter=adapter or None,
        kernel=k.name if k else None,
        kernel_sha256=k.sha256 if k else None,
        **settings,
    )
    cfg.check()
    scorer = get_scorer(cfg.scorer)
    state = d.open_distill_output(output, cfg, probes, resume=resume)
    return DistillJob(
        Path(output), cfg, probes, scorer, k.text if k else None, state, battery, specs
    )
