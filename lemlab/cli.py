"""`lemlab` entry point. Subcommands live in lemlab.commands.<name>, each imported only when used,
so `lemlab --help` never pays for mlx_lm (a bench script measures it)."""

from __future__ import annotations

import argparse
import errno
import importlib
import os
import signal
import sys
import traceback
from types import ModuleType

from lemlab import __version__
from lemlab.core.errors import LemlabError
from lemlab.core.safe_text import visible_line

# (command name, module, one-line help). Modules are imported lazily.
COMMANDS: list[tuple[str, str, str]] = [
    ("chat", "chat", "chat with a model: one reply with --prompt, else a line REPL"),
    ("models", "models", "list discovered MLX models and LoRA adapters"),
    (
        "import-gguf",
        "import_gguf",
        "convert a llama-architecture GGUF file into an MLX model folder",
    ),
    (
        "make-tiny-model",
        "make_tiny_model",
        "write a tiny random-weight MLX model (offline demos, tests)",
    ),
    ("score", "score", "score one response text and show why each signal fired"),
    ("rescore", "rescore", "recompute scores in A/B JSONL files"),
    ("ab", "ab", "run a probe battery under conditions (kernels, adapters) and score it"),
    ("report", "report", "summarise an A/B run, or compare two runs (--vs)"),
    ("train", "train", "run a LoRA training with an events log"),
    ("watch", "watch", "follow a training run (events file, adapter folder or mlx-lm log)"),
    ("curriculum", "curriculum", "run a staged training curriculum with fuses between stages"),
    ("distill", "distill", "self-distillation: sample, score and keep good responses"),
    ("extract", "extract", "turn self-distill output into mlx-lm training JSONL"),
    ("rephrase", "rephrase", "write perspective / urgency / cultural variants of a battery"),
    ("pipeline", "pipeline", "run a multi-phase distill -> extract -> train pipeline"),
    ("probes", "probes", "list shipped and configured probe batteries"),
    ("sessions", "sessions", "list saved sessions"),
]


def _command_module(module: str) -> ModuleType:
    return importlib.import_module(f"lemlab.commands.{module}")


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    """The top-level parser and each command's subparser (kept: argparse has no public lookup)."""
    from lemlab.commands.arg_checks import OneLineParser

    parser = OneLineParser(
        prog="lemlab",
        description="A keyboard-driven terminal lab for local MLX models. "
        "With no command, opens the TUI.",
    )
    parser.add_argument("--version", action="version", version=f"lemlab {__version__}")
    parser.add_argument("--session", help="open (or create) this session in the TUI")
    parser.add_argument("--model", help="model folder or Hugging Face id to load at start")
    parser.add_argument("--adapter", help="LoRA adapter folder to load with --model")
    parser.add_argument("--theme", help="theme name for this run")
    parser.add_argument(
        "--demo",
        action="store_true",
        help="load the embedded random-weight demo model when no --model is given",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers: dict[str, argparse.ArgumentParser] = {}
    for name, module, help_text in COMMANDS:
        p = subparsers[name] = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(_module=module)
        # Arguments are added only for the command being run (see main), to keep --help fast.
    return parser, subparsers


def main(argv: list[str] | None = None) -> int:
    from lemlab.commands.arg_checks import UsageError, harden
    from lemlab.core import limits

    argv = sys.argv[1:] if argv is None else argv
    parser, subparsers = build_parser()
    # Two-stage parse: find the command, then let its module add its own arguments.
    first = _find_command(argv)
    if first is not None:
        module = dict((n, m) for n, m, _ in COMMANDS)[first]
        sub = subparsers[first]
        _command_module(module).add_arguments(sub)
        harden(sub)  # finite, bounded numbers before any work
        sub.add_argument(
            limits.FLAG,
            action="store_true",
            help="raise lemlab's size caps (prompts, kernels, batteries) a hundredfold",
        )
    try:
        args = parser.parse_args(argv)
    except UsageError as exc:  # one line, with controls from the command line shown visibly
        print(f"lemlab: error: {visible_line(exc)}", file=sys.stderr)
        return exc.exit_code
    limits.allow_large(bool(getattr(args, "allow_large", False)))
    try:
        if args.command is None:
            from lemlab.tui.launch import LaunchOptions, launch

            return launch(
                LaunchOptions(
                    session=args.session,
                    model=args.model,
                    adapter=args.adapter,
                    theme=args.theme,
                    demo=bool(args.demo),
                )
            )
        return int(_command_module(args._module).run(args) or 0)
    except LemlabError as exc:
        # Messages quote file, model and server text: shown with controls visible, on one line.
        print(f"lemlab: error: {visible_line(exc)}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        # From here any further Ctrl+C ends the process at once, and requests still in flight
        # are cancelled so their threads cannot hold the exit.
        try:
            signal.signal(signal.SIGINT, signal.SIG_DFL)
        except ValueError:  # main() called from another thread (tests): no handler to set
            pass
        remote = sys.modules.get("lemlab.engine.remote")
        if remote is not None:
            remote.cancel_all()
        print("lemlab: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # `lemlab ... | head` closed the pipe: not an error worth a traceback.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as exc:
        # Full disk, permissions, a vanished folder: the environment, not a bug. Writes are
        # atomic, so the user's existing files are as they were.
        print(f"lemlab: error: {visible_line(_os_error_line(exc))}", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 - last resort: one line, traceback only on request
        if os.environ.get("LEMLAB_DEBUG"):
            traceback.print_exc()
        print(
            f"lemlab: internal error: {type(exc).__name__}: {visible_line(exc)} "
            "(LEMLAB_DEBUG=1 shows the traceback)",
            file=sys.stderr,
        )
        return 70


def _os_error_line(exc: OSError) -> str:
    what = exc.strerror or type(exc).__name__
    if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        what += " (nothing was half-written; free some space and run again)"
    where = exc.filename if exc.filename is not None else ""
    return f"{what}: {where}" if where else what


def _find_command(argv: list[str]) -> str | None:
    names = {n for n, _, _ in COMMANDS}
    takes_value = {"--session", "--model", "--adapter", "--theme"}
    skip = False
    for tok in argv:
        if skip:
            skip = False
            continue
        if tok in takes_value:
            skip = True
            continue
        if tok.startswith("-"):
            continue
        return tok if tok in names else None
    return None


if __name__ == "__main__":
    raise SystemExit(main())
