"""Chat pane on FakeEngine (issue 14): cache reuse asked for and shown per reply, the multi-line
composer, per-message provenance with kernel switches in the transcript and the exports,
regenerated variants, copying a message, the waiting line before the first token."""

from __future__ import annotations

import json
from pathlib import Path

from support.tui import fake_model_dir, make_app, until, wait_idle
from textual import events

from lemlab.core.paths import get_paths
from lemlab.core.sessions import chat_turns, load_session_file
from lemlab.engine.fake import FakeEngine
from lemlab.tui.chat.composer import Composer
from lemlab.tui.chat.message import KernelMark, MessageView


async def _send(pilot, text: str) -> None:  # type: ignore[no-untyped-def]
    box = pilot.app.query_one("#chat-input", Composer)
    box.focus()
    box.value = text
    await pilot.press("enter")
    await wait_idle(pilot, pilot.app)


async def test_three_turns_reuse_the_cache_and_show_it(tmp_path: Path) -> None:
    app, _ = make_app(tmp_path, model=fake_model_dir(tmp_path / "models"))
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_idle(pilot, app)
        for text in ("first question", "second question", "third question"):
            await _send(pilot, text)
        replies = [m for m in app.lab.session.messages if m["role"] == "assistant"]
        cached = [m["stats"]["cached_prompt_tokens"] for m in replies]
        assert cached[0] == 0 and 0 < cached[1] < cached[2]
        assert all(m["stats"]["prompt_tokens"] > c for m, c in zip(replies, cached, strict=True))
        meta = str(app.query(MessageView).last().query_one(".message-meta").render())
        prompt = replies[2]["stats"]["prompt_tokens"]
        assert f"prompt {prompt} ({cached[2]} cached)" in meta
        saved = load_session_file(tmp_path / "sessions" / "s1.toml")
        assert saved.messages[5]["stats"]["cached_prompt_tokens"] == cached[2]


async def test_pasted_multiline_prompt_is_sent_whole(tmp_path: Path) -> None:
    app, engine = make_app(tmp_path, model=fake_model_dir(tmp_path / "models"))
    pasted = "Read this probe.\n\nSecond paragraph: what follows?\n- a list item"
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_idle(pilot, app)
        box = app.query_one("#chat-input", Composer)
        box.focus()
        app.post_message(events.Paste(pasted))  # as the terminal driver delivers a paste
        await pilot.pause()
        assert box.text == pasted  # nothing was sent by the paste's newlines
        assert engine.requests == []
        await pilot.press("enter")
        await wait_idle(pilot, app)
        assert engine.requests[-1][0][-1] == {"role": "user", "content": pasted}
        assert app.lab.session.messages[0]["content"] == pasted
        # a modifier inserts a newline while typing; Enter alone sends
        await pilot.press("o", "n", "e", "ctrl+j", "t", "w", "o", "shift+enter", "x")
        assert box.text == "one\ntwo\nx"
        await pilot.press("enter")
        await wait_idle(pilot, app)
        assert engine.requests[-1][0][-1]["content"] == "one\ntwo\nx" and box.text == ""


async def test_kernel_switch_recorded_per_message_and_in_exports(tmp_path: Path) -> None:
    app, _ = make_app(tmp_path, model=fake_model_dir(tmp_path / "models"))
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_idle(pilot, app)
        chat = app.query_one("#chat-pane")
        await _send(pilot, "before the kernel")
        chat.slash.set_system("Answer with care.", "care")
        await pilot.pause()
        assert len(app.query(KernelMark)) == 1  # marked in the transcript at once
        await _send(pilot, "with the kernel")
        msgs = app.lab.session.messages
        sha = app.lab.session.kernel["sha256"]
        assert msgs[1]["kernel"] == "none" and "kernel_sha256" not in msgs[1]
        assert msgs[3]["kernel"] == "care" and msgs[3]["kernel_sha256"] == sha
        assert msgs[3]["model"].endswith("fake-model")
        assert msgs[3]["sampler"]["max_tokens"] == app.lab.sampler.max_tokens

        await chat.rebuild()  # a reopened session marks the switch from the records alone
        await pilot.pause()
        marks = [str(m.render()) for m in app.query(KernelMark)]
        assert marks == [f"── kernel: care (sha256 {sha[:12]}) ──"]

        chat.action_export("md")
        chat.action_export("jsonl")
        exports = get_paths().data_dir / "exports"
        md = (exports / "s1.md").read_text()
        before, after = md.split("\n---\n")  # the switch, marked between the exchanges
        assert "before the kernel" in before and "kernel: none" in before.split("## Assistant")[1]
        assert "kernel: care" not in before
        assert after.lstrip().startswith(f"_kernel: care (sha256 {sha[:12]})_")
        assert f"kernel: care (sha256 {sha[:12]})" in after.split("## Assistant")[1]
        assert f"Kernels used:** none, care (sha256 {sha[:12]})" in md
        line = json.loads((exports / "s1.jsonl").read_text())
        assert [r["kernel"] for r in line["provenance"]] == ["none", "care"]
        assert line["provenance"][1]["kernel_sha256"] == sha
        assert [m["role"] for m in line["messages"]] == ["user", "assistant"] * 2


async def test_regenerate_keeps_variants_and_steps_between_them(tmp_path: Path) -> None:
    app, engine = make_app(tmp_path, model=fake_model_dir(tmp_path / "models"))
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_idle(pilot, app)
        await _send(pilot, "tell me something")
        first = app.lab.session.messages[-1]["content"]
        app.query_one("#set-seed").value = "7"  # another seed: another reply
        await pilot.pause()
        await pilot.press("ctrl+r")
        await wait_idle(pilot, app)
        msgs = app.lab.session.messages
        assert len(msgs) == 2 and len(msgs[1]["variants"]) == 2
        second = msgs[1]["content"]
        assert second != first and msgs[1]["variants"][0]["content"] == first
        assert msgs[1]["variants"][1]["sampler"]["seed"] == 7
        view = app.query(MessageView).last()
        assert "variant 2/2" in str(view.query_one(".message-meta").render())

        await pilot.press("alt+left")
        await pilot.pause()
        assert app.lab.session.messages[1]["content"] == first == view.content
        assert chat_turns(app.lab.session)[-1]["content"] == first  # what the next turn builds on
        assert "variant 1/2" in str(view.query_one(".message-meta").render())
        saved = load_session_file(tmp_path / "sessions" / "s1.toml")
        assert saved.messages[1]["variant"] == 0 and len(saved.messages[1]["variants"]) == 2
        await pilot.press("alt+right")
        await pilot.pause()
        assert app.lab.session.messages[1]["content"] == second
        assert len(engine.requests) == 2


async def test_copy_a_message_to_the_clipboard(tmp_path: Path) -> None:
    app, _ = make_app(tmp_path, model=fake_model_dir(tmp_path / "models"))
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_idle(pilot, app)
        await _send(pilot, "copy me")
        view = app.query(MessageView).last()
        view.focus()
        await pilot.press("c")
        assert app.clipboard == view.content and view.content.startswith("**Reply**")
        app.copy_to_clipboard("")
        app.query_one("#chat-pane").slash.copy_last()  # the palette's "Copy last reply"
        assert app.clipboard == view.content


async def test_waiting_line_then_live_tokens_per_second(tmp_path: Path) -> None:
    engine = FakeEngine(delay=1.0, length=4)  # a second per token: time to read each line
    app, _ = make_app(tmp_path, model=fake_model_dir(tmp_path / "models"), engine=engine)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_idle(pilot, app)
        box = app.query_one("#chat-input", Composer)
        box.focus()
        box.value = "slow one"
        await pilot.press("enter")
        line = app.query_one("#chat-stats")
        await until(pilot, lambda: "waiting for the first token" in str(line.render()), step=0.02)
        assert " s · Esc cancels" in str(line.render())
        await until(pilot, lambda: "streaming…" in str(line.render()), step=0.02)
        assert "tok/s" in str(line.render())
        await wait_idle(pilot, app)
        assert "Enter sends" in str(line.render())
