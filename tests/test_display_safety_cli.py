"""Issue 16: text from a model, a server or a file never reaches a terminal raw. The CLI runs
on a real pseudo-terminal against a scripted OpenAI-compatible server on 127.0.0.1 whose
replies and error bodies hold ESC sequences; what the terminal receives is checked byte by
byte (the visible symbols are there, the raw sequences are not). Files and pipes keep the
exact text."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from lemlab.core.ab.abfile import condition_entry, probe_line, summarize

# Clears the screen, retitles the window, turns text red, a one-byte CSI, a bidi override,
# a CR that would overwrite the line, and the two bytes the demo model really emits.
HOSTILE = "Title\x1b]0;pwned\x07 then\x1b[2J cleared\x1b[31m red\x9b2J \u202eevil\rover\x04\x1c end"
RAW = ("\x1b", "\x07", "\x9b", "\u202e", "\x04", "\x1c")
SHOWN = "Title␛]0;pwned␇ then␛[2J cleared␛[31m red\\x9b2J \\u202eevil␍over␄␜ end"


class Hostile(BaseHTTPRequestHandler):
    mode = "sse"

    def log_message(self, *args: object) -> None:
        pass

    def _json(self, status: int, obj: object) -> None:
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self._json(200, {"object": "list", "data": [{"id": "m"}]})

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        if self.mode == "500":
            return self._json(500, {"error": {"message": "gateway says " + HOSTILE}})
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        for i in range(0, len(HOSTILE), 7):  # chunks split sequences across events
            ev = {
                "choices": [
                    {"index": 0, "delta": {"content": HOSTILE[i : i + 7]}, "finish_reason": None}
                ]
            }
            self.wfile.write(f"data: {json.dumps(ev)}\n\n".encode())
        fin = {
            "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 9},
        }
        self.wfile.write(f"data: {json.dumps(fin)}\n\ndata: [DONE]\n\n".encode())


@pytest.fixture()
def server() -> Iterator[tuple[str, type[Hostile]]]:
    handler = type("H", (Hostile,), {"mode": "sse"})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"openai:http://127.0.0.1:{httpd.server_address[1]}/v1#m", handler
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=5)


def on_tty(*args: str, cwd: Path | None = None, timeout: float = 120) -> tuple[int, str]:
    """Run `lemlab ARGS` with stdin, stdout and stderr on one pseudo-terminal; what the
    terminal received (decoded; the pty turns newlines into CR LF, undone here)."""
    master, slave = pty.openpty()
    env = {**os.environ, "COLUMNS": "200", "LINES": "50", "TERM": "xterm-256color"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "lemlab", *args],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=env,
        cwd=cwd,
        close_fds=True,
    )
    os.close(slave)
    out = bytearray()
    end = time.monotonic() + timeout
    try:
        while time.monotonic() < end:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    data = os.read(master, 65536)
                except OSError:  # EIO: every writer closed the terminal
                    break
                if not data:
                    break
                out += data
            elif proc.poll() is not None:
                break
        else:
            proc.kill()
            raise AssertionError(f"lemlab {args} did not finish: {bytes(out)[-400:]!r}")
    finally:
        os.close(master)
    return proc.wait(timeout=30), out.decode("utf-8", "replace").replace("\r\n", "\n")


def piped(*args: str) -> tuple[int, str, str]:
    """(exit status, stdout, stderr) with stdout a pipe; bytes decoded as they are (no newline
    translation, so a CR stays a CR)."""
    res = subprocess.run(
        [sys.executable, "-m", "lemlab", *args],
        capture_output=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    return res.returncode, res.stdout.decode(), res.stderr.decode()


def assert_safe(shown: str) -> None:
    leaked = [c for c in RAW if c in shown]
    assert leaked == [], shown[-600:]


def test_chat_reply_on_a_terminal_shows_controls(server: tuple[str, type[Hostile]]) -> None:
    spec, _ = server
    code, shown = on_tty("chat", "--model", spec, "--prompt", "hi", "--max-tokens", "50")
    assert code == 0, shown
    assert SHOWN in shown
    assert_safe(shown)


def test_chat_reply_into_a_pipe_is_the_exact_text(server: tuple[str, type[Hostile]]) -> None:
    spec, _ = server
    code, out, err = piped("chat", "--model", spec, "--prompt", "hi", "--max-tokens", "50")
    assert code == 0, err
    assert out == HOSTILE + "\n"


def test_server_error_body_on_a_terminal_shows_controls(server: tuple[str, type[Hostile]]) -> None:
    spec, handler = server
    handler.mode = "500"
    code, shown = on_tty("chat", "--model", spec, "--prompt", "hi", "--max-tokens", "50")
    assert code != 0
    assert "gateway says Title␛]0;pwned␇" in shown
    assert_safe(shown)


def test_ab_run_on_a_terminal_shows_the_server_error_visibly(
    server: tuple[str, type[Hostile]], tmp_path: Path
) -> None:
    spec, handler = server
    handler.mode = "500"
    code, shown = on_tty(
        "ab",
        "--model",
        spec,
        "--prompts",
        "ccp6",
        "--output",
        str(tmp_path / "out.jsonl"),
        "--retries",
        "1",
        "--limit",
        "1",
    )
    assert code != 0
    assert "gateway says Title␛]0;pwned␇ then␛[2J" in shown
    # rich draws its progress bar with ESC sequences of its own; the server's never pass.
    for raw in ("\x1b]0;pwned", "\x1b[2J", "\x07", "\x9b", "\u202e", "\x04", "\x1c"):
        assert raw not in shown


def _hostile_run(path: Path) -> Path:
    conds = {
        "baseline": condition_entry(HOSTILE, {"lek_score": 1.5}, 1.0),
        "kernel\x1b[2J": condition_entry("fine " + HOSTILE, {"lek_score": 4.0}, 1.0),
    }
    probes = [probe_line("p1\x1b]0;pwned\x07", "cat", "prompt \x1b[31m", conds, ts="T")]
    summary = summarize(probes, "m\x1b[2J", 10, 64, ["baseline", "kernel\x1b[2J"], ts="T")
    path.write_text("".join(json.dumps(x) + "\n" for x in [*probes, summary]), encoding="utf-8")
    return path


def test_report_on_a_terminal_shows_ids_visibly_and_files_keep_them(tmp_path: Path) -> None:
    run = _hostile_run(tmp_path / "run.jsonl")
    code, shown = on_tty("report", str(run))
    assert code == 0, shown
    assert "p1␛]0;pwned␇" in shown and "kernel␛[2J" in shown
    assert "\x1b" not in shown and "\x07" not in shown
    code, out, _ = piped("report", str(run))
    assert code == 0 and "p1\x1b]0;pwned\x07" in out


def test_report_json_on_a_terminal_stays_valid_json_with_the_same_data(tmp_path: Path) -> None:
    run = _hostile_run(tmp_path / "run.jsonl")
    code, shown = on_tty("report", str(run), "--format", "json")
    assert code == 0, shown
    assert_safe(shown)
    assert json.loads(shown) == json.loads(piped("report", str(run), "--format", "json")[1])


def test_score_on_a_terminal(tmp_path: Path) -> None:
    reply = tmp_path / "reply.txt"
    text = HOSTILE  # read as bytes: the CR is scored and shown as it is
    reply.write_text(("The screen " + text + " goes dark. ") * 12, encoding="utf-8")
    code, shown = on_tty("score", str(reply))
    assert code == 0, shown
    assert "token_degeneration" in shown and "\\x1b]0;pwned\\x07" in shown
    assert_safe(shown)
    code, shown = on_tty("score", str(reply), "--json")
    assert code == 0, shown
    assert_safe(shown)
    assert json.loads(shown)["failure_modes"][0]["detail"]["unit"].startswith("The screen " + text)


def test_score_reads_the_file_untouched(tmp_path: Path) -> None:
    crlf = tmp_path / "crlf.txt"
    crlf.write_bytes(("A line of text here.\r\n\r\nAnother paragraph follows it.\r\n" * 3).encode())
    code, out, err = piped("score", str(crlf), "--json")
    assert code == 0, err
    from lemlab.core.scoring import get_scorer

    assert json.loads(out)["score"] == get_scorer("v2").score(crlf.read_bytes().decode())
