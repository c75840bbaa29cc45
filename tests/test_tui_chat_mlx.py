"""Issue 14 on the REAL MLX engine and tiny random models: a model and an adapter opened by
path, chat turns served from the reused cache with a kernel switch recorded per reply, and an
adapter trained from the Training pane listed in the Models pane."""

from __future__ import annotations

from pathlib import Path

from support.train import write_chat_data
from support.tui import make_app, open_training_tab, until, wait_idle
from textual.widgets import DataTable, Input

from lemlab.core.engine_api import Sampler
from lemlab.core.paths import get_paths
from lemlab.core.sessions import Session
from lemlab.tui.app import LemlabApp
from lemlab.tui.chat.composer import Composer
from lemlab.tui.models.open_folder import open_folder
from lemlab.tui.services import Settings


def _real_app(tmp_path: Path, model: Path | None = None) -> tuple[LemlabApp, object]:
    from lemlab.engine.mlx_engine import MLXEngine

    engine = MLXEngine()
    settings = Settings(sessions_dir=tmp_path / "sessions", scan_hf_cache=False)
    app = LemlabApp(
        engine, settings=settings, session=Session(name="real"), model=str(model) if model else None
    )
    return app, engine


async def test_open_model_and_adapter_by_path_on_mlx(
    tiny_model: Path, tiny_adapter: Path, tmp_path: Path
) -> None:
    app, engine = _real_app(tmp_path)
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_idle(pilot, app)
            open_folder(app, str(tiny_model))
            await wait_idle(pilot, app)
            assert app.lab.loaded is not None and app.lab.loaded.model_path == str(tiny_model)
            open_folder(app, str(tiny_adapter))
            await wait_idle(pilot, app)
            info = app.lab.loaded
            assert info is not None and info.adapter_path == str(tiny_adapter)
            assert info.model_path == str(tiny_model)
            app.lab.set_sampler(Sampler(max_tokens=8))
            await app.query_one("#chat-pane").send("Hello?")  # type: ignore[attr-defined]
            await wait_idle(pilot, app)
            reply = app.lab.session.messages[-1]
            assert reply["adapter"] == str(tiny_adapter) and reply["stats"]["generation_tokens"] > 0
    finally:
        engine.shutdown()  # type: ignore[attr-defined]


async def test_chat_turns_reuse_the_cache_and_record_the_kernel_on_mlx(
    tiny_llama: Path, tmp_path: Path
) -> None:
    app, engine = _real_app(tmp_path, tiny_llama)
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_idle(pilot, app)
            app.lab.set_sampler(Sampler(max_tokens=16))
            chat = app.query_one("#chat-pane")
            box = app.query_one("#chat-input", Composer)
            for i, text in enumerate(
                (
                    "What is a kernel?",
                    "Why does it matter?\nAnswer in two lines.",
                    "Thanks. One more example?",
                )
            ):
                if i == 2:
                    chat.slash.set_system("Answer with care.", "care")  # type: ignore[attr-defined]
                box.focus()
                box.value = text
                await pilot.press("enter")
                await wait_idle(pilot, app)
            msgs = app.lab.session.messages
            replies = [m for m in msgs if m["role"] == "assistant"]
            assert (
                len(replies) == 3
                and msgs[2]["content"] == "Why does it matter?\nAnswer in two lines."
            )
            cached = [r["stats"]["cached_prompt_tokens"] for r in replies]
            # Turn 2 reuses turn 1's prompt and reply; turn 3 has a new system turn in front, so
            # nothing before it can be reused: the switch shows in the figures too.
            assert cached[0] == 0 and cached[1] >= replies[0]["stats"]["prompt_tokens"]
            assert [r["kernel"] for r in replies] == ["none", "none", "care"]
            assert replies[2]["kernel_sha256"] == app.lab.session.kernel["sha256"]
            chat.action_export("md")  # type: ignore[attr-defined]
            md = (get_paths().data_dir / "exports" / "real.md").read_text()
            assert (
                md.count("kernel: none") == 2 and md.count("kernel: care (sha256") == 2
            )  # mark + reply
    finally:
        engine.shutdown()  # type: ignore[attr-defined]


async def test_adapter_trained_in_the_training_pane_is_listed_in_models(
    tiny_model: Path, tmp_path: Path
) -> None:
    data = write_chat_data(tmp_path / "data", n_train=4, n_valid=2)
    app, _ = make_app(tmp_path, model=tiny_model)
    async with app.run_test(size=(120, 40)) as pilot:
        pane = await open_training_tab(pilot)
        await pilot.press("n")
        await pilot.pause()
        form = app.screen
        out = form.query_one("#tf-adapter_path", Input).value
        assert out.startswith(str(get_paths().runs_dir))  # the form's default: lemlab's runs folder
        for name, value in {
            "data": str(data),
            "iters": "4",
            "batch_size": "1",
            "num_layers": "1",
            "save_every": "2",
            "steps_per_eval": "4",
            "steps_per_report": "2",
        }.items():
            form.query_one(f"#tf-{name}", Input).value = value
        await pilot.pause()
        await pilot.press("ctrl+s")
        await pilot.pause()
        if app.screen is form:  # a warning asks for a second press
            await pilot.press("ctrl+s")
        await until(pilot, lambda: pane.run is not None and pane.run.state.finished, step=0.2)
        assert pane.run.state.status == "done", pane.run.exit_note
        app.action_show_tab("models")
        await wait_idle(pilot, app)
        adapters = app.query_one("#adapters-table", DataTable)
        await until(pilot, lambda: out in [k.value for k in adapters.rows])
