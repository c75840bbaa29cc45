"""`lemlab chat`: one-shot replies, the REPL's slash commands, Ctrl+C, clean exits (subprocesses
with the real engine on tiny models), plus the slash-command logic in-process."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from lemlab.commands.chat import ChatState, handle_command, printable, stats_line
from lemlab.core.engine_api import GenStats


def lemlab(*args: str, stdin: str = "", timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lemlab", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_one_shot_streams_reply_and_stats(tiny_model: Path) -> None:
    run = lemlab(
        "chat", "--model", str(tiny_model), "--prompt", "Hello there", "--max-tokens", "16"
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip()
    assert "demo model" in run.stderr  # warnings go to stderr
    stats = [ln for ln in run.stderr.splitlines() if ln.startswith("[")]
    assert len(stats) == 1 and "tokens" in stats[0] and "prompt" in stats[0]
    assert "Traceback" not in run.stderr


def test_one_shot_is_deterministic_and_kernel_is_used(
    tiny_model_nosys: Path, tmp_path: Path
) -> None:
    kernel = tmp_path / "care.txt"
    kernel.write_text("Answer with care and honesty.\n")
    base = [
        "chat",
        "--model",
        str(tiny_model_nosys),
        "--prompt",
        "What is a kernel?",
        "--max-tokens",
        "12",
    ]
    plain = lemlab(*base)
    with_kernel = lemlab(*base, "--kernel", str(kernel))
    again = lemlab(*base, "--kernel", str(kernel))
    assert plain.returncode == with_kernel.returncode == again.returncode == 0, with_kernel.stderr
    assert with_kernel.stdout == again.stdout
    sizes = [
        int(re.search(r"prompt (\d+) tokens", r.stderr).group(1)) for r in (plain, with_kernel)
    ]
    assert sizes[1] > sizes[0]  # the kernel (folded into the user turn) made the prompt longer


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--model", "/nonexistent/model"], "model folder not found"),
        (["--top-p", "0"], "--top-p"),
        (["--max-tokens", "0"], "--max-tokens"),
        (["--kernel", "/nonexistent/kernel.txt"], "no such file"),
        ([], "no model given"),
    ],
)
def test_bad_input_is_one_line_exit_2(args: list[str], words: str, tiny_model: Path) -> None:
    if "--model" not in args and words != "no model given":
        args = ["--model", str(tiny_model), *args]
    run = lemlab("chat", *args, "--prompt", "hi")
    assert run.returncode == 2, run.stderr
    assert run.stderr.count("\n") == 1 and words in run.stderr, run.stderr


def test_repl_commands_and_save(tiny_model: Path, tmp_path: Path) -> None:
    out = tmp_path / "chat.jsonl"
    script = (
        "\n".join(
            [
                "/system You answer briefly.",
                "First question?",
                "Second question?",
                "/undo",
                "Third question?",
                f"/save {out}",
                f"/save {out}",
                "/quit",
                "never sent",
            ]
        )
        + "\n"
    )
    run = lemlab("chat", "--model", str(tiny_model), "--max-tokens", "8", stdin=script)
    assert run.returncode == 0, run.stderr
    lines = out.read_text().splitlines()
    assert len(lines) == 2 and lines[0] == lines[1]  # /save appends one line per call
    messages = json.loads(lines[0])["messages"]
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user", "assistant"]
    assert messages[0]["content"] == "You answer briefly."
    assert [m["content"] for m in messages if m["role"] == "user"] == [
        "First question?",
        "Third question?",
    ]
    assert run.stderr.count("[") >= 3  # one stats line per reply
    assert "dropped the last exchange" in run.stderr


def test_repl_ends_on_eof(tiny_model: Path) -> None:
    run = lemlab("chat", "--model", str(tiny_model), "--max-tokens", "4", stdin="hello\n")
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip()


@pytest.mark.slow
def test_repeated_start_and_quit(tiny_model: Path) -> None:
    for _ in range(5):
        run = lemlab("chat", "--model", str(tiny_model), "--max-tokens", "4", stdin="hi\n/quit\n")
        assert run.returncode == 0, run.stderr[-1500:]


def test_ctrl_c_cancels_the_reply_and_the_repl_goes_on(tiny_llama: Path, tmp_path: Path) -> None:
    """tiny_llama's greedy reply to 'hello' never hits EOS, so it is still running at SIGINT."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "lemlab",
            "chat",
            "--model",
            str(tiny_llama),
            "--max-tokens",
            "100000000",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdin and proc.stdout
        proc.stdin.write("hello\n")
        proc.stdin.flush()
        proc.stdout.read(200)  # the reply is streaming
        os.kill(proc.pid, signal.SIGINT)
        proc.stdin.write(f"/save {tmp_path / 'x.jsonl'}\n/quit\n")
        proc.stdin.flush()
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "cancelled" in err and "nothing saved" in err
    assert "Traceback" not in err


# --- in-process: slash commands ------------------------------------------------------------------


def test_slash_commands_edit_the_state(capsys: pytest.CaptureFixture[str]) -> None:
    state = ChatState()
    state.turns = [
        {"role": "user", "content": "q1"},
        {"role": "assistant", "content": "a1"},
        {"role": "user", "content": "q2"},
        {"role": "assistant", "content": "a2"},
    ]
    assert handle_command("/undo", state) is None
    assert [t["content"] for t in state.turns] == ["q1", "a1"]
    handle_command("/system  Be kind. ", state)
    assert state.system == "Be kind."
    assert state.messages("next")[0] == {"role": "system", "content": "Be kind."}
    handle_command("/system", state)
    assert "Be kind." in capsys.readouterr().err
    handle_command("/system -", state)
    assert state.system is None
    handle_command("/clear", state)
    assert state.turns == []
    handle_command("/undo", state)
    handle_command("/nope", state)
    err = capsys.readouterr().err
    assert "nothing to undo" in err and "unknown command /nope" in err
    assert handle_command("/exit", state) == "quit" and handle_command("/quit", state) == "quit"


def test_save_without_file_goes_to_the_data_dir(
    lemlab_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = ChatState(
        system="K", turns=[{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]
    )
    handle_command("/save", state)
    saved = list((lemlab_home / "data" / "chats").glob("chat-*.jsonl"))
    assert len(saved) == 1
    assert json.loads(saved[0].read_text())["messages"][0] == {"role": "system", "content": "K"}
    handle_command("/save /proc/cannot/write/here.jsonl", state)
    assert "cannot save" in capsys.readouterr().err


def test_printable_and_stats_line() -> None:
    assert printable("a\x1b[2Jb\tc\n") == "a\u241b[2Jb\tc\n"
    line = stats_line(
        GenStats(
            prompt_tokens=40, cached_prompt_tokens=30, generation_tokens=5, finish_reason="stop"
        )
    )
    assert "5 tokens" in line and "30 cached" in line and line.endswith("stop]")
