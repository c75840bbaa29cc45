"""A small battery after each stage of a curriculum or phase of a pipeline (the `[eval]` table),
so each stage's scores stand beside its loss:

    [eval]
    prompts = "ccp6"      # battery: shipped name or a file path (relative to the plan file)
    limit = 6             # the first N probes (0 = all)
    max_tokens = 128
    scorer = "v2"

Each stage's run is an ordinary A/B file, `NN-name/eval.jsonl`, written by `lemlab ab` with two
conditions: `baseline` (the weights the stage started from) and `trained` (the same + the
stage's adapter), so the score change belongs to that stage alone. Headless: no mlx.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lemlab.core.errors import LemlabError
from lemlab.core.files.user_files import check_types, reject_unknown
from lemlab.core.training.plan_files import looks_like_path

EVAL_FILE = "eval.jsonl"
TRAINED = "trained"  # the condition name of base + the stage's adapter
_TYPES: dict[str, type] = {"prompts": str, "limit": int, "max_tokens": int, "scorer": str}


@dataclass(frozen=True)
class EvalSettings:
    prompts: str  # a battery name, or an absolute path
    limit: int = 0
    max_tokens: int = 128
    scorer: str = "v2"

    def describe(self) -> str:
        probes = (
            ("first probe" if self.limit == 1 else f"first {self.limit} probes")
            if self.limit
            else "all probes"
        )
        return (
            f"battery {Path(self.prompts).name} ({probes}, {self.max_tokens} tokens, {self.scorer})"
        )


def parse_eval(raw: Any, where: str, base: Path) -> EvalSettings | None:
    """The plan's [eval] table (None when absent), paths made absolute against `base`."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise LemlabError(f"{where}: eval must be a table ([eval])")
    reject_unknown(raw, _TYPES, f"{where} [eval]", "eval setting")
    values = check_types(raw, _TYPES, f"{where} [eval]")
    prompts = values.get("prompts")
    if not isinstance(prompts, str) or not prompts.strip():
        raise LemlabError(f"{where} [eval]: prompts (a battery) is required")

    if looks_like_path(prompts):
        values["prompts"] = str((base / Path(prompts).expanduser()).resolve())
    ev = EvalSettings(**values)
    if ev.limit < 0:
        raise LemlabError(f"{where} [eval]: limit must be 0 (all) or more")
    if ev.max_tokens < 1:
        raise LemlabError(f"{where} [eval]: max_tokens must be at least 1")
    return ev


def eval_command(ev: EvalSettings, model: Path, adapter: Path, out: Path) -> list[str]:
    """`lemlab ab` for one stage (no shell); --resume continues an interrupted evaluation."""
    cmd = [
        sys.executable,
        "-m",
        "lemlab",
        "ab",
        "--model",
        str(model),
        "--adapter",
        f"{TRAINED}={adapter}",
        "--prompts",
        ev.prompts,
        "--output",
        str(out),
        "--max-tokens",
        str(ev.max_tokens),
        "--scorer",
        ev.scorer,
    ]
    if ev.limit:
        cmd += ["--limit", str(ev.limit)]
    if out.exists():
        cmd.append("--resume")
    return cmd


@dataclass(frozen=True)
class StageScores:
    before: float  # avg_lek of the weights the stage started from
    after: float  # avg_lek with the stage's adapter
    probes: int

    @property
    def delta(self) -> float:
        return round(self.after - self.before, 2)

    def line(self) -> str:
        return f"battery {self.before:.2f} -> {self.after:.2f} ({self.delta:+.2f}, {self.probes} probes)"


def read_scores(path: Path) -> StageScores | None:
    """The before/after averages from an eval file's summary line (None if it has none)."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return None
    for text in reversed(lines):
        try:
            rec = json.loads(text)
        except ValueError:
            continue
        if isinstance(rec, dict) and rec.get("type") == "summary":
            avg = {
                c.get("name"): c.get("avg_lek")
                for c in rec.get("conditions", [])
                if isinstance(c, dict)
            }
            before, after = avg.get("baseline"), avg.get(TRAINED)
            if isinstance(before, int | float) and isinstance(after, int | float):
                return StageScores(float(before), float(after), int(rec.get("total_probes", 0)))
            return None
    return None
