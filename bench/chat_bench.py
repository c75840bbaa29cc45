"""Chat display speed vs raw generation, on the same tiny model, in one run.

raw:       mlx_lm.stream_generate in a child process (the app's process keeps MLX on one thread)
displayed: the TUI driven headless (run_test) on the real MLXEngine; tokens on screen per second
ratio:     displayed / raw (target >= 0.95), plus the app's time to first paint.
EOS is masked on both sides so both produce exactly N tokens. Usage:
    .venv/bin/python bench/chat_bench.py [--tokens 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("MLX_DISABLE_COMPILE", "1")
PROMPT = "Tell me about lighthouses."

RAW = """
import json, sys, time
import mlx.core as mx
from mlx_lm import load, stream_generate
from mlx_lm.sample_utils import make_sampler
model, tok = load(sys.argv[1])
n = int(sys.argv[2])
eos = list(tok.eos_token_ids)
def no_eos(tokens, logits):
    logits[:, eos] = -float("inf")
    return logits
prompt = tok.apply_chat_template([{"role": "user", "content": sys.argv[3]}], add_generation_prompt=True)
for _ in stream_generate(model, tok, prompt, max_tokens=8, sampler=make_sampler(temp=0.0)):
    pass  # warm-up
t0 = time.perf_counter(); count = 0
for r in stream_generate(model, tok, prompt, max_tokens=n, sampler=make_sampler(temp=0.0),
                         logits_processors=[no_eos]):
    count += 1
print(json.dumps({"tokens": count, "seconds": time.perf_counter() - t0, "gen_tps": r.generation_tps}))
"""


def build_model(out: Path) -> Path:
    cmd = [sys.executable, "-m", "lemlab", "make-tiny-model", str(out)]
    subprocess.run(cmd, check=True, capture_output=True)
    return out


def raw_rate(model: Path, n: int) -> dict[str, float]:
    out = subprocess.run([sys.executable, "-c", RAW, str(model), str(n), PROMPT],
                         check=True, capture_output=True, text=True).stdout  # fmt: skip
    return json.loads(out.strip().splitlines()[-1])


def no_eos_engine():  # type: ignore[no-untyped-def]
    from lemlab.engine.mlx_engine import MLXEngine

    class NoEosEngine(MLXEngine):
        """Masks EOS (the processor runs on the engine thread) so the reply has exactly N tokens."""

        def generate(self, messages, sampler, *, reuse_prefix=False, logits_processors=None):  # type: ignore[no-untyped-def]
            eos = list(self._lm.tokenizer.eos_token_ids) if self._lm else []  # type: ignore[union-attr]

            def no_eos(tokens, logits):  # type: ignore[no-untyped-def]
                logits[:, eos] = -float("inf")
                return logits

            return super().generate(messages, sampler, logits_processors=[no_eos])

    return NoEosEngine()


async def app_rate(model: Path, n: int, home: Path) -> dict[str, float]:
    from lemlab.core.engine_api import Sampler
    from lemlab.core.sessions import Session
    from lemlab.tui.app import LemlabApp
    from lemlab.tui.services import Settings

    engine = no_eos_engine()
    settings = Settings(sessions_dir=home / "sessions", scan_hf_cache=False,
                        sampler=Sampler(max_tokens=n))  # fmt: skip
    app = LemlabApp(engine, settings=settings, session=Session(name="bench"), model=str(model))
    try:
        t0 = time.perf_counter()
        async with app.run_test(size=(120, 40)) as pilot:
            first_paint = time.perf_counter() - t0
            while app.lab.loaded is None:
                await pilot.pause(0.05)
            await pilot.pause(0.2)
            chat = app.query_one("#chat-pane")
            await chat.send("warm up")  # type: ignore[attr-defined]
            await app.workers.wait_for_complete()
            await pilot.pause(0.2)
            chat.displayed_tokens, chat.first_display = 0, None  # type: ignore[attr-defined]
            start = time.monotonic()  # the clock the pane stamps displays with
            await chat.send(PROMPT)  # type: ignore[attr-defined]
            while chat.handle is not None:  # type: ignore[attr-defined]
                await pilot.pause(0.01)
            seconds = chat.last_display - start  # type: ignore[attr-defined]
            await app.workers.wait_for_complete()
            await pilot.pause(0.1)
            shown = chat.displayed_tokens  # type: ignore[attr-defined]
            engine_tps = app.lab.session.messages[-1]["stats"]["generation_tps"]
    finally:
        engine.shutdown()
    return {"tokens": shown, "seconds": seconds, "engine_tps": engine_tps, "first_paint": first_paint}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tokens", type=int, default=1000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["LEMLAB_HOME"] = str(Path(tmp) / "home")
        model = build_model(Path(tmp) / "tiny")
        raw = raw_rate(model, args.tokens)
        shown = asyncio.run(app_rate(model, args.tokens, Path(tmp) / "home"))
    raw_tps = raw["tokens"] / raw["seconds"]
    shown_tps = shown["tokens"] / shown["seconds"]
    print(f"raw stream_generate : {raw['tokens']} tokens in {raw['seconds']:.3f} s = {raw_tps:.0f} tok/s")
    print(f"chat pane displayed : {shown['tokens']} tokens in {shown['seconds']:.3f} s = {shown_tps:.0f} tok/s"
          f" (engine reported {shown['engine_tps']:.0f} tok/s)")  # fmt: skip
    print(f"ratio               : {shown_tps / raw_tps:.3f} (target >= 0.95)")
    print(f"time to first paint : {shown['first_paint'] * 1000:.0f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
