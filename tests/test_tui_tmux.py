"""A real terminal: `lemlab --demo` in tmux (120x40) opens on the embedded model (the real
SmolLM2 when installed, the random-weight one with LEMLAB_DEMO_MODEL=random), streams a reply to
a typed message, and quits with status 0. Textual draws on stderr: not redirected."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.tmux import (
    LEMLAB,
    NEEDS_TMUX,
    recording_status,
    send_keys,
    send_text,
    tmux,
    tmux_session,
    wait_for,
)

pytestmark = [pytest.mark.slow, NEEDS_TMUX]


def test_demo_in_a_real_terminal(lemlab_home: Path, tmp_path: Path) -> None:
    status_file = tmp_path / "status"
    env = {
        "LEMLAB_HOME": str(lemlab_home),
        "MLX_DISABLE_COMPILE": "1",
        "LEMLAB_DEMO_MODEL": "random",
    }
    command = recording_status(status_file, LEMLAB, "--demo", "--session", "tmux-demo")
    with tmux_session("lemlab-test", command, env) as name:
        tmux("set-option", "-w", "-t", name, "remain-on-exit", "on")
        screen = wait_for(name, lambda s: "DEMO: random weights" in s and "Chat" in s)
        assert "Models" in screen and "Battery" in screen and "Training" in screen
        send_text(name, "hello lab")
        send_keys(name, "Enter")
        screen = wait_for(name, lambda s: "assistant" in s and "tok/s" in s)
        assert "hello lab" in screen
        send_keys(name, "C-q")
        wait_for(name, lambda s: status_file.exists(), 30)
        assert status_file.read_text() == "0"
    session = lemlab_home / "data" / "sessions" / "tmux-demo.toml"
    assert "hello lab" in session.read_text()


@pytest.mark.real_model
def test_demo_opens_on_the_real_model_and_answers_in_english(
    lemlab_home: Path, tmp_path: Path, real_model: Path
) -> None:
    """What a new user sees after `make run`: the real model, labelled by name and as the demo,
    converted once into the cache, answering a plain question in English."""
    status_file = tmp_path / "status"
    env = {"LEMLAB_HOME": str(lemlab_home), "MLX_DISABLE_COMPILE": "1"}
    command = recording_status(status_file, LEMLAB, "--demo", "--session", "tmux-real")
    with tmux_session("lemlab-test", command, env) as name:
        tmux("set-option", "-w", "-t", name, "remain-on-exit", "on")
        screen = wait_for(name, lambda s: "SmolLM2-135M-Instruct (demo)" in s, 120)
        assert "DEMO: random weights" not in screen
        send_text(name, "What is the capital of France?")
        send_keys(name, "Enter")
        screen = wait_for(name, lambda s: "Paris" in s, 240)
        send_keys(name, "Escape")
        send_keys(name, "C-q")
        wait_for(name, lambda s: status_file.exists(), 60)
        assert status_file.read_text() == "0"
    converted = lemlab_home / "cache" / "demo-models" / "SmolLM2-135M-Instruct"
    assert (converted / "config.json").is_file()
    assert [p.name for p in converted.parent.iterdir()] == ["SmolLM2-135M-Instruct"]  # no leftovers
