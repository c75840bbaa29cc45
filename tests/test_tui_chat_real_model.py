"""The chat pane on the real model (SmolLM2-135M-Instruct, real English): three short turns
through the TUI, each reply read for English words, and more of the prompt served from the
reused cache on every turn. Sized for 3-7 tokens/s: short prompts, 16-token replies."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.tui import wait_idle

from lemlab.core.engine_api import Sampler
from lemlab.core.sessions import Session
from lemlab.tui.app import LemlabApp
from lemlab.tui.chat.composer import Composer
from lemlab.tui.chat.message import MessageView
from lemlab.tui.services import Settings

pytestmark = [pytest.mark.real_model, pytest.mark.slow]
COMMON_WORDS = {"the", "a", "is", "of", "to", "and", "in", "it", "you", "be", "can", "are", "i"}


def _english(text: str) -> bool:
    words = {w.strip(".,!?;:'\"()*").lower() for w in text.split()}
    return len(words & COMMON_WORDS) >= 2


async def test_three_turns_in_english_with_growing_cache(real_model: Path, tmp_path: Path) -> None:
    from lemlab.engine.mlx_engine import MLXEngine

    engine = MLXEngine()
    settings = Settings(sessions_dir=tmp_path / "sessions", scan_hf_cache=False)
    app = LemlabApp(
        engine, settings=settings, session=Session(name="real-chat"), model=str(real_model)
    )
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_idle(pilot, app)
            assert app.lab.loaded is not None
            app.lab.set_sampler(Sampler(max_tokens=16))
            box = app.query_one("#chat-input", Composer)
            for text in (
                "What is the capital of France?",
                "Why is it famous?",
                "Name one museum there.",
            ):
                box.focus()
                box.value = text
                await pilot.press("enter")
                await wait_idle(pilot, app)
            replies = [m for m in app.lab.session.messages if m["role"] == "assistant"]
            assert len(replies) == 3
            for r in replies:
                assert r["stats"]["finish_reason"] in ("stop", "length"), r
                assert _english(r["content"]), r["content"]
            cached = [r["stats"]["cached_prompt_tokens"] for r in replies]
            prompts = [r["stats"]["prompt_tokens"] for r in replies]
            assert cached[0] < cached[1] < cached[2]
            assert (
                cached[1] >= prompts[0] and cached[2] >= prompts[1]
            )  # earlier turns not re-prefilled
            meta = str(list(app.query(MessageView))[-1].query_one(".message-meta").render())
            assert f"prompt {prompts[2]} ({cached[2]} cached)" in meta
    finally:
        engine.shutdown()
