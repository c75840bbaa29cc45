"""Condition planning for A/B batteries: which model variants to load, and which conditions
(system message or none) to run on each.

Variants are the base model and one per adapter. Each variant runs a no-kernel condition and one
condition per kernel. Names (kept short so files match the research format on the base model):

    base model:   baseline, <kernel>, ...
    adapter A:    A, A+<kernel>, ...

Order (also the order of the `conditions` map in every probe line): baseline, the kernels in the
order given, then each adapter's conditions in the order the adapters were given.
Headless: no mlx imports.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from lemlab.core.errors import LemlabError

BASELINE = "baseline"
BASE_VARIANT = ""  # the base model's variant name (no adapter)
_CHECKPOINT_RE = re.compile(r"^(\d{7})_adapters\.safetensors$")
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]*\Z")  # \Z: `$` lets a final "\n" in


class KernelLike(Protocol):
    """What a condition needs of lemlab.core.battery.kernels.Kernel (read-only: it is frozen)."""

    @property
    def name(self) -> str: ...
    @property
    def text(self) -> str: ...
    @property
    def sha256(self) -> str: ...


@dataclass(frozen=True)
class AdapterSpec:
    """An adapter as named on the command line. `path` is a folder or a checkpoint file in one."""

    name: str
    path: str


@dataclass(frozen=True)
class Variant:
    """One model to load: the base (name "") or the base plus an adapter."""

    name: str
    adapter: str | None = None  # as given to engine.load (folder or checkpoint file)

    @property
    def label(self) -> str:
        return self.name or "base"


@dataclass(frozen=True)
class Condition:
    name: str
    variant: str  # Variant.name
    kernel: KernelLike | None = None
    adapter: str | None = None

    @property
    def kernel_sha256(self) -> str | None:
        return self.kernel.sha256 if self.kernel is not None else None

    def messages(self, prompt: str) -> list[dict[str, str]]:
        """The chat for one probe. The engine folds the system turn into the user turn itself
        when the template rejects a system role."""
        msgs = [{"role": "user", "content": prompt}]
        if self.kernel is not None:
            msgs.insert(0, {"role": "system", "content": self.kernel.text})
        return msgs


@dataclass(frozen=True)
class ConditionPlan:
    model: str
    variants: tuple[Variant, ...]
    conditions: tuple[Condition, ...]

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.conditions]

    def for_variant(self, variant: str) -> tuple[Condition, ...]:
        return tuple(c for c in self.conditions if c.variant == variant)

    def settings(self) -> dict[str, dict[str, str | None]]:
        """Per condition: what makes its outputs what they are (compared on --resume)."""
        return {
            c.name: {"adapter": c.adapter, "kernel_sha256": c.kernel_sha256}
            for c in self.conditions
        }


def plan_conditions(
    model: str, kernels: Sequence[KernelLike], adapters: Sequence[AdapterSpec] = ()
) -> ConditionPlan:
    """All conditions in file order; LemlabError on clashing or reserved names."""
    _check_names([k.name for k in kernels], "kernel")
    _check_names([a.name for a in adapters], "adapter")
    variants = [Variant(BASE_VARIANT)] + [Variant(a.name, a.path) for a in adapters]
    conditions: list[Condition] = []
    for v in variants:
        first = BASELINE if v.name == BASE_VARIANT else v.name
        conditions.append(Condition(first, v.name, None, v.adapter))
        for k in kernels:
            name = k.name if v.name == BASE_VARIANT else f"{v.name}+{k.name}"
            conditions.append(Condition(name, v.name, k, v.adapter))
    seen: set[str] = set()
    for c in conditions:
        if c.name in seen:
            raise LemlabError(
                f"two conditions are both named {c.name!r}: rename a kernel or adapter"
            )
        seen.add(c.name)
    return ConditionPlan(model, tuple(variants), tuple(conditions))


def _check_names(names: list[str], what: str) -> None:
    for n in names:
        if n == BASELINE:
            raise LemlabError(f"{what} name {BASELINE!r} is reserved for the no-kernel condition")
        if not _NAME_RE.match(n):
            raise LemlabError(
                f"{what} name {n!r}: use letters, digits, '.', '_', '-' or '@' (no '+' or spaces)"
            )
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise LemlabError(f"{what} name {dupes[0]!r} is given twice")


def parse_adapter_arg(arg: str) -> AdapterSpec:
    """`name=path` or `path`. Without a name: the folder's name, or `folder@ITER` for a
    checkpoint file such as `runs/a/0000200_adapters.safetensors`."""
    arg = arg.strip()
    if not arg:
        raise LemlabError("empty --adapter argument (use NAME=PATH or PATH)")
    name, sep, rest = arg.partition("=")
    literal = Path(arg).expanduser().exists() and not Path(rest).expanduser().exists()
    if sep and name and "/" not in name and "\\" not in name and not literal:
        if not rest:
            raise LemlabError(f"adapter {arg!r}: missing path after '='")
        return AdapterSpec(name.strip(), rest)
    return AdapterSpec(default_adapter_name(arg), arg)


def default_adapter_name(path: str) -> str:
    p = Path(path.rstrip("/\\")).expanduser()
    m = _CHECKPOINT_RE.match(p.name)
    if m:
        return f"{p.parent.name or 'adapter'}@{int(m.group(1))}"
    if p.suffix == ".safetensors":
        return f"{p.parent.name or 'adapter'}@{p.stem}"
    return p.name or "adapter"
