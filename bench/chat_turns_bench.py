"""Time to first token over a chat's turns, with and without reusing the cache, in one run.

Each round plays the same three-turn conversation twice on the real MLXEngine: once with
reuse_prefix=False (every turn prefills the whole conversation) and once with reuse_prefix=True
(the TUI's chat and the CLI REPL: the engine keeps the last turn's KV cache and prefills only
the new message). Both modes alternate within a round, so they see the same machine load; a
nonce in the first message keeps one round's cache from serving the next. EOS is masked so every
reply has exactly --tokens tokens and the conversation grows the same way in both modes.
Printed: median TTFT per turn with the prompt tokens prefilled (not from the cache), the
turn-3 / turn-1 ratio per mode (target: about 1 with reuse,
i.e. TTFT does not grow with the conversation), and reuse vs no reuse at turn 3. Usage:
    .venv/bin/python bench/chat_turns_bench.py [--tokens 96] [--rounds 5] [--model DIR]
(default model: a tiny random llama built in a temp folder; --model takes e.g. the real one)
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("MLX_DISABLE_COMPILE", "1")
QUESTIONS = [
    "Round {n}. I am reading about lighthouses and the people who kept them. What did a keeper "
    "do on an ordinary night, from dusk until the lamp was put out at dawn?",
    "How did they keep the lamp burning through a storm, and what happened when it went out? "
    "Give the steps a keeper would take, in order.",
    "Which of those duties were taken over by machines first, and why those ones? Answer in a "
    "short paragraph.",
]


def build_model(out: Path) -> Path:
    cmd = [
        sys.executable,
        "-m",
        "lemlab",
        "make-tiny-model",
        "--model-type",
        "llama",
        "--hidden",
        "256",
        "--layers",
        "8",
        str(out),
    ]
    subprocess.run(cmd, check=True, capture_output=True)
    return out


def no_eos(engine):  # type: ignore[no-untyped-def]
    """Mask EOS on the engine thread (mlx_lm logits processor), so reply lengths are fixed."""
    import mlx.core as mx

    eos = sorted(engine._lm.tokenizer.eos_token_ids)

    def processor(tokens, logits):  # type: ignore[no-untyped-def]
        return logits.at[..., eos].add(-mx.inf) if eos else logits

    return [processor]


def conversation(engine, n: int, tokens: int, reuse: bool, processors) -> list[dict[str, float]]:  # type: ignore[no-untyped-def]
    from lemlab.core.engine_api import Sampler

    turns: list[dict[str, str]] = []
    out = []
    for i, q in enumerate(QUESTIONS):
        turns.append({"role": "user", "content": q.format(n=n) if i == 0 else q})
        handle = engine.generate(
            turns, Sampler(max_tokens=tokens), reuse_prefix=reuse, logits_processors=processors
        )
        text, stats = handle.result()
        if stats.finish_reason not in ("stop", "length"):
            raise SystemExit(f"generation failed: {handle.error or stats.finish_reason}")
        out.append(
            {
                "ttft": stats.time_to_first_token,
                "prompt": stats.prompt_tokens,
                "cached": stats.cached_prompt_tokens,
            }
        )
        turns.append({"role": "assistant", "content": text})
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tokens", type=int, default=96, help="tokens per reply (EOS masked)")
    ap.add_argument("--rounds", type=int, default=5, help="rounds of (no reuse, reuse) pairs")
    ap.add_argument("--model", type=Path, help="model folder (default: a tiny random llama)")
    args = ap.parse_args()
    from lemlab.engine.mlx_engine import MLXEngine

    with tempfile.TemporaryDirectory() as tmp:
        os.environ["LEMLAB_HOME"] = str(Path(tmp) / "home")
        model = args.model or build_model(Path(tmp) / "tiny-llama")
        engine = MLXEngine()
        try:
            engine.load(str(model)).result()
            processors = no_eos(engine)
            conversation(engine, 0, 8, True, processors)  # warm-up: first-call costs
            runs: dict[bool, list[list[dict[str, float]]]] = {False: [], True: []}
            for n in range(1, args.rounds + 1):
                order = (False, True) if n % 2 else (True, False)
                for reuse in order:
                    runs[reuse].append(conversation(engine, n, args.tokens, reuse, processors))
        finally:
            engine.shutdown()

    def med(reuse: bool, turn: int, key: str) -> float:
        return statistics.median(r[turn][key] for r in runs[reuse])

    print(f"model               : {model if args.model else 'tiny random llama (256 x 8)'}")
    print(
        f"conversation        : 3 turns, {args.tokens} tokens per reply, {args.rounds} rounds, medians"
    )
    for reuse, label in ((False, "without reuse"), (True, "with reuse   ")):
        cells = "  ".join(
            f"turn {t + 1} {med(reuse, t, 'ttft') * 1000:7.1f} ms "
            f"({med(reuse, t, 'prompt') - med(reuse, t, 'cached'):.0f} of "
            f"{med(reuse, t, 'prompt'):.0f} prefilled)"
            for t in range(3)
        )
        print(f"TTFT {label}  : {cells}")
    for reuse, label in ((False, "without reuse"), (True, "with reuse   ")):
        ratios = [r[2]["ttft"] / r[0]["ttft"] for r in runs[reuse]]
        print(f"turn 3 / turn 1 {label}: {statistics.median(ratios):.2f}")
    pairs = [b[2]["ttft"] / a[2]["ttft"] for a, b in zip(runs[False], runs[True], strict=True)]
    print(f"turn 3 with / without reuse : {statistics.median(pairs):.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
