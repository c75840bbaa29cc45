"""Score overrides: a researcher's correction of one stored score (run file, probe, condition),
kept in the session's `[[overrides]]` array. Headless: no textual / mlx imports.

The run file is never changed: an override sits beside it, so the scorer's number and the human
one both stay visible. For one (run, probe, condition) the latest override wins; removing one
drops every override of that cell.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lemlab.core.errors import LemlabError
from lemlab.core.sessions import Session

KIND = "overrides"
REASON_LIMIT = 500  # one line in a table; a longer note belongs in a file


def _now() -> str:
    return datetime.now(UTC).isoformat()


def run_key(path: str | Path) -> str:
    """How a run file is named in overrides: its absolute path (so two spellings of one file agree)."""
    p = Path(path).expanduser()
    return str(p.resolve()) if p.exists() else str(p.absolute())


@dataclass(frozen=True)
class Override:
    run: str  # run_key() of the A/B file
    probe_id: str
    condition: str
    original: float  # the score the scorer gave
    corrected: float  # the score the researcher says is right
    reason: str
    ts: str = field(default_factory=_now)

    @property
    def cell(self) -> tuple[str, str]:
        return (self.probe_id, self.condition)

    def to_record(self) -> dict[str, Any]:
        return {
            "run": self.run,
            "probe_id": self.probe_id,
            "condition": self.condition,
            "original": self.original,
            "corrected": self.corrected,
            "reason": self.reason,
            "ts": self.ts,
        }

    @classmethod
    def from_record(cls, rec: Mapping[str, Any]) -> Override:
        """LemlabError (one line) when a stored record is damaged."""
        try:
            return cls(
                run=str(rec["run"]),
                probe_id=str(rec["probe_id"]),
                condition=str(rec["condition"]),
                original=float(rec["original"]),
                corrected=float(rec["corrected"]),
                reason=str(rec.get("reason", "")),
                ts=str(rec.get("ts", "")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise LemlabError(f"damaged override record ({exc}): {dict(rec)!r}") from None


def parse_corrected(text: str) -> float:
    """The corrected value as typed in a dialog; LemlabError names what is wrong."""
    try:
        value = float(text.strip())
    except ValueError:
        raise LemlabError(f"corrected score {text.strip()!r} is not a number") from None
    if not math.isfinite(value):
        raise LemlabError("corrected score must be a finite number")
    return round(value, 2)


def make_override(
    run: str | Path,
    probe_id: str,
    condition: str,
    original: float,
    corrected: float | str,
    reason: str,
) -> Override:
    """Validated override (reason required: an unexplained correction cannot be reviewed)."""
    value = (
        parse_corrected(corrected)
        if isinstance(corrected, str)
        else parse_corrected(str(corrected))
    )
    reason = " ".join(reason.split())
    if not reason:
        raise LemlabError("give a reason for the override")
    if len(reason) > REASON_LIMIT:
        raise LemlabError(f"reason is longer than {REASON_LIMIT} characters")
    return Override(run_key(run), probe_id, condition, round(float(original), 2), value, reason)


def add_override(session: Session, override: Override) -> None:
    session.add_record(KIND, override.to_record())


def remove_override(session: Session, run: str | Path, probe_id: str, condition: str) -> int:
    """Drop every override of one cell; returns how many were dropped."""
    key = run_key(run)
    kept, dropped = [], 0
    for rec in session.extra.get(KIND, []):
        same = (rec.get("run"), rec.get("probe_id"), rec.get("condition")) == (
            key,
            probe_id,
            condition,
        )
        dropped += same
        if not same:
            kept.append(rec)
    session.extra[KIND] = kept
    return dropped


def overrides_for_run(session: Session, run: str | Path) -> dict[tuple[str, str], Override]:
    """(probe_id, condition) -> the latest override for that cell of this run. Damaged records
    are skipped (they stay in the file untouched)."""
    key = run_key(run)
    return latest(o for o in _parsed(session.records(KIND)) if o.run == key)


def latest(items: Iterable[Override]) -> dict[tuple[str, str], Override]:
    out: dict[tuple[str, str], Override] = {}
    for o in items:
        out[o.cell] = o  # records are in the order they were made: the last one wins
    return out


def _parsed(records: Iterable[Mapping[str, Any]]) -> Iterable[Override]:
    for rec in records:
        try:
            yield Override.from_record(rec)
        except LemlabError:
            continue
