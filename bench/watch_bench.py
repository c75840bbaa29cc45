"""How much slower is `lemlab watch --once` than just counting the lines of the same file?

Writes a 100,000-line mlx-lm stdout log (0.32 table format with ANSI codes) and a
100,000-line events.jsonl, then times, side by side in this run:
  - a plain Python line count (the `wc -l`-like floor),
  - `watch --once` in-process (lemlab.commands.watch.summary_text),
  - `lemlab watch --once` as a subprocess (includes interpreter start-up),
and prints each time and the ratio to the line count.

    .venv/bin/python bench/watch_bench.py [--lines N]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from lemlab.commands.watch import summary_text


def write_log(path: Path, n: int) -> None:
    rows = []
    for i in range(1, n + 1):
        if i % 10 == 0:
            rows.append(
                f"  \x1b[38;5;244m{i:>4}\x1b[0m    \x1b[1;35mval\x1b[0m \x1b[1m{5 - i / n:>5.3f}\x1b[0m"
                "    \x1b[38;5;244m0.03s\x1b[0m"
            )
        else:
            rows.append(
                f"  \x1b[38;5;244m{i:>4}\x1b[0m    \x1b[1;32m{6 - i / n:>5.3f} ▼\x1b[0m    "
                f"\x1b[1m{4321:>5,}\x1b[0m    \x1b[38;5;244m{i * 0.09:>5.1f}k\x1b[0m"
            )
    path.write_text("\n".join(rows) + "\n")


def write_events(path: Path, n: int) -> None:
    with open(path, "w") as fh:
        fh.write(
            json.dumps({"event": "start", "ts": "2026-01-01T00:00:00+00:00", "total_iters": n})
            + "\n"
        )
        for i in range(1, n - 1):
            ts = f"2026-01-01T00:{(i // 60) % 60:02d}:{i % 60:02d}+00:00"
            if i % 10 == 0:
                obj = {
                    "event": "val",
                    "ts": ts,
                    "iteration": i,
                    "val_loss": 5 - i / n,
                    "val_time": 0.03,
                }
            else:
                obj = {
                    "event": "train",
                    "ts": ts,
                    "iteration": i,
                    "train_loss": 6 - i / n,
                    "learning_rate": 1e-5,
                    "iterations_per_second": 1.5,
                    "tokens_per_second": 4321.0,
                    "trained_tokens": i * 90,
                    "peak_memory": 18.2,
                }
            fh.write(json.dumps(obj) + "\n")
        fh.write(
            json.dumps({"event": "done", "ts": "2026-01-02T00:00:00+00:00", "iteration": n}) + "\n"
        )


def count_lines(path: Path) -> int:
    n = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            n += chunk.count(b"\n")
    return n


def best_of(fn, repeat: int = 3) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def bench(path: Path) -> None:
    floor = best_of(lambda: count_lines(path))
    inproc = best_of(lambda: summary_text(str(path)))
    cmd = [sys.executable, "-m", "lemlab", "watch", "--once", str(path)]
    sub = best_of(lambda: subprocess.run(cmd, capture_output=True, check=True), repeat=2)
    print(f"{path.name}: {count_lines(path):,} lines, {path.stat().st_size / 1e6:.1f} MB")
    print(f"  line count          {floor * 1000:8.1f} ms")
    print(f"  watch --once (fn)   {inproc * 1000:8.1f} ms   ratio {inproc / floor:6.1f}")
    print(f"  watch --once (proc) {sub * 1000:8.1f} ms   ratio {sub / floor:6.1f}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=100_000)
    n = ap.parse_args().lines
    with tempfile.TemporaryDirectory() as d:
        log, events = Path(d) / "train.log", Path(d) / "events.jsonl"
        write_log(log, n)
        write_events(events, n)
        bench(log)
        bench(events)


if __name__ == "__main__":
    main()
