"""`lemlab score [FILE|-]`: score one response text and show why each signal fired."""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from lemlab.core.errors import LemlabError
from lemlab.core.safe_text import visible, visible_json, visible_line
from lemlab.core.scoring import get_scorer
from lemlab.core.scoring.failure_modes import detect

PHRASES_SHOWN = 6


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "file",
        nargs="?",
        default="-",
        metavar="FILE",
        help="text file to score; '-' or nothing reads stdin",
    )
    p.add_argument("--scorer", default=None, help="scorer id: v2 (default), v2-distill, v0")
    p.add_argument("--prompt", default=None, help="the prompt, to check for topic evasion")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")


def run(args: argparse.Namespace) -> int:
    scorer = get_scorer(args.scorer)  # unknown id: one line listing the valid ids, exit 2
    text = read_text(args.file)
    result, explain = scorer.score_and_explain(text)
    points = scorer.points(result)
    modes = detect(text, args.prompt)
    if args.json:
        payload = {
            "scorer": scorer.id,
            "scorer_version": scorer.version,
            "scale": scorer.scale,
            "chars": len(text),
            "score": result,
            "points": points,
            "explain": explain,
            "failure_modes": [
                {"label": m.label, "evidence": m.evidence, "detail": m.detail} for m in modes
            ],
        }
        # The text is data: exact into a file or pipe, controls as JSON escapes on a terminal.
        out = json.dumps(payload, indent=2, ensure_ascii=False)
        print(visible_json(out) if sys.stdout.isatty() else out)
        return 0
    # The table is for reading only: controls in quoted phrases are always shown visibly.
    print(visible(render_table(scorer, result, points, explain)))
    print()
    print("failure modes:" + ("" if modes else " none"))
    for m in modes:
        print(f"  {visible_line(m.label)}: {visible_line(m.evidence)}")
    return 0


def read_text(name: str) -> str:
    if name == "-":
        if sys.stdin.isatty():
            raise LemlabError(
                "give a FILE to score, or pipe the text in (lemlab score - < reply.txt)"
            )
        raw = getattr(sys.stdin, "buffer", None)  # bytes: no newline translation (see below)
        if raw is None:
            return sys.stdin.read()
        try:
            return raw.read().decode("utf-8")
        except UnicodeDecodeError:
            raise LemlabError("stdin is not UTF-8 text") from None
    path = Path(name)
    try:
        # The scorers read the text untouched: a CR or CR LF stays as the model wrote it
        # (read_text would turn both into LF and change creative_form's blank-line count).
        return path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise LemlabError(f"no such file: {name}") from None
    except UnicodeDecodeError:
        raise LemlabError(f"{name} is not UTF-8 text") from None
    except OSError as exc:
        raise LemlabError(f"cannot read {name}: {exc.strerror or exc}") from None


def render_table(
    scorer: Any, result: dict[str, Any], points: dict[str, float], explain: dict[str, list[str]]
) -> str:
    lines = [
        f"scorer {scorer.id} ({scorer.title}; scale {scorer.scale})",
        f"lek_score {result['lek_score']}",
        "",
        f"{'signal':<20} {'value':>6} {'points':>7}  fired on",
    ]
    for name, pts in points.items():
        value = result[name]
        lines.append(f"{name:<20} {value:>6g} {pts:>+7.2f}  {phrases(explain.get(name, []))}")
    return "\n".join(lines)


def phrases(found: list[str]) -> str:
    """Distinct phrases with counts, most frequent first, at most PHRASES_SHOWN of them."""
    counts = Counter(found)
    shown = [f"{p!r} x{n}" if n > 1 else repr(p) for p, n in counts.most_common(PHRASES_SHOWN)]
    more = len(counts) - len(shown)
    return ", ".join(shown) + (f" (+{more} more)" if more > 0 else "")
