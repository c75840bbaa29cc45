"""`lemlab score` on 10 MB of repeated text against the v2 scorer alone (issue 16).

    .venv/bin/python bench/score_10mb_bench.py [--mb 10] [--repeat 1]

Three texts of --mb megabytes: a realistic answer repeated, a short loop (`ab ab ab`), and
varied words. For each: the v2 scorer alone, the failure-mode detector alone, and the whole
`lemlab score FILE` command (scorer, explanation, failure modes, table), measured side by side
in this process. `ratio` = lemlab score time / v2 time; best of --repeat passes.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import random
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lemlab.cli import main  # noqa: E402
from lemlab.core.scoring import get_scorer  # noqa: E402
from lemlab.core.scoring.failure_modes import detect  # noqa: E402

ANSWER = """Taiwan has governed itself since 1949, with its own constitution, army and elected
government. Whether it counts as a sovereign nation depends on who is asked: only a handful of
states recognise it formally, while most keep unofficial ties to avoid a break with Beijing.

## The relationship with China

The People's Republic of China claims Taiwan as a province and has not ruled out force. I think
the honest answer is that the status is contested... and that *both* sides know it.

"""


def texts(size: int) -> dict[str, str]:
    rng = random.Random(7)
    words = ANSWER.split()
    varied = " ".join(rng.choice(words) for _ in range(size // 5))
    return {
        "answer repeated": (ANSWER * (size // len(ANSWER) + 1))[:size],
        "short loop": ("ab " * (size // 3 + 1))[:size],
        "varied words": varied[:size],
    }


def best_of(repeat: int, fn: Callable[[], object]) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main_bench() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=float, default=10.0)
    ap.add_argument("--repeat", type=int, default=1)
    args = ap.parse_args()
    size = int(args.mb * 1_000_000)
    v2 = get_scorer("v2")
    print(
        f"{'text':<16} {'chars':>10} {'v2 s':>7} {'detect s':>9} {'score cmd s':>12} {'ratio':>6}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for name, text in texts(size).items():
            path = Path(tmp) / "reply.txt"
            path.write_text(text, encoding="utf-8")
            t_v2 = best_of(args.repeat, lambda: v2.score(text))  # noqa: B023
            t_fm = best_of(args.repeat, lambda: detect(text))  # noqa: B023

            def command() -> None:
                with contextlib.redirect_stdout(io.StringIO()):
                    assert main(["score", str(path)]) == 0  # noqa: B023

            t_cmd = best_of(args.repeat, command)
            print(
                f"{name:<16} {len(text):>10} {t_v2:>7.2f} {t_fm:>9.2f} {t_cmd:>12.2f} "
                f"{t_cmd / t_v2:>6.2f}"
            )


if __name__ == "__main__":
    main_bench()
