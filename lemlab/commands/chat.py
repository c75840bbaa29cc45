"""`lemlab chat`: one streamed reply with --prompt, else a line REPL that works over bare SSH.

REPL commands: /quit /exit /save [FILE] /clear /system [TEXT|-] /undo /help. Ctrl+C during a
reply cancels it (the exchange is not kept); Ctrl+D exits. /save appends the conversation as ONE
line of mlx-lm chat training JSONL ({"messages": [system?, user, assistant, ...]}): the whole
conversation is one training example, which is how mlx-lm's chat format holds multi-turn data.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from lemlab.commands.run_support import local_engine, sampler_from_args
from lemlab.core.atomic import write_text_atomic
from lemlab.core.battery.kernels import parse_kernel_arg
from lemlab.core.chat.messages import append_jsonl_text, build_messages, conversation_jsonl_line
from lemlab.core.engine_api import GenStats, Message, Sampler
from lemlab.core.errors import LemlabError
from lemlab.core.models.demo import bundled_gguf, folder_ready, random_demo_dir
from lemlab.core.paths import get_paths
from lemlab.core.remote.endpoints import is_remote_spec
from lemlab.core.safe_text import visible, visible_line

if TYPE_CHECKING:
    from lemlab.core.engine_api import Engine

HELP = """commands:
  /system TEXT   set the system prompt (kernel) for the next replies; /system shows it, /system - clears it
  /undo          drop the last exchange (your message and the reply)
  /clear         forget the conversation (the system prompt stays)
  /save [FILE]   append the conversation as one line of mlx-lm chat training JSONL
  /help          this list
  /quit, /exit   leave (Ctrl+D too); Ctrl+C during a reply cancels it
  //text         send a message that starts with '/'"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    # dest names differ from the top-level --model/--adapter so `lemlab --model M chat` works too.
    p.add_argument(
        "--model",
        dest="chat_model",
        metavar="MODEL",
        help="model folder, cached Hugging Face id, or server: openai:URL#MODEL / endpoint:NAME",
    )
    p.add_argument(
        "--adapter",
        dest="chat_adapter",
        metavar="ADAPTER",
        help="LoRA adapter folder or checkpoint file",
    )
    sys_group = p.add_mutually_exclusive_group()
    sys_group.add_argument(
        "--kernel", metavar="FILE", help="kernel file (or kernel name) used as the system prompt"
    )
    sys_group.add_argument("--system", metavar="TEXT", help="system prompt text")
    p.add_argument("--prompt", help="send this one message, stream the reply, exit")
    p.add_argument("--max-tokens", type=int, default=1024, help="reply length limit (default 1024)")
    p.add_argument(
        "--temp", type=float, default=0.0, help="sampling temperature; 0 = greedy (default)"
    )
    p.add_argument("--top-p", type=float, default=1.0, help="nucleus sampling; 1.0 = off (default)")
    p.add_argument("--seed", type=int, help="random seed for sampling (same seed, same text)")


@dataclass
class ChatState:
    system: str | None = None
    turns: list[Message] = field(default_factory=list)

    def messages(self, user_text: str | None = None) -> list[Message]:
        return build_messages(self.turns, user_text, self.system)


def run(args: argparse.Namespace) -> int:
    sampler: Sampler = sampler_from_args(args)
    state = ChatState(system=_system_text(args))
    model, adapter = _model_args(args)
    with local_engine() as engine:  # mlx only once a local model is loaded
        info = engine.load(model, adapter).result()
        for warning in info.warnings:
            print(f"lemlab: warning: {visible_line(warning)}", file=sys.stderr)
        if args.prompt is not None:
            return _one_shot(engine, state, args.prompt, sampler)
        return _repl(engine, state, sampler, _title(info.model_path, info.model_type))


def _title(model_path: str, model_type: str) -> str:
    name = model_path if is_remote_spec(model_path) else Path(model_path).name
    return f"{name} ({model_type})"


def _system_text(args: argparse.Namespace) -> str | None:
    if args.kernel:
        return parse_kernel_arg(args.kernel).text
    return args.system or None


def _model_args(args: argparse.Namespace) -> tuple[str, str | None]:
    model = args.chat_model or getattr(args, "model", None)
    adapter = args.chat_adapter or getattr(args, "adapter", None)
    if model:
        return model, adapter
    if getattr(args, "demo", False):
        return str(_demo_model()), adapter
    raise LemlabError("no model given: use --model FOLDER (or --demo for the embedded demo model)")


def _demo_model() -> Path:
    """The bundled real model (converted once), else the random-weight tiny one."""
    if bundled_gguf() is not None:
        from lemlab.commands.import_gguf import demo_folder

        return demo_folder()
    from lemlab.engine.tiny import build_tiny_model

    path = random_demo_dir()
    return path if folder_ready(path) else build_tiny_model(path)


# --- one reply ---------------------------------------------------------------------------------


@dataclass
class Reply:
    text: str
    stats: GenStats
    error: str | None

    @property
    def complete(self) -> bool:
        return self.error is None and self.stats.finish_reason in ("stop", "length")


def stream_reply(engine: Engine, messages: list[Message], sampler: Sampler, out: TextIO) -> Reply:
    """Stream one reply to `out`; Ctrl+C cancels it and returns what was generated."""
    handle = engine.generate(messages, sampler, reuse_prefix=True)
    tty = out.isatty()
    held = ""  # on a terminal, a CR ending a chunk may be the first half of a CR LF newline
    try:
        for chunk in handle:
            if chunk.text:
                if tty:
                    piece = held + chunk.text
                    held = "\r" if piece.endswith("\r") else ""
                    out.write(printable(piece[:-1] if held else piece))
                else:
                    out.write(chunk.text)  # a pipe or file gets the exact text
                out.flush()
    except KeyboardInterrupt:
        handle.cancel()
    text, stats = handle.result()
    out.write(printable(held) + "\n")
    out.flush()
    return Reply(text, stats, handle.error)


def stats_line(stats: GenStats) -> str:
    cached = f", {stats.cached_prompt_tokens} cached" if stats.cached_prompt_tokens else ""
    return (
        f"[{stats.generation_tokens} tokens, {stats.generation_tps:.1f} tok/s | "
        f"prompt {stats.prompt_tokens} tokens{cached}, {stats.prompt_tps:.1f} tok/s | "
        f"first token {stats.time_to_first_token:.2f} s | peak {stats.peak_memory:.2f} GB | "
        f"{stats.finish_reason}]"
    )


# Model output can hold terminal control bytes (random demo weights certainly do): on a
# terminal they are shown as visible symbols instead of being obeyed (core/safe_text).
printable = visible


def _one_shot(engine: Engine, state: ChatState, prompt: str, sampler: Sampler) -> int:
    reply = stream_reply(engine, state.messages(prompt), sampler, sys.stdout)
    print(stats_line(reply.stats), file=sys.stderr)
    if reply.error:
        print(f"lemlab: error: generation failed: {visible_line(reply.error)}", file=sys.stderr)
        return 1
    return 0 if reply.complete else 130


# --- REPL ------------------------------------------------------------------------------------


def _repl(engine: Engine, state: ChatState, sampler: Sampler, title: str) -> int:
    interactive = sys.stdin.isatty()
    print(
        f"lemlab chat: {visible_line(title)}. /help for commands, Ctrl+D to leave.", file=sys.stderr
    )
    while True:
        try:
            line = input("you> " if interactive else "")
        except EOFError:
            print(file=sys.stderr)
            return 0
        except KeyboardInterrupt:
            print(file=sys.stderr)  # Ctrl+C at the prompt drops the line, as in a shell
            continue
        line = line.rstrip("\r\n")
        if not line.strip():
            continue
        if line.startswith("/") and not line.startswith("//"):
            if handle_command(line, state) == "quit":
                return 0
            continue
        _exchange(engine, state, line[1:] if line.startswith("//") else line, sampler)


def _exchange(engine: Engine, state: ChatState, text: str, sampler: Sampler) -> None:
    reply = stream_reply(engine, state.messages(text), sampler, sys.stdout)
    print(stats_line(reply.stats), file=sys.stderr)
    if reply.error:
        print(f"error: {visible_line(reply.error)}", file=sys.stderr)
    elif not reply.complete:
        print("(reply cancelled; not kept in the conversation)", file=sys.stderr)
    else:
        state.turns += [
            {"role": "user", "content": text},
            {"role": "assistant", "content": reply.text},
        ]


def handle_command(line: str, state: ChatState) -> str | None:
    """Run one slash command; 'quit' when the REPL should end. Messages go to stderr."""
    name, _, arg = line.strip().partition(" ")
    arg = arg.strip()
    if name in ("/quit", "/exit"):
        return "quit"
    if name == "/help":
        _say(HELP)
    elif name == "/clear":
        state.turns.clear()
        _say("conversation cleared")
    elif name == "/undo":
        _say(_undo(state))
    elif name == "/system":
        _say(_set_system(state, arg))
    elif name == "/save":
        _say(_save(state, arg))
    else:
        _say(f"unknown command {name} (/help lists them)")
    return None


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _undo(state: ChatState) -> str:
    if len(state.turns) < 2:
        return "nothing to undo"
    del state.turns[-2:]
    return f"dropped the last exchange ({len(state.turns) // 2} left)"


def _set_system(state: ChatState, arg: str) -> str:
    if not arg:
        if not state.system:
            return "no system prompt (set one with /system TEXT)"
        shown = state.system if len(state.system) <= 200 else state.system[:200] + "..."
        return f"system prompt ({len(state.system)} chars): {visible(shown)}"
    if arg == "-":
        state.system = None
        return "system prompt cleared"
    state.system = arg
    return f"system prompt set ({len(arg)} chars)"


def _save(state: ChatState, arg: str) -> str:
    try:
        line = conversation_jsonl_line(state.messages())
    except ValueError as exc:
        return f"nothing saved: {exc}"
    if arg:
        path = Path(arg).expanduser()
    else:
        path = get_paths().data_dir / "chats" / time.strftime("chat-%Y%m%d-%H%M%S.jsonl")
    try:
        existing = path.read_text(encoding="utf-8") if path.is_file() else ""
        write_text_atomic(path, append_jsonl_text(existing, line))
    except (OSError, UnicodeDecodeError) as exc:
        return f"cannot save to {path}: {getattr(exc, 'strerror', None) or exc}"
    return f"saved {len(state.messages())} messages as one training line to {path}"
