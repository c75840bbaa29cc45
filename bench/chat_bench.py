"""Chat display speed vs raw generation, on the same tiny model, in one run.

raw:       mlx_lm.stream_generate in a child process (the app's process keeps MLX on one thread)
displayed: the TUI driven headless (run_test) on the real MLXEngine, the pane stamping each
           display of the reply (DisplayLog)
ratio:     the streaming rate: tokens per second from the first token to the last, on screen vs
           raw (target >= 0.95). Time to first token is printed beside it for both sides (the app's
           includes laying out the new messages), with the end-to-end ratio (message sent -> last
           token on screen, vs raw's prefill -> last token), and the app's time to first paint.
EOS is masked on both sides so both produce exactly N tokens. Raw and displayed rounds alternate
(raw, app, raw, app, ...) so both sides of each pair see the same load on a shared machine; the
ratios printed are the medians of the per-pair ratios. Usage:
    .venv/bin/python bench/chat_bench.py [--tokens 1000] [--rounds 7]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
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
t0 = time.perf_counter(); count = 0; first = 0.0
for r in stream_generate(model, tok, prompt, max_tokens=n, sampler=make_sampler(temp=0.0),
                         logits_processors=[no_eos]):
    count += 1
    first = first or time.perf_counter()
end = time.perf_counter()
print(json.dumps({"tokens": count, "seconds": end - t0, "ttft": first - t0, "stream": end - first}))
"""


def build_model(out: Path) -> Path:
    cmd = [sys.executable, "-m", "lemlab", "make-tiny-model", str(out)]
    subprocess.run(cmd, check=True, capture_output=True)
    return out


def raw_rate(model: Path, n: int) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", RAW, str(model), str(n), PROMPT],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
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


def set_settle(on: bool) -> None:
    """Switch lemlab's one-layout-per-display override (a private Textual method) on or off, so
    the public path (Textual's own _size_updated) is measured in the same run."""
    from lemlab.tui.chat import message

    mixin = message._SettlesInOnePass
    if not hasattr(set_settle, "saved"):
        set_settle.saved = mixin.__dict__["_size_updated"]  # type: ignore[attr-defined]
    if on:
        mixin._size_updated = set_settle.saved  # type: ignore[attr-defined]
    elif "_size_updated" in mixin.__dict__:
        del mixin._size_updated  # the lookup falls through to Textual's own


async def app_rates(
    model: Path, n: int, home: Path, rounds: int, settle_ab: bool = False
) -> list[dict[str, float]]:
    """One app, `rounds` replies (the chat cleared between them), each right after a raw run of
    the same length; tokens shown per second each, with the paired raw figures. settle_ab: the
    replies alternate with and without the one-layout override (each still paired with a raw run)."""
    from lemlab.core.engine_api import Sampler
    from lemlab.core.sessions import Session
    from lemlab.tui.app import LemlabApp
    from lemlab.tui.services import Settings

    engine = no_eos_engine()
    settings = Settings(
        sessions_dir=home / "sessions", scan_hf_cache=False, sampler=Sampler(max_tokens=n)
    )
    app = LemlabApp(engine, settings=settings, session=Session(name="bench"), model=str(model))
    out = []
    try:
        t0 = time.perf_counter()
        async with app.run_test(size=(120, 40)) as pilot:
            first_paint = time.perf_counter() - t0
            while app.lab.loaded is None:
                await asyncio.sleep(0.05)
            chat = app.query_one("#chat-pane")
            for i in range(rounds + 1):  # the first reply warms up
                settle = not settle_ab or i % 2 == 1
                set_settle(settle)
                await chat.slash.clear()  # type: ignore[attr-defined]
                await pilot.pause(0.2)
                raw = await asyncio.to_thread(raw_rate, model, n)  # the app is idle meanwhile
                start = time.monotonic()  # the clock the pane stamps displays with
                await chat.send(PROMPT)  # type: ignore[attr-defined]
                while chat.handle is not None:  # type: ignore[attr-defined]
                    await asyncio.sleep(0.25)  # not pilot.pause: it pings every widget (UI work);
                    # the pane stamps its own displays, so this only needs to notice the end
                await app.workers.wait_for_complete()
                log = chat.display_log  # type: ignore[attr-defined]
                out.append(
                    {
                        "tokens": log.tokens,
                        "e2e": log.last - start,
                        "ttft": log.first - start,
                        "stream_tps": (log.tokens - log.first_tokens) / (log.last - log.first),
                        "displays": log.displays,
                        "ui_cpu": log.ui_cpu[1] - log.ui_cpu[0],
                        "interval": chat.pacer.interval,  # type: ignore[attr-defined]
                        "engine_share": chat.pacer.engine_share,  # type: ignore[attr-defined]
                        "first_paint": first_paint,
                        "raw": raw,
                        "settle": settle,
                    }
                )
    finally:
        set_settle(True)
        engine.shutdown()
    return out[1:]


def _median(values: list[float]) -> float:
    return statistics.median(values)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tokens", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=7, help="raw/app pairs measured (median)")
    ap.add_argument(
        "--settle-ab",
        action="store_true",
        help="alternate replies with and without the one-layout override and print both",
    )
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["LEMLAB_HOME"] = str(Path(tmp) / "home")
        model = build_model(Path(tmp) / "tiny")
        rounds = args.rounds * (2 if args.settle_ab else 1)
        shown = asyncio.run(
            app_rates(model, args.tokens, Path(tmp) / "home", rounds, args.settle_ab)
        )
    if args.settle_ab:
        for label, on in (("with the override   ", True), ("Textual's own layout", False)):
            side = [s for s in shown if s["settle"] is on]
            r = [s["stream_tps"] / ((s["raw"]["tokens"] - 1) / s["raw"]["stream"]) for s in side]
            cpu = [s["ui_cpu"] / max(1, s["displays"] - 1) for s in side]
            print(
                f"{label}: ratio {_median(r):.3f}, UI CPU {_median(cpu) * 1000:.1f} ms per display, "
                f"pairs {' '.join(f'{x:.3f}' for x in r)}"
            )
        shown = [s for s in shown if s["settle"]]
    raw_stream = [(s["raw"]["tokens"] - 1) / s["raw"]["stream"] for s in shown]
    ratios = [s["stream_tps"] / r for s, r in zip(shown, raw_stream, strict=True)]
    e2e = [s["tokens"] / s["e2e"] / (s["raw"]["tokens"] / s["raw"]["seconds"]) for s in shown]
    share = [s["engine_share"] for s in shown if s["engine_share"] is not None]
    print(f"tokens per reply    : {args.tokens} (EOS masked), {args.rounds} raw/app pairs, medians")
    print(
        f"raw stream_generate : {_median(raw_stream):.0f} tok/s, first token "
        f"{_median([s['raw']['ttft'] for s in shown]) * 1000:.1f} ms after the call"
    )
    print(
        f"chat pane displayed : {_median([s['stream_tps'] for s in shown]):.0f} tok/s, first token on "
        f"screen {_median([s['ttft'] for s in shown]) * 1000:.1f} ms after Enter"
    )
    print(
        f"displays per reply  : {_median([s['displays'] for s in shown]):.0f} (interval "
        f"{_median([s['interval'] for s in shown]) * 1000:.0f} ms, engine thread busy "
        f"{_median(share) * 100 if share else float('nan'):.0f}% of wall time)"
    )
    print(
        f"UI thread CPU       : {_median([s['ui_cpu'] for s in shown]) * 1000:.0f} ms between the first and "
        f"last display, {_median([s['ui_cpu'] / max(1, s['displays'] - 1) for s in shown]) * 1000:.1f} ms per display"
    )
    print(f"per-pair ratios     : {' '.join(f'{r:.3f}' for r in ratios)}")
    print(
        f"end-to-end ratio    : {_median(e2e):.3f} (Enter -> last token on screen, vs raw call -> last token)"
    )
    print(f"ratio               : {_median(ratios):.3f} (streaming rate, target >= 0.95)")
    print(f"time to first paint : {shown[0]['first_paint'] * 1000:.0f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
