"""Start and stop a local `mlx_lm.server` on loopback (tests, benchmarks, a local endpoint).

No mlx import here: the server is a subprocess, started without a shell.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from lemlab.core.errors import LemlabError


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


@dataclass
class LocalServer:
    """One mlx_lm.server process. `restart()` brings it back on the same port."""

    model: Path
    port: int
    host: str = "127.0.0.1"
    log_path: Path | None = None
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    @property
    def spec(self) -> str:
        """`openai:<url>#<model>` with the model id mlx_lm.server lists for its --model."""
        return f"openai:{self.url}#{self.model.resolve()}"

    def start(self, ready_timeout: float = 60.0) -> LocalServer:
        cmd = [
            sys.executable,
            "-m",
            "mlx_lm",
            "server",
            "--model",
            str(self.model),
            "--host",
            self.host,
            "--port",
            str(self.port),
        ]
        env = {**os.environ, "MLX_DISABLE_COMPILE": "1", **self.env}
        out = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        try:
            self.proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)
        finally:
            if self.log_path:
                out.close()  # type: ignore[union-attr]
        self.wait_ready(ready_timeout)
        return self

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise LemlabError(f"mlx_lm.server exited with {self.proc.returncode}{self._tail()}")
            try:
                with urllib.request.urlopen(f"http://{self.host}:{self.port}/health", timeout=1):
                    return
            except (urllib.error.URLError, OSError):
                time.sleep(0.1)
        self.stop()
        raise LemlabError(f"mlx_lm.server on port {self.port} not ready after {timeout:.0f}s")

    def kill(self) -> None:
        """SIGKILL, as a crash would: no clean shutdown, open connections just drop."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.kill()

    def restart(self, ready_timeout: float = 60.0) -> LocalServer:
        self.stop()
        return self.start(ready_timeout)

    def _tail(self) -> str:
        if not self.log_path or not self.log_path.exists():
            return ""
        with contextlib.suppress(OSError):
            lines = self.log_path.read_text(errors="replace").strip().splitlines()
            if lines:
                return f": {lines[-1][:200]}"
        return ""


def start_mlx_server(
    model: Path,
    *,
    port: int | None = None,
    log_path: Path | None = None,
    env: dict[str, str] | None = None,
    ready_timeout: float = 60.0,
) -> LocalServer:
    """Start mlx_lm.server for `model` on 127.0.0.1 and wait until /health answers."""
    server = LocalServer(Path(model), port or free_port(), log_path=log_path, env=dict(env or {}))
    return server.start(ready_timeout)
