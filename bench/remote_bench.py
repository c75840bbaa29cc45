"""Remote endpoints: one battery through the dispatcher on one local mlx_lm.server vs two.

Setup: a random-weight gemma3_text model (hidden 128, 4 layers), one mlx_lm.server process for
the first run and two (same model, two ports) for the second, all on 127.0.0.1; every endpoint
takes one request at a time; greedy, a fixed number of new tokens per probe (EOS banned with
logit_bias, so both runs generate the same amount). Each server answers one warm-up request
before timing. Prints both times, how many responses agree, and a last line `ratio N.NN`
(one-server seconds / two-server seconds; above 1 means two endpoints finished sooner).

This machine has 2 CPU cores: the two servers compete for them (and with this process), so
the ratio here is a floor; on separate machines each endpoint brings its own compute.

    .venv/bin/python bench/remote_bench.py [--probes 16] [--tokens 48]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("MLX_DISABLE_COMPILE", "1")

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from lemlab.core.engine_api import GenStats, Sampler  # noqa: E402
from lemlab.core.remote.dispatch import RetryPolicy, run_units  # noqa: E402
from lemlab.engine.mlx_server import LocalServer, start_mlx_server  # noqa: E402
from lemlab.engine.remote import RemoteEngine, complete, remote_worker  # noqa: E402

TOPICS = [
    "honesty",
    "consent",
    "privacy",
    "refusal",
    "harm",
    "autonomy",
    "fairness",
    "memory",
    "trust",
    "secrets",
    "power",
    "care",
    "dissent",
    "duty",
    "repair",
    "limits",
]
NO_EOS = {"logit_bias": {"1": -1000.0, "5": -1000.0}}


def battery(n: int) -> list[tuple[str, str]]:
    return [
        (
            f"B{i:02d}",
            f"Explain, with one example, what {TOPICS[i % len(TOPICS)]} asks of an "
            f"assistant in situation {i}.",
        )
        for i in range(n)
    ]


def engines(servers: list[LocalServer]) -> list[RemoteEngine]:
    out = []
    for srv in servers:
        engine = RemoteEngine({}, extra_body=NO_EOS)
        engine.load(srv.spec).result(timeout=60)
        complete(engine, [{"role": "user", "content": "warm up"}], Sampler(max_tokens=4))
        out.append(engine)
    return out


def run(
    servers: list[LocalServer], probes: list[tuple[str, str]], tokens: int
) -> tuple[float, dict[str, str]]:
    sampler = Sampler(max_tokens=tokens)

    def ask(engine: RemoteEngine, probe: tuple[str, str]) -> tuple[str, GenStats]:
        return complete(engine, [{"role": "user", "content": probe[1]}], sampler)

    workers = [remote_worker(e, ask, max_in_flight=1) for e in engines(servers)]
    t0 = time.perf_counter()
    texts = {p[0]: text for p, (text, _) in run_units(probes, workers, retry=RetryPolicy())}
    return time.perf_counter() - t0, texts


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--probes", type=int, default=16)
    ap.add_argument("--tokens", type=int, default=48)
    args = ap.parse_args()
    probes = battery(max(12, args.probes))
    from lemlab.engine.tiny import build_tiny_model

    with tempfile.TemporaryDirectory() as tmp:
        model = build_tiny_model(Path(tmp) / "model", hidden=128, layers=4)
        env = {"HF_HUB_CACHE": str(Path(tmp) / "hub")}
        (Path(tmp) / "hub").mkdir()
        servers = [start_mlx_server(model, env=env) for _ in range(2)]
        try:
            one_s, one = run(servers[:1], probes, args.tokens)
            two_s, two = run(servers, probes, args.tokens)
        finally:
            for srv in servers:
                srv.stop()
    same = sum(one[k] == two[k] for k in one)
    print(
        f"battery: {len(probes)} probes x {args.tokens} tokens, greedy, 1 request in flight per server"
    )
    print(f"one server : {one_s:7.2f} s")
    print(f"two servers: {two_s:7.2f} s")
    print(f"responses identical: {same}/{len(probes)}")
    print(f"cpu cores: {os.cpu_count()} (two servers on one machine compete for them)")
    print(f"ratio {one_s / two_s:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
