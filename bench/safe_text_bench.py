"""Display safety cost: lemlab.core.safe_text.visible against str.translate with the same table,
side by side in one process, on 1 MB of real-looking reply text (mixed scripts) with and without
a few control bytes, and on text dense with ESC sequences. Each case is checked to give the same
string both ways. The last line is `ratio N.NN` (translate seconds / visible seconds, summed over
the cases): above 1 means visible is the faster one.

    .venv/bin/python bench/safe_text_bench.py [--mb 1] [--repeat 5]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lemlab.core.safe_text import TEXT_TABLE, visible  # noqa: E402

SENTENCE = "The model weighs each claim — Grüße, 世界, فارسی — and names what it does not know. "


def _best(fn, text: str, repeat: int) -> float:  # type: ignore[no-untyped-def]
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn(text)
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=float, default=1.0)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    size = int(args.mb * 1_000_000)
    clean = (SENTENCE * (size // len(SENTENCE) + 1))[:size]
    cases = {
        "clean": clean,
        "a few controls": clean[: size // 2] + "\x1b[2J\x04\x1c" + clean[size // 2 :],
        "dense ESC": ("\x1b[31mred\x1b[0m " * (size // 13 + 1))[:size],
    }
    total_v = total_t = 0.0
    for name, text in cases.items():
        assert visible(text) == text.translate(TEXT_TABLE)  # no CR LF in these texts
        v = _best(visible, text, args.repeat)
        t = _best(lambda s: s.translate(TEXT_TABLE), text, args.repeat)
        total_v, total_t = total_v + v, total_t + t
        print(
            f"{name:<15} visible {v * 1000:8.2f} ms   translate {t * 1000:8.2f} ms   ratio {t / v:6.2f}"
        )
    print(f"ratio {total_t / total_v:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
