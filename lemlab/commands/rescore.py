"""`lemlab rescore FILE...`: recompute every stored score in A/B JSONL files with one scorer.

Shows stored vs new score per probe and condition and the recomputed summary; --out writes the
rescored file (a folder when several inputs are given): an existing file only with --force, an
input never (the stored scores are what the rescore compares against). Bad lines are reported as
`file:line: reason` on stderr and skipped; the exit status is then 1.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from lemlab.core.ab.abfile import read_ab_run, rescore_run, write_ab
from lemlab.core.errors import LemlabError
from lemlab.core.files.overwrite import check_outputs
from lemlab.core.safe_text import visible, visible_json, visible_line
from lemlab.core.scoring import get_scorer


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("files", nargs="+", metavar="FILE", help="A/B run JSONL files")
    p.add_argument("--scorer", default=None, help="scorer id: v2 (default), v2-distill, v0")
    p.add_argument(
        "--out", default=None, help="write the rescored file here (a folder with several inputs)"
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of tables")
    p.add_argument("--force", action="store_true", help="replace existing --out files")


def run(args: argparse.Namespace) -> int:
    scorer = get_scorer(args.scorer)
    targets = _targets(args.files, args.out)
    if args.out is not None:
        written = [t for t in targets if t is not None]
        check_outputs(written, [Path(f) for f in args.files], force=args.force, flag="--out")
    # A missing file, or one that is no A/B run at all, stops here, before any output.
    runs = [read_ab_run(f) for f in args.files]
    bad = False
    reports = []
    for source, run_, target in zip(args.files, runs, targets, strict=True):
        for issue in run_.issues:
            print(visible_line(issue), file=sys.stderr)  # quotes the file
        bad = bad or bool(run_.issues)
        new = rescore_run(run_, scorer.id)
        if target is not None:
            write_ab(target, new)
        reports.append(_file_report(source, run_, new, scorer.id, target))
    if args.json:
        out = json.dumps({"scorer": scorer.id, "files": reports}, indent=2, ensure_ascii=False)
        print(visible_json(out) if sys.stdout.isatty() else out)  # ids from the file
    else:
        print(visible("\n\n".join(_render(r) for r in reports)))
    return 1 if bad else 0


def _targets(files: list[str], out: str | None) -> list[Path | None]:
    if out is None:
        return [None] * len(files)
    dest = Path(out)
    if len(files) == 1 and not dest.is_dir():
        return [dest]
    if dest.exists() and not dest.is_dir():
        raise LemlabError(f"--out {out} must be a folder when rescoring several files")
    names = [Path(f).name for f in files]
    if len(set(names)) != len(names):
        raise LemlabError("several inputs share a file name: give them distinct names for --out")
    return [dest / name for name in names]


def _file_report(
    source: str, old: Any, new: Any, scorer_id: str, target: Path | None
) -> dict[str, Any]:
    rows = []
    for before, after in zip(old.probes, new.probes, strict=True):
        for name, cond in after.conditions.items():
            stored = before.conditions[name].lek_score
            rows.append(
                {
                    "id": after.id,
                    "condition": name,
                    "stored": stored,
                    "new": cond.lek_score,
                    "change": round(cond.lek_score - stored, 2),
                }
            )
    summary = new.effective_summary()
    return {
        "file": source,
        "stored_scorer": old.scorer,
        "scorer": scorer_id,
        "written": None if target is None else str(target),
        "summary_recomputed": summary.recomputed,
        "probes": rows,
        "summary": summary.to_dict(),
        "issues": [str(i) for i in old.issues],
    }


def _render(report: dict[str, Any]) -> str:
    lines = [f"{report['file']}  (stored: {report['stored_scorer']} -> {report['scorer']})"]
    width = max([len(r["id"]) for r in report["probes"]] + [5])
    cw = max([len(r["condition"]) for r in report["probes"]] + [9])
    lines.append(
        f"{'probe':<{width}}  {'condition':<{cw}}  {'stored':>8}  {'new':>8}  {'change':>8}"
    )
    for r in report["probes"]:
        lines.append(
            f"{r['id']:<{width}}  {r['condition']:<{cw}}  {r['stored']:>8.2f}  {r['new']:>8.2f}  "
            f"{r['change']:>+8.2f}"
        )
    lines.append(_summary_text(report["summary"], report["summary_recomputed"]))
    if report["written"]:
        lines.append(f"wrote {report['written']}")
    return "\n".join(lines)


def _summary_text(summary: dict[str, Any], recomputed: bool) -> str:
    head = "summary (recomputed: the file has no summary line)" if recomputed else "summary"
    parts = []
    for c in summary["conditions"]:
        text = f"{c['name']} avg {c['avg_lek']:.2f}"
        if "delta_vs_baseline" in c:
            text += (
                f" ({c['delta_vs_baseline']:+.2f}; improved {c['improved']}, "
                f"regressed {c['regressed']}, unchanged {c['unchanged']})"
            )
        parts.append(text)
    return f"{head}: " + "; ".join(parts) if parts else f"{head}: no probes"
