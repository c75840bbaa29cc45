"""Battery table: time to load + render a 101-probe x 3-condition A/B file in the Battery pane
(headless run_test, until the table holds every row and a frame is drawn) next to the time to
just parse the file, and the time to page down through the whole table.

    .venv/bin/python bench/table_bench.py [--repeats 5]

The file is built deterministically: 303 responses of 2-4 KB each, scored with the v2 scorer.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import tempfile
import time
from pathlib import Path

WORDS = (
    "the model weighs each claim and names what it does not know consent matters because "
    "people decide for themselves however history is contested so a careful answer keeps "
    "several views in sight dignity autonomy I believe we should imagine the tension"
).split()
CONDITIONS = ("baseline", "ethics", "json")


def response(rng: random.Random) -> str:
    """2-4 KB of paragraphs of plain words, some punctuation and questions."""
    target = rng.randint(2048, 4096)
    paras: list[str] = []
    size = 0
    while size < target:
        para = " ".join(rng.choice(WORDS) for _ in range(rng.randint(30, 80))).capitalize() + "."
        if rng.random() < 0.3:
            para += " Why does it matter?"
        paras.append(para)
        size += len(para) + 2
    return "\n\n".join(paras)[:target]


def build_file(path: Path, probes: int = 101) -> int:
    from lemlab.core.ab import abfile
    from lemlab.core.scoring import get_scorer

    v2, rng = get_scorer("v2"), random.Random(0)
    lines = []
    for i in range(probes):
        conds = {}
        for c in CONDITIONS:
            text = response(rng)
            conds[c] = abfile.condition_entry(text, v2.score(text), 12.3)
        lines.append(
            abfile.probe_line(
                f"P{i + 1:03d}_BENCH",
                f"cat{i % 7}",
                f"Prompt {i}?",
                conds,
                ts="2026-02-19T10:11:12+00:00",
                scorer="v2",
            )
        )
    summary = abfile.summarize(
        lines, "bench", 100.0, 1024, list(CONDITIONS), ts="2026-02-19T10:11:12+00:00"
    )
    path.write_text(
        "".join(abfile.dumps_line(x) + "\n" for x in [*lines, summary]), encoding="utf-8"
    )
    return sum(len(c["response"]) for x in lines for c in x["conditions"].values())


def time_parse(path: Path) -> float:
    from lemlab.core.ab import abfile
    from lemlab.core.ab.score_table import table_from_run

    t0 = time.perf_counter()
    table_from_run(abfile.read_ab(path))
    return time.perf_counter() - t0


async def time_pane(path: Path, root: Path) -> tuple[float, float, int]:
    """(load + render seconds, page-down-to-end seconds, rows shown)."""
    from lemlab.core.sessions import Session
    from lemlab.engine.fake import FakeEngine
    from lemlab.tui.app import LemlabApp
    from lemlab.tui.services import Settings

    settings = Settings(sessions_dir=root / "sessions", scan_hf_cache=False)
    app = LemlabApp(FakeEngine(), settings=settings, session=Session(name="bench"))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        app.action_show_tab("battery")
        await pilot.pause()
        pane = app.query_one("#battery-pane")
        table = pane.grid.table
        t0 = time.perf_counter()
        pane.open_run(path)
        while table.row_count < 101:
            await pilot.pause(0.001)
        await pilot.pause()  # one drawn frame
        load = time.perf_counter() - t0
        table.focus()
        t1 = time.perf_counter()
        while table.cursor_row < table.row_count - 1:
            await pilot.press("pagedown")
        await pilot.pause()
        scroll = time.perf_counter() - t1
        return load, scroll, table.row_count


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        os.environ["LEMLAB_HOME"] = str(root / "home")
        path = root / "bench-run.jsonl"
        chars = build_file(path)
        size = path.stat().st_size
        parse = [time_parse(path) for _ in range(args.repeats)]
        pane = [asyncio.run(time_pane(path, root)) for _ in range(args.repeats)]
    parse_s = statistics.median(parse)
    load_s = statistics.median(p[0] for p in pane)
    scroll_s = statistics.median(p[1] for p in pane)
    print(
        f"file: 101 probes x 3 conditions, {chars / 1024:.0f} KiB of responses, "
        f"file {size / 1024:.0f} KiB"
    )
    print(f"parse only (read_ab + score table), median of {args.repeats}: {parse_s * 1000:.1f} ms")
    print(f"load + render in the pane (run_test), median of {args.repeats}: {load_s * 1000:.1f} ms")
    print(f"ratio render / parse: {load_s / parse_s:.1f}x")
    print(f"page down through all {pane[0][2]} rows: {scroll_s * 1000:.1f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
