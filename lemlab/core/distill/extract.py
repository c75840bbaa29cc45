"""Self-distill output -> mlx-lm chat training data: tolerant reading, dedup, order, split, stats.

A (probe id, sample_idx) pair is one sample: a repeated pair (two writers on one file) is
reported as a malformed line and read once. Dedup modes (per probe id): `best` keeps the
highest-scoring kept sample (ties: the lowest sample_idx), `first` the first kept sample in file
order, `all` every kept sample. Output is sorted by probe id (then sample_idx), so reruns are
byte-identical and diffable.

Split: a seeded shuffle picks which examples go to validation; training gets floor(n *
train_fraction) of them (as the research's int(n * 0.9)), validation the rest, but at least one
when there are two or more examples and never all of them (mlx-lm needs a non-empty
valid.jsonl to train; a single example cannot be split). Each part is then written in probe-id
order, like the unsplit output. Headless: no mlx.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lemlab.core.atomic import write_text_atomic
from lemlab.core.errors import LemlabError
from lemlab.core.files.user_files import read_file_bytes

DEDUP_MODES = ("best", "first", "all")
DEFAULT_SPLIT = 0.9
DEFAULT_SPLIT_SEED = 42


@dataclass(frozen=True)
class KeptSample:
    probe_id: str
    sample_idx: int
    lek_score: float
    category: str
    messages: list[dict[str, str]]
    line: int  # where it was read (file order)

    def record(self) -> dict[str, Any]:
        return {"messages": self.messages}


@dataclass
class DistillFile:
    path: Path
    samples: list[KeptSample] = field(default_factory=list)
    summary: dict[str, Any] | None = None
    errors: list[str] = field(default_factory=list)  # "file:line: reason"


def read_distill(path: str | Path) -> DistillFile:
    """Every well-formed training line; malformed lines are reported (file:line) and skipped."""
    p = Path(path)
    text = read_file_bytes(p, str(p), "self-distill JSONL file").decode("utf-8", errors="replace")
    out = DistillFile(p)
    seen: dict[tuple[str, int], int] = {}  # (probe id, sample idx) -> line
    for n, raw in enumerate(text.split("\n"), 1):  # not splitlines(): U+2028 is legal in JSON
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw)
        except json.JSONDecodeError as exc:
            out.errors.append(f"{p}:{n}: invalid JSON ({exc.msg})")
            continue
        except RecursionError:
            out.errors.append(f"{p}:{n}: invalid JSON (nested too deeply)")
            continue
        kind = obj.get("type") if isinstance(obj, dict) else None
        if kind == "probe" and not out.samples:
            # A whole file of the wrong kind deserves one line, not one error per probe.
            raise LemlabError(
                f"{p} is an A/B run file (from `lemlab ab`), not self-distill output "
                "(from `lemlab distill`)"
            )
        if kind == "summary":
            out.summary = obj
            continue
        sample, reason = _kept_sample(obj, n)
        if sample is None:
            out.errors.append(f"{p}:{n}: {reason}")
            continue
        key = (sample.probe_id, sample.sample_idx)
        if key in seen:  # one sample written twice (two runs on one file): train on it once
            out.errors.append(
                f"{p}:{n}: probe {key[0]!r} sample {key[1]} repeats line {seen[key]} (duplicate)"
            )
            continue
        seen[key] = n
        out.samples.append(sample)
    if not out.samples and out.summary is None and out.errors:
        # No line of it is self-distill output: one line, not a warning per malformed line.
        more = f" and {len(out.errors) - 1} more" if len(out.errors) > 1 else ""
        raise LemlabError(
            f"{p}: not self-distill output (line {out.errors[0].removeprefix(f'{p}:')}{more})"
        )
    return out


def _kept_sample(obj: Any, n: int) -> tuple[KeptSample | None, str]:
    if not isinstance(obj, dict):
        return None, "not a JSON object"
    if obj.get("type") != "training":
        return None, f"unknown line type {obj.get('type')!r} (expected training or summary)"
    msgs = (
        (obj.get("training") or {}).get("messages")
        if isinstance(obj.get("training"), dict)
        else None
    )
    if not isinstance(msgs, list) or not msgs or not all(_is_message(m) for m in msgs):
        return None, "training.messages must be a list of {role, content} objects"
    if not any(m["role"] == "assistant" for m in msgs):
        return None, "training.messages has no assistant reply"
    meta = obj.get("meta")
    if not isinstance(meta, dict):
        return None, "missing meta"
    pid, idx, score = meta.get("probe_id"), meta.get("sample_idx"), meta.get("lek_score")
    if not isinstance(pid, str) or not pid:
        return None, "meta.probe_id must be a non-empty string"
    if not isinstance(idx, int) or isinstance(idx, bool):
        return None, "meta.sample_idx must be an integer"
    if not isinstance(score, int | float) or isinstance(score, bool):
        return None, "meta.lek_score must be a number"
    category = str(meta.get("category") or "uncategorised").lower()
    messages = [{"role": m["role"], "content": m["content"]} for m in msgs]
    return KeptSample(pid, idx, float(score), category, messages, n), ""


def _is_message(m: Any) -> bool:
    return (
        isinstance(m, dict)
        and m.get("role") in ("system", "user", "assistant")
        and isinstance(m.get("content"), str)
    )


def dedup(samples: Iterable[KeptSample], mode: str = "best") -> list[KeptSample]:
    """The examples to train on, sorted by (probe id, sample_idx)."""
    if mode not in DEDUP_MODES:
        raise LemlabError(f"unknown dedup mode {mode!r} (use {', '.join(DEDUP_MODES)})")
    items = list(samples)
    if mode == "all":
        chosen = items
    else:
        pick: dict[str, KeptSample] = {}
        for s in sorted(items, key=lambda s: s.line):
            have = pick.get(s.probe_id)
            if have is None or (mode == "best" and _better(s, have)):
                pick[s.probe_id] = s
        chosen = list(pick.values())
    return sorted(chosen, key=lambda s: (s.probe_id, s.sample_idx, s.line))


def _better(a: KeptSample, b: KeptSample) -> bool:
    return a.lek_score > b.lek_score or (a.lek_score == b.lek_score and a.sample_idx < b.sample_idx)


def split_examples(
    examples: Sequence[KeptSample],
    train_fraction: float = DEFAULT_SPLIT,
    seed: int = DEFAULT_SPLIT_SEED,
) -> tuple[list[KeptSample], list[KeptSample]]:
    """(train, valid), each in the input order (see the module docstring for the counts)."""
    if not 0 < train_fraction < 1:
        raise LemlabError(
            f"--split must be between 0 and 1 (the train fraction), got {train_fraction}"
        )
    n = len(examples)
    n_valid = valid_count(n, train_fraction)
    order = list(range(n))
    random.Random(seed).shuffle(order)
    valid_idx = set(order[:n_valid])
    train = [e for i, e in enumerate(examples) if i not in valid_idx]
    valid = [e for i, e in enumerate(examples) if i in valid_idx]
    return train, valid


def valid_count(n: int, train_fraction: float) -> int:
    if n < 2:
        return 0
    n_train = int(n * train_fraction + 1e-9)  # the epsilon keeps 10 * 0.9 at 9 despite rounding
    return min(max(1, n - n_train), n - 1)


def jsonl_text(examples: Iterable[KeptSample]) -> str:
    return "".join(json.dumps(e.record(), ensure_ascii=False) + "\n" for e in examples)


def write_examples(output: str | Path, examples: Sequence[KeptSample]) -> Path:
    target = Path(output)
    if target.is_dir():
        raise LemlabError(f"{target} is a folder: give a .jsonl file (or use --split for a folder)")
    write_text_atomic(target, jsonl_text(examples))
    return target


def write_split(
    folder: str | Path, train: Sequence[KeptSample], valid: Sequence[KeptSample]
) -> tuple[Path, Path]:
    out = Path(folder)
    if out.exists() and not out.is_dir():
        raise LemlabError(f"{out} is a file: with --split the output is a folder")
    write_text_atomic(out / "train.jsonl", jsonl_text(train))
    write_text_atomic(out / "valid.jsonl", jsonl_text(valid))
    return out / "train.jsonl", out / "valid.jsonl"


# --- stats -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExtractStats:
    generated: int | None  # from the summary line; None when the file has none
    kept: int
    keep_rate: float | None
    examples: int
    probes: int
    score_min: float | None
    score_avg: float | None
    score_max: float | None
    categories: dict[str, int]  # examples per category, most first (ties by name)
    train: int | None = None
    valid: int | None = None

    def lines(self) -> list[str]:
        gen = "?" if self.generated is None else str(self.generated)
        rate = "?" if self.keep_rate is None else f"{self.keep_rate:.1f}%"
        out = [
            f"generated   {gen}",
            f"kept        {self.kept}",
            f"keep rate   {rate}",
            f"examples    {self.examples}",
            f"probes      {self.probes}",
        ]
        if self.score_avg is not None:
            out.append(
                f"score       min {self.score_min:.2f}  avg {self.score_avg:.2f}  max {self.score_max:.2f}"
            )
        if self.train is not None:
            out.append(f"split       train {self.train}  valid {self.valid}")
        out.append("categories")
        out += [f"  {name:<20} {count}" for name, count in self.categories.items()]
        return out


def compute_stats(df: DistillFile, examples: Sequence[KeptSample]) -> ExtractStats:
    s: dict[str, Any] = df.summary or {}
    raw_generated, raw_kept, raw_rate = (
        s.get("total_generated"),
        s.get("total_kept"),
        s.get("keep_rate"),
    )
    generated: int | None = raw_generated if isinstance(raw_generated, int) else None
    kept: int = raw_kept if isinstance(raw_kept, int) else len(df.samples)
    rate: float | None = raw_rate if isinstance(raw_rate, int | float) else None
    if rate is None and generated:
        rate = round(100.0 * kept / generated, 1)
    scores = [e.lek_score for e in examples]
    cats = Counter(e.category for e in examples)
    ordered = dict(sorted(cats.items(), key=lambda kv: (-kv[1], kv[0])))
    return ExtractStats(
        generated,
        kept,
        rate,
        len(examples),
        len({e.probe_id for e in examples}),
        min(scores) if scores else None,
        round(sum(scores) / len(scores), 2) if scores else None,
        max(scores) if scores else None,
        ordered,
    )
