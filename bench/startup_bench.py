"""Startup cost: `lemlab --help` against a bare `import mlx_lm`, measured side by side.

The CLI imports mlx_lm only inside the commands that need a model, so `--help` should cost a
fraction of the import. Prints the median of several runs of each and `ratio N.NN`
(import_mlx_lm / help: above 1 means --help is that many times faster than the import alone).

    .venv/bin/python bench/startup_bench.py [--runs 7]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

HELP = [sys.executable, "-m", "lemlab", "--help"]
IMPORT_MLX_LM = [sys.executable, "-c", "import mlx_lm"]


def wall_time(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="repetitions of each command")
    args = parser.parse_args()
    # Alternate the two commands so drifts in machine load hit both; one warm-up run each.
    help_times, import_times = [], []
    wall_time(HELP)
    wall_time(IMPORT_MLX_LM)
    for _ in range(max(1, args.runs)):
        help_times.append(wall_time(HELP))
        import_times.append(wall_time(IMPORT_MLX_LM))
    help_s = statistics.median(help_times)
    import_s = statistics.median(import_times)
    print(f"lemlab --help      median {help_s * 1000:8.1f} ms  ({len(help_times)} runs)")
    print(f"import mlx_lm      median {import_s * 1000:8.1f} ms  ({len(import_times)} runs)")
    print(f"ratio {import_s / help_s:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
