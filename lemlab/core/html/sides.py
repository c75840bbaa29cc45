"""What an HTML A/B report is built from, the way `lemlab report --format html` builds it: the
RunReport and, per comparison, the two sides whose responses the page shows; the session's
overrides as the page's notes. The CLI's and the TUI's exports then draw the same page."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from lemlab.core.ab.abfile import ABRun
from lemlab.core.ab.overrides import overrides_for_run
from lemlab.core.ab.report import RunReport, run_report, vs_report
from lemlab.core.html.report import OverrideNote, Side
from lemlab.core.sessions import Session


def report_and_sides(
    new: ABRun, old: ABRun | None = None, condition: str | None = None, reference: str | None = None
) -> tuple[RunReport, list[tuple[Side, Side]]]:
    """run_report(new) (or vs_report(old, new) when `old` is given) and one (base, other) pair of
    sides per comparison, in the report's order."""
    if old is not None:
        report = vs_report(old, new, condition, reference)
        new_name = condition or old.baseline
        return report, [(Side(old, reference or new_name), Side(new, new_name))]
    report = run_report(new, condition, reference)
    base = reference or new.baseline
    others = [condition] if condition else [n for n in new.condition_names if n != base]
    return report, [(Side(new, base), Side(new, o)) for o in others]


def override_notes(session: Session, run_path: str | Path) -> dict[tuple[str, str], OverrideNote]:
    """(probe_id, condition) -> the note the page shows for this run's latest override."""
    return {
        cell: OverrideNote(o.corrected, o.original, o.reason)
        for cell, o in overrides_for_run(session, run_path).items()
    }


def generated_now() -> str:
    """The page's "generated" stamp (UTC: the reader may be anywhere)."""
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
