"""Opening models and adapters by path from the palette (FakeEngine), recent folders remembered,
path completion, and adapters in lemlab's runs folder listed in the Models pane like
`lemlab models` lists them."""

from __future__ import annotations

import json
import struct
from pathlib import Path

from support.notifications import notifications
from support.tui import fake_model_dir, make_app, until, wait_idle
from textual.widgets import DataTable, Input

from lemlab.core.models.recent import Recent, load_recent, recent_file
from lemlab.core.paths import get_paths
from lemlab.tui.screens.open_path import OpenPathScreen, complete_folder


def fake_adapter_dir(d: Path, base: Path) -> Path:
    """What discovery and the loader's checks read of an adapter: its config and a header."""
    d.mkdir(parents=True, exist_ok=True)
    (d / "adapter_config.json").write_text(
        json.dumps(
            {
                "model": str(base),
                "num_layers": 2,
                "fine_tune_type": "lora",
                "lora_parameters": {"rank": 4, "scale": 10.0, "dropout": 0.0},
            }
        )
    )
    header = json.dumps(
        {
            "model.layers.0.self_attn.q_proj.lora_a": {
                "dtype": "F32",
                "shape": [2, 4],
                "data_offsets": [0, 32],
            }
        }
    ).encode()
    (d / "adapters.safetensors").write_bytes(struct.pack("<Q", len(header)) + header + bytes(32))
    return d


async def _open_by_path(pilot, path: str) -> None:  # type: ignore[no-untyped-def]
    await pilot.press("ctrl+p")
    await pilot.pause()
    await pilot.press(*"Open model")
    await pilot.pause(0.3)
    await pilot.press("enter")
    await until(pilot, lambda: isinstance(pilot.app.screen, OpenPathScreen))
    box = pilot.app.screen.query_one("#open-path", Input)
    box.value = path
    await pilot.press("enter")
    await pilot.pause()
    if not isinstance(pilot.app.screen, OpenPathScreen):  # its folder tree's loader never ends
        await wait_idle(pilot, pilot.app)


async def test_open_model_then_adapter_by_path(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"  # not a configured model folder
    model = fake_model_dir(elsewhere, "my-model")
    adapter = fake_adapter_dir(elsewhere / "my-adapter", model)
    app, _ = make_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_idle(pilot, app)
        assert app.lab.loaded is None
        await _open_by_path(pilot, str(model))
        assert app.lab.loaded is not None and app.lab.loaded.model_path == str(model)
        assert app.lab.session.model["path"] == str(model)
        assert load_recent() == [Recent(str(model))] and recent_file().is_file()

        await _open_by_path(pilot, str(adapter) + "/")
        loaded = app.lab.loaded
        assert (loaded.model_path, loaded.adapter_path) == (str(model), str(adapter))
        assert load_recent()[0] == Recent(str(model), str(adapter))

        app.action_show_tab("models")  # opened folders join the lists
        await wait_idle(pilot, app)
        models = app.query_one("#models-table", DataTable)
        adapters = app.query_one("#adapters-table", DataTable)
        await until(pilot, lambda: models.row_count >= 1 and adapters.row_count >= 1)
        assert str(model) in [k.value for k in models.rows]
        assert str(adapter) in [k.value for k in adapters.rows]


async def test_open_rejects_a_plain_folder_and_reopens_a_recent_one(tmp_path: Path) -> None:
    model = fake_model_dir(tmp_path / "elsewhere", "again")
    plain = tmp_path / "just-a-folder"
    plain.mkdir()
    app, _ = make_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_idle(pilot, app)
        await _open_by_path(pilot, str(tmp_path / "missing"))
        assert isinstance(app.screen, OpenPathScreen)  # says why, stays open
        assert "not a folder" in str(app.screen.query_one("#open-error").render())
        app.screen.query_one("#open-path", Input).value = str(plain)
        await pilot.press("enter")
        await until(pilot, lambda: not isinstance(app.screen, OpenPathScreen))
        await wait_idle(pilot, app)
        assert app.lab.loaded is None
        assert any("not a model or adapter folder" in n.message for n in notifications(app))

        app.load_model(str(model))
        await wait_idle(pilot, app)
        app.unload_model()
        await wait_idle(pilot, app)
        await pilot.press("ctrl+p")
        await pilot.press(*"Open model")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, OpenPathScreen))
        app.screen.query_one("#open-recent").focus()
        await pilot.press("enter")  # the first recent entry
        await until(pilot, lambda: not isinstance(app.screen, OpenPathScreen))
        await wait_idle(pilot, app)
        assert app.lab.loaded is not None and app.lab.loaded.model_path == str(model)


async def test_path_input_completes_folder_names(tmp_path: Path) -> None:
    (tmp_path / "models" / "gemma-3-1b").mkdir(parents=True)
    (tmp_path / "models" / ".hidden").mkdir()
    (tmp_path / "notes.txt").write_text("not a folder")
    assert complete_folder(str(tmp_path / "mod")) == str(tmp_path / "models") + "/"
    assert (
        complete_folder(str(tmp_path / "models") + "/")
        == str(tmp_path / "models" / "gemma-3-1b") + "/"
    )
    assert complete_folder(str(tmp_path / "note")) is None  # files are not offered
    app, _ = make_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_idle(pilot, app)
        await wait_idle(pilot, app)
        app.push_screen(OpenPathScreen(tmp_path, []))
        await pilot.pause()
        box = app.screen.query_one("#open-path", Input)
        box.value = ""
        await pilot.press(*str(tmp_path / "mo"))
        await pilot.pause(0.2)
        await pilot.press("right")  # accepts the suggestion
        await pilot.pause()
        assert box.value == str(tmp_path / "models") + "/"


async def test_adapters_in_the_runs_folder_are_listed(tmp_path: Path) -> None:
    model = fake_model_dir(tmp_path / "models", "base")
    # Where the Training pane's form puts a new run (runs/adapters/<name>-<time>).
    trained = fake_adapter_dir(
        get_paths().runs_dir / "adapters" / "kernel-lora-20260101-120000", model
    )
    app, _ = make_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_idle(pilot, app)
        app.action_show_tab("models")
        await wait_idle(pilot, app)
        adapters = app.query_one("#adapters-table", DataTable)
        await until(pilot, lambda: adapters.row_count == 1)
        assert [k.value for k in adapters.rows] == [str(trained)]
