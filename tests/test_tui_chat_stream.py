"""How the chat pane reads a streaming reply: batches from the engine's ChunkStream (no wake-up
per token), fake handles read the same way, and the real engine behind the pane."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from support.tui import wait_idle

from lemlab.core.engine_api import Chunk, GenStats, Sampler
from lemlab.core.sessions import Session
from lemlab.engine.fake import FakeEngine
from lemlab.engine.handle import ChunkStream
from lemlab.tui.chat.composer import Composer
from lemlab.tui.chat.message import MessageView
from lemlab.tui.chat.stream_pacing import chunk_batches


def _push_reply(handle: ChunkStream, words: list[str]) -> None:
    for i, word in enumerate(words):
        handle.push(Chunk(word, GenStats(generation_tokens=i + 1)))
    handle.finish(GenStats(generation_tokens=len(words), finish_reason="length"))


def test_take_and_wait_on_a_chunk_stream() -> None:
    handle = ChunkStream()
    assert handle.take(0, timeout=0.01) == []
    assert handle.wait(0.01) is False
    handle.push(Chunk("a", GenStats(generation_tokens=1)))
    handle.push(Chunk("b", GenStats(generation_tokens=2)))
    assert [c.text for c in handle.take(0)] == ["a", "b"]
    assert [c.text for c in handle.take(1)] == ["b"]
    handle.finish(GenStats(generation_tokens=2, finish_reason="stop"))
    assert handle.wait(0) is True
    assert handle.take(2)[-1].done


def test_a_finished_stream_comes_as_one_batch() -> None:
    handle = ChunkStream()
    words = [f" w{i}" for i in range(50)]
    _push_reply(handle, words)
    batches = list(chunk_batches(handle, lambda: 10.0))
    assert len(batches) == 1
    assert "".join(c.text for c in batches[0]) == "".join(words)
    assert batches[0][-1].done and batches[0][-1].stats.generation_tokens == 50


def test_batches_of_a_live_stream_hold_every_chunk_once_in_order() -> None:
    handle = ChunkStream()
    words = [f" w{i}" for i in range(300)]
    producer = threading.Thread(target=_push_reply, args=(handle, words))
    producer.start()
    batches = list(chunk_batches(handle, lambda: 0.005))
    producer.join()
    chunks = [c for batch in batches for c in batch]
    assert [c.text for c in chunks[:-1]] == words
    assert chunks[-1].done and all(not c.done for c in chunks[:-1])
    assert all(batch for batch in batches)


def test_fake_engine_handles_are_batched_like_the_real_ones(tmp_path: Path) -> None:
    engine = FakeEngine(length=60, delay=0.002)
    engine.load(str(tmp_path)).result()
    handle = engine.generate([{"role": "user", "content": "hi"}], Sampler())
    batches = list(chunk_batches(handle, lambda: 0.02))
    text, stats = handle.result()
    chunks = [c for b in batches for c in b]
    assert 1 < len(batches) < 61 and all(batches)  # batched per tick, not one per token
    assert len(chunks) == 61 and "".join(c.text for c in chunks) == text
    assert (
        chunks[-1].done and not any(c.done for c in chunks[:-1]) and stats.generation_tokens == 60
    )
    engine.shutdown()


async def test_pane_on_real_engine_shows_every_token(tiny_model: Path, tmp_path: Path) -> None:
    from lemlab.engine.mlx_engine import MLXEngine
    from lemlab.tui.app import LemlabApp
    from lemlab.tui.services import Settings

    engine = MLXEngine()
    settings = Settings(sessions_dir=tmp_path / "sessions", scan_hf_cache=False)
    app = LemlabApp(engine, settings=settings, session=Session(name="s"), model=str(tiny_model))
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_idle(pilot, app)
            app.lab.set_sampler(app.lab.sampler.__class__(max_tokens=150))
            app.query_one("#chat-input", Composer).value = "Tell me about lighthouses."
            await pilot.press("enter")
            await wait_idle(pilot, app)
            reply = app.lab.session.messages[-1]
            pane = app.query_one("#chat-pane")
            view = list(app.query(MessageView))[-1]
            assert reply["role"] == "assistant" and view.content == reply["content"]
            assert view.tokens_shown == reply["stats"]["generation_tokens"] > 0
            assert pane.displayed_tokens == view.tokens_shown  # type: ignore[attr-defined]
            assert [v.role for v in app.query(MessageView)] == ["user", "assistant"]
    finally:
        engine.shutdown()


async def test_streamed_message_lays_out_like_one_mounted_whole(tmp_path: Path) -> None:
    """Message widgets skip Textual's second layout pass after a resize (one pass per display):
    a reply streamed in pieces must still end with the geometry of the same text mounted at once,
    stay scrolled to its end, and keep the code block's horizontal scrolling."""
    from support.tui import make_app

    paragraphs = [
        f"Paragraph {i}: " + "lighthouse keepers kept logs " * (i % 5 + 1) for i in range(12)
    ]
    fence = "```\n" + "x = 1  # " + "long line " * 30 + "\n```"
    text = "\n\n".join(paragraphs[:6] + [fence] + paragraphs[6:]) + "\n\n- one\n- two\n"
    app, _engine = make_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_idle(pilot, app)
        box = app.query_one("#messages")
        streamed = MessageView("assistant")
        await box.mount(streamed)
        for start in range(0, len(text), 97):
            await streamed.append(text[start : start + 97], 1)
            await pilot.pause()
        whole = MessageView("assistant", text)
        await box.mount(whole, before=streamed)
        await pilot.pause()
        assert streamed.content == text
        assert streamed.size == whole.size and streamed.body.size == whole.body.size
        assert [b.size for b in streamed.body.children] == [b.size for b in whole.body.children]
        assert box.scroll_y == box.max_scroll_y > 0  # anchored: the end of the reply in view
        fences = [b for b in streamed.body.children if type(b).__name__ == "MarkdownFence"]
        assert (
            fences and fences[0].virtual_size.width > fences[0].size.width
        )  # still scrolls sideways


async def test_the_one_pass_override_is_reached_with_textuals_signature(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The override of Textual's private Widget._size_updated fails loudly here, not silently
    (a renamed or reshaped hook would leave layout right but streaming twice as slow): the
    signature is the one it was written for, Textual calls it for message widgets while a reply
    streams, and it asks Textual for no second layout pass."""
    import inspect

    from support.tui import make_app
    from textual.widget import Widget

    from lemlab.tui.chat import message

    params = list(inspect.signature(Widget._size_updated).parameters)
    assert params == ["self", "size", "virtual_size", "container_size", "layout"]
    assert "_size_updated" in vars(message._SettlesInOnePass)
    passed: list[bool] = []
    real = Widget._size_updated

    def spy(
        self: Widget,
        size: object,
        virtual_size: object,
        container_size: object,
        layout: bool = True,
    ) -> bool:
        if isinstance(self, MessageView):
            passed.append(layout)
        return real(self, size, virtual_size, container_size, layout)  # type: ignore[arg-type]

    monkeypatch.setattr(Widget, "_size_updated", spy)
    app, _engine = make_app(tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_idle(pilot, app)
        view = MessageView("assistant")
        await app.query_one("#messages").mount(view)
        for piece in ["A first line of a reply.", "\n\nA second paragraph", " that grows."]:
            await view.append(piece, 1)
            await pilot.pause()
    assert passed and not any(passed)  # reached through super(), always without a second pass
