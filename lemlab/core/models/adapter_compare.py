"""Two trained adapters side by side: the seed addendum's "Training configuration comparison"
(learning rate, iterations, batch size, layers trained, effective gradient) with the ratio
A / B on every number, read from each adapter's adapter_config.json.

The effective gradient is iters x batch size (examples' worth of gradient): the addendum's
1B run, 500 iters at batch 4, got ~2000 against the 27B's ~400, "5x total gradient".
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lemlab.core.errors import DataError
from lemlab.core.models.adapters import AdapterInfo, read_adapter_info, resolve_base_reference
from lemlab.core.models.folder import read_model_config, text_config


@dataclass(frozen=True)
class Row:
    parameter: str
    a: Any
    b: Any
    ratio: float | None  # a / b for numbers both sides have

    @property
    def ratio_text(self) -> str:
        return "" if self.ratio is None else f"{self.ratio:.3g}x"


@dataclass(frozen=True)
class AdapterComparison:
    a: AdapterInfo
    b: AdapterInfo | None  # None: one adapter's configuration alone
    rows: list[Row]

    @property
    def summary(self) -> str:
        if self.b is None:
            g = self.a.effective_gradient
            if not g:
                return "Effective gradient unknown (iters or batch size not recorded)."
            return (
                f"{self.a.name} received an effective gradient of {g} (iters x batch size: "
                f"{self.a.iters} x {self.a.batch_size}); the addendum's collapsed 1B run had "
                "about 2000, the 27B run that worked about 400."
            )
        ga, gb = self.a.effective_gradient, self.b.effective_gradient
        if not ga or not gb:
            return "Effective gradient unknown for one adapter (iters or batch size not recorded)."
        return (
            f"{self.a.name} received {ga / gb:.3g}x the effective gradient of {self.b.name} "
            f"(iters x batch size: {ga} vs {gb})."
        )


def model_layers(info: AdapterInfo) -> int | None:
    """The base model's layer count, when adapter_config.json's model is a folder on disk."""
    base = resolve_base_reference(info.path, info.base_model)
    if base is None:
        return None
    try:
        layers = text_config(read_model_config(base)).get("num_hidden_layers")
    except DataError:
        return None
    return layers if isinstance(layers, int) and layers > 0 else None


def layers_text(info: AdapterInfo) -> str:
    total = model_layers(info)
    n = info.num_layers
    if n is None:
        return "-"
    if n < 0 or (total is not None and n >= total):
        return f"all{f' ({total}/{total}, 100%)' if total else ''}"
    return f"{n}/{total} ({100 * n / total:.1f}%)" if total else str(n)


def compare_adapters(a: str | Path, b: str | Path | None = None) -> AdapterComparison:
    """Two adapters side by side, or (b None) one adapter's configuration on its own."""
    if b is None:
        one = compare_adapters(a, a)
        return AdapterComparison(one.a, None, [Row(r.parameter, r.a, None, None) for r in one.rows])
    ia, ib = read_adapter_info(Path(a).expanduser()), read_adapter_info(Path(b).expanduser())

    def row(name: str, x: Any, y: Any) -> Row:
        both = all(isinstance(v, int | float) and not isinstance(v, bool) for v in (x, y))
        return Row(name, x, y, x / y if both and y else None)

    rows = [
        Row("Adapter", str(ia.path), str(ib.path), None),
        Row("Base model", ia.base_model or "-", ib.base_model or "-", None),
        Row("Data", ia.data or "-", ib.data or "-", None),
        Row("Fine-tune type", ia.fine_tune_type, ib.fine_tune_type, None),
        row("Learning rate", ia.learning_rate, ib.learning_rate),
        row("Iterations", ia.iters, ib.iters),
        row("Batch size", ia.batch_size, ib.batch_size),
        row("Gradient accumulation", ia.grad_accumulation_steps, ib.grad_accumulation_steps),
        Row("Layers trained", layers_text(ia), layers_text(ib), None),
        row("LoRA rank", ia.rank, ib.rank),
        row("LoRA scale", ia.scale, ib.scale),
        row("LoRA dropout", ia.dropout, ib.dropout),
        row("Effective gradient (iters x batch)", ia.effective_gradient, ib.effective_gradient),
        row("Checkpoints", len(ia.checkpoints), len(ib.checkpoints)),
    ]
    return AdapterComparison(ia, ib, rows)


def _text(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:g}"
    return str(v).replace("|", "\\|").replace("\n", " ")


def to_markdown(c: AdapterComparison) -> str:
    if c.b is None:
        lines = [f"# Training configuration: {c.a.name}", "", "| Parameter | Value |", "|---|---|"]
        lines += [f"| {r.parameter} | {_text(r.a)} |" for r in c.rows]
        return "\n".join([*lines, "", c.summary]) + "\n"
    lines = [f"# Training configuration: {c.a.name} vs {c.b.name}", ""]
    head = ["Parameter", _text(c.a.name), _text(c.b.name), "A / B"]
    lines += ["| " + " | ".join(head) + " |", "|---|---|---|---|"]
    for r in c.rows:
        lines.append(f"| {r.parameter} | {_text(r.a)} | {_text(r.b)} | {r.ratio_text} |")
    return "\n".join([*lines, "", c.summary]) + "\n"


def to_csv(c: AdapterComparison) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["parameter", "a", "b", "ratio"])
    for r in c.rows:
        w.writerow(
            [
                r.parameter,
                "" if r.a is None else r.a,
                "" if r.b is None else r.b,
                "" if r.ratio is None else round(r.ratio, 4),
            ]
        )
    return buf.getvalue()


def to_json(c: AdapterComparison) -> str:
    data = {
        "a": c.a.to_dict(),
        "b": c.b.to_dict() if c.b is not None else None,
        "rows": [{"parameter": r.parameter, "a": r.a, "b": r.b, "ratio": r.ratio} for r in c.rows],
        "summary": c.summary,
    }
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


RENDERERS = {"md": to_markdown, "csv": to_csv, "json": to_json}
