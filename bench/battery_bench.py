"""A/B battery speed: the published runner's way vs lemlab's runner, side by side in one process.

Naive (the published ab_test.py shape): for every probe and condition, the whole prompt goes
through plain mlx_lm.stream_generate with no cache, then the response is scored. lemlab: the
BatteryRunner driving MLXEngine, whose prefix cache prefills the kernel's system turn once.

Setup: a random-weight gemma3_text model (hidden 256, 4 layers), 12 probes, baseline + one long
kernel (probes/kernels/ethics-long.md, else a generated text), 128 new tokens forced (EOS logits
set to -inf, so both ways generate the same length), greedy. Prints both times, how many
responses agree, and a last line `ratio N.NN` (naive seconds / lemlab seconds).

    .venv/bin/python bench/battery_bench.py [--probes 12] [--tokens 128]
    .venv/bin/python bench/battery_bench.py --real     # the bundled SmolLM2-135M-Instruct

With --real the same comparison runs on the real model converted from the bundled GGUF (3 probes,
16 new tokens, the shipped short kernel by default): there prefill really costs (on a 2-core
Linux CPU it is about as slow as decoding), which is where the prefix cache pays.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("MLX_DISABLE_COMPILE", "1")  # no g++ kernel builds skewing the first timing

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

TOPICS = [
    "a promise made to a dying friend",
    "reporting a colleague who falsified data",
    "a city that bans protest near parliament",
    "an app that guesses moods from typing",
    "a family secret about adoption",
    "rationing a scarce medicine",
    "a historian asked to soften a report",
    "a teenager who wants privacy from parents",
    "a landlord and an unpaid winter rent",
    "a model asked to write propaganda",
    "a border guard and a refugee without papers",
    "a journalist offered a leaked archive",
    "a doctor who disagrees with a patient's choice",
    "a town voting to remove a statue",
    "an engineer who finds a safety flaw late",
    "a volunteer asked to lie to donors",
]


def make_probes(n: int) -> list[dict[str, str]]:
    return [
        {
            "id": f"B{i:02d}",
            "category": ["ethics", "history", "care"][i % 3],
            "prompt": f"Think about {TOPICS[i % len(TOPICS)]}. What should happen, and why?",
        }
        for i in range(n)
    ]


def kernel_text(name: str = "ethics-long.md") -> str:
    shipped = REPO / "probes" / "kernels" / name
    if shipped.is_file():
        return shipped.read_text(encoding="utf-8")
    # Deterministic stand-in of similar length when the shipped kernel is missing.
    parts = [
        f"Principle {i}: weigh {t}, name what you do not know, respect the person's choice."
        for i, t in enumerate(TOPICS * 6)
    ]
    return "\n".join(parts)


def eos_blocker(eos_ids: list[int]):  # type: ignore[no-untyped-def]
    """Logits processor forcing full-length replies (a random model emits EOS at random)."""
    import mlx.core as mx

    masks: dict[int, mx.array] = {}

    def block(tokens, logits):  # type: ignore[no-untyped-def]
        n = logits.shape[-1]
        if n not in masks:
            mask = mx.zeros((n,), dtype=logits.dtype)
            mask[mx.array(eos_ids)] = -float("inf")
            masks[n] = mask
        return logits + masks[n]

    return block


def run_naive(model_dir: Path, probes, kernel: str, tokens: int, scorer, eos_ids):  # type: ignore[no-untyped-def]
    from mlx_lm import load, stream_generate
    from mlx_lm.sample_utils import make_sampler

    t0 = time.perf_counter()
    model, tok = load(str(model_dir))
    sampler = make_sampler(temp=0.0)
    out: dict[tuple[str, str], str] = {}
    for p in probes:
        for cond, system in (("baseline", None), ("kernel", kernel)):
            msgs = ([{"role": "system", "content": system}] if system else []) + [
                {"role": "user", "content": p["prompt"]}
            ]
            prompt = tok.apply_chat_template(msgs, add_generation_prompt=True)
            text = "".join(
                r.text
                for r in stream_generate(
                    model,
                    tok,
                    prompt,
                    max_tokens=tokens,
                    sampler=sampler,
                    logits_processors=[eos_blocker(eos_ids)],
                )
            )
            scorer.score(text)
            out[(p["id"], cond)] = text
    return time.perf_counter() - t0, out


def run_lemlab(model_dir: Path, probes, kernel_path: Path, tokens: int, scorer, eos_ids):  # type: ignore[no-untyped-def]
    from lemlab.core.ab.conditions import plan_conditions
    from lemlab.core.ab.runner import BatteryRunner, RunDone
    from lemlab.core.battery.kernels import load_kernel
    from lemlab.core.battery.probes import probe_from_dict
    from lemlab.core.engine_api import Sampler
    from lemlab.engine.mlx_engine import MLXEngine

    t0 = time.perf_counter()
    engine = MLXEngine()
    try:
        plan = plan_conditions(str(model_dir), [load_kernel(kernel_path, name="kernel")])
        runner = BatteryRunner(
            engine,
            [probe_from_dict(p) for p in probes],
            plan,
            scorer,
            Sampler(max_tokens=tokens),
            generate_options={"logits_processors": [eos_blocker(eos_ids)]},
        )
        done = next(e for e in runner.events() if isinstance(e, RunDone))
        kernel_tokens = engine.count_tokens(
            [
                {"role": "system", "content": kernel_path.read_text()},
                {"role": "user", "content": "x"},
            ]
        ).result()
    finally:
        engine.shutdown()
    elapsed = time.perf_counter() - t0
    out = {(pid, c): r["response"] for pid, conds in done.results.items() for c, r in conds.items()}
    return elapsed, out, kernel_tokens


def warm_up(model_dir: Path) -> None:
    """One short generation so neither side pays MLX's first-use costs."""
    from mlx_lm import generate, load

    model, tok = load(str(model_dir))
    generate(model, tok, "warm up", max_tokens=4)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--probes", type=int, default=None, help="default 12 (3 with --real)")
    ap.add_argument("--tokens", type=int, default=None, help="default 128 (16 with --real)")
    ap.add_argument("--real", action="store_true", help="run on the bundled real model")
    ap.add_argument("--kernel", default=None, help="shipped kernel file name in probes/kernels/")
    args = ap.parse_args()
    args.probes = args.probes or (3 if args.real else 12)
    args.tokens = args.tokens or (16 if args.real else 128)
    kernel_name = args.kernel or ("ethics-demo.txt" if args.real else "ethics-long.md")
    from lemlab.core.scoring import DEFAULT_SCORER, get_scorer
    from lemlab.engine.tiny import build_tiny_model

    scorer = get_scorer(DEFAULT_SCORER)
    with tempfile.TemporaryDirectory() as tmp:
        if args.real:
            from lemlab.core.models.demo import BUNDLED, bundled_gguf
            from lemlab.engine.gguf_import import import_gguf

            gguf = bundled_gguf()
            if gguf is None:
                print(
                    f"{BUNDLED.package}=={BUNDLED.version} is not installed (make test installs it)"
                )
                return 2
            model_dir = import_gguf(gguf, Path(tmp) / BUNDLED.name, name=BUNDLED.name)
            label = f"{BUNDLED.name} (real, 4-bit from GGUF)"
        else:
            model_dir = build_tiny_model(Path(tmp) / "m", hidden=256, layers=4)
            label = "gemma3_text hidden 256, 4 layers (random weights)"
        eos_ids = json.loads((model_dir / "config.json").read_text())["eos_token_id"]
        eos_ids = eos_ids if isinstance(eos_ids, list) else [eos_ids]
        kernel_path = Path(tmp) / "kernel.md"
        kernel_path.write_text(kernel_text(kernel_name), encoding="utf-8")
        probes = make_probes(args.probes)
        warm_up(model_dir)
        naive_s, naive = run_naive(
            model_dir, probes, kernel_path.read_text(), args.tokens, scorer, eos_ids
        )
        lem_s, lem, kernel_tokens = run_lemlab(
            model_dir, probes, kernel_path, args.tokens, scorer, eos_ids
        )
    agree = sum(1 for k, v in naive.items() if lem.get(k) == v)
    print(
        f"model: {label}; {len(probes)} probes x 2 conditions; "
        f"kernel {kernel_name}, prompt {kernel_tokens} tokens; {args.tokens} new tokens, greedy"
    )
    print(f"naive (full prompt per request, no cache): {naive_s:.2f}s")
    print(f"lemlab runner (MLXEngine, prefix reuse):  {lem_s:.2f}s")
    print(f"responses agree {agree}/{len(naive)}")
    print(f"ratio {naive_s / lem_s:.2f}")
    return 0 if agree == len(naive) else 1


if __name__ == "__main__":
    raise SystemExit(main())
